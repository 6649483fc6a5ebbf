"""`python -m bot admin` from a shell: its usage and its behaviour agree, paging hints are typed
the shell's way, and every refusal is one line with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.admin_commands import PAGE
from bot.settings import DEFAULT_APP_NAME
from storage import open_store
from tests.operator.cli import Outcome, run_bot

ADMIN = "python -m bot admin"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database where console user ada has talked (the offline model answers)."""
    where = tmp_path_factory.mktemp("admin")
    chat = run_bot(where, _env(where), "chat", "--user", "ada", stdin="My name is Ada\nhi\n")
    assert chat.code == 0, chat.stderr
    return where


def _env(where: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{where / 'bot.db'}",
        "QUOTES_BASE_URL": "http://127.0.0.1:9",
    }


def admin(where: Path, *args: str) -> Outcome:
    return run_bot(where, _env(where), "admin", *args)


def test_history_needs_a_user_and_says_so_in_its_usage(workdir: Path) -> None:
    line = admin(workdir, "history").one_line(2)
    assert line.startswith(f"{ADMIN} history: the following arguments are required: USER")
    assert f"usage: {ADMIN} history [-h] USER [LIMIT] [BEFORE]" in line
    helped = admin(workdir, "history", "--help")
    assert helped.code == 0 and "USER [LIMIT] [BEFORE]" in helped.stdout


def test_history_pages_with_the_shells_syntax(workdir: Path) -> None:
    page = admin(workdir, "history", "console:ada", "2")
    assert page.code == 0, page.stderr
    older = page.stdout.strip().splitlines()[-1]
    assert older.startswith(f"Older: {ADMIN} history ") and "/history" not in page.stdout
    _, user, limit, before = older.removeprefix(f"Older: {ADMIN} ").split()
    following = admin(workdir, "history", user, limit, before)  # the hint, run as printed
    assert following.code == 0, following.stderr
    assert following.stdout.splitlines()[-1] not in page.stdout


def test_a_limit_above_the_maximum_shows_the_maximum_and_says_so(workdir: Path) -> None:
    shown = admin(workdir, "history", "console:ada", "999")
    assert shown.code == 0, shown.stderr
    assert "the most shown at once is 200" in shown.stdout.splitlines()[0]


def test_a_bogus_event_id_is_an_error(workdir: Path) -> None:
    line = admin(workdir, "history", "console:ada", "20", "bogus").one_line(2)
    assert line.startswith("No event bogus in the history of ")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("history", "console:ada", "lots"), f"{ADMIN} history: wrong arguments (usage:"),
        (("history", "console:ada", "0"), "limit must be between 1 and 200"),
        (("history", "console:nobody"), "No such user: console:nobody"),
        (("sessions", "zero"), f"{ADMIN} sessions: wrong arguments (usage:"),
        (("user", "console:nobody"), "No such user: console:nobody"),
        (("stats", "extra"), "unrecognized arguments: extra"),
    ],
)
def test_wrong_arguments_are_one_line_and_exit_2(
    workdir: Path, args: tuple[str, ...], says: str
) -> None:
    line = admin(workdir, *args).one_line(2)
    assert says in line and "/history" not in line and "/sessions" not in line


@pytest.mark.parametrize(
    ("out", "says"),
    [
        ("missing/ada.json", "the folder missing does not exist"),
        ("folder", "that is a folder: give a file name, e.g. folder/export.json"),
        ("folder/", "that is a folder: give a file name"),
        ("elsewhere/", "that is a folder: give a file name"),
        ("existing.json", "it already exists (--force replaces it)"),
        ("existing.json/ada.json", "existing.json is not a folder"),
    ],
)
def test_export_refuses_a_wrong_destination_in_one_line(
    tmp_path: Path, workdir: Path, out: str, says: str
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "existing.json").write_text("an older export")
    outcome = run_bot(tmp_path, _env(workdir), "admin", "export", "console:ada", "--out", out)
    assert outcome.one_line(2).startswith(f"Cannot write {out}: {says}")
    assert (tmp_path / "existing.json").read_text() == "an older export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.json", "folder"]
    assert list((tmp_path / "folder").iterdir()) == []


def test_export_replaces_a_file_only_when_forced_and_owner_only(
    tmp_path: Path, workdir: Path
) -> None:
    out = tmp_path / "ada.json"
    out.write_text("an older export")
    out.chmod(0o644)
    args = ("admin", "export", "console:ada", "--out", str(out), "--force")
    wrote = run_bot(tmp_path, _env(workdir), *args)
    assert wrote.code == 0, wrote.stderr
    assert '"identities"' in out.read_text() and out.stat().st_mode & 0o777 == 0o600
    fresh = tmp_path / "new.json"
    made = run_bot(tmp_path, _env(workdir), "admin", "export", "console:ada", "--out", str(fresh))
    assert made.code == 0 and fresh.stat().st_mode & 0o777 == 0o600


async def test_sessions_pages_with_the_shells_syntax(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    async with await open_store(url) as store:
        for n in range(PAGE + 1):
            await store.create_session(DEFAULT_APP_NAME, f"user{n}", f"console:{n}")
    first = run_bot(tmp_path, {"DATABASE_URL": url}, "admin", "sessions")
    assert first.code == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1] == f"Next: {ADMIN} sessions 2"
    second = run_bot(tmp_path, {"DATABASE_URL": url}, "admin", "sessions", "2")
    assert second.code == 0 and "Next:" not in second.stdout and "user0 " in second.stdout
