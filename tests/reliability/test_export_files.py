"""Export files hold one person's data: owner-only (0600) from their first byte, never written
through a symbolic link, never chmod-ed after the fact (`python -m bot admin export --out`,
and the console's /export)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from bot.private_files import write_private

ROOT = Path(__file__).resolve().parents[2]
NO_NETWORK = "http://127.0.0.1:9"
_CHMODS: list[str] = []
_WATCHING: list[bool] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    # Audit hooks cannot be removed: this one only records while a test watches.
    if _WATCHING and event == "os.chmod":
        _CHMODS.append(str(args[0]))


sys.addaudithook(_audit)


@contextlib.contextmanager
def watching_chmod() -> Iterator[list[str]]:
    _CHMODS.clear()
    _WATCHING.append(True)
    try:
        yield _CHMODS
    finally:
        _WATCHING.clear()


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def cli(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_API_KEY"))}
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        QUOTES_BASE_URL=NO_NETWORK,
        LLM_BASE_URL=NO_NETWORK,
        ADMIN_IDS="",
    )
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_private_file_is_owner_only_without_a_chmod(tmp_path: Path) -> None:
    fresh, existing = tmp_path / "new.json", tmp_path / "old.json"
    existing.write_text("an older export")
    existing.chmod(0o644)
    with umask(0), watching_chmod() as chmods:  # a umask of 0 would make a plain file 0666
        write_private(fresh, b'{"secret": 1}')
        write_private(existing, b'{"secret": 2}')
    assert chmods == []
    for path, body in ((fresh, b'{"secret": 1}'), (existing, b'{"secret": 2}')):
        assert path.read_bytes() == body
        assert path.stat().st_mode & 0o777 == 0o600, oct(path.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.json", "old.json"]  # no temp


def test_admin_export_refuses_a_symlink_and_writes_0600(tmp_path: Path) -> None:
    chat = cli(tmp_path, "chat", "--user", "ada", stdin="My name is Ada\n")
    assert chat.returncode == 0, chat.stderr
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    link = tmp_path / "export.json"
    link.symlink_to(victim)
    kept = cli(tmp_path, "admin", "export", "console:ada", "--out", str(link))
    assert kept.returncode == 2 and "already exists" in kept.stderr, kept.stderr
    forced = ("admin", "export", "console:ada", "--out", str(link), "--force")
    refused = cli(tmp_path, *forced)  # replacing a file, never writing through a link
    assert refused.returncode == 1, refused.stderr
    assert "Cannot write" in refused.stderr and "Traceback" not in refused.stderr
    assert victim.read_text() == "not yours" and link.is_symlink()
    out = tmp_path / "ada.json"
    wrote = cli(tmp_path, "admin", "export", "console:ada", "--out", str(out))
    assert wrote.returncode == 0, wrote.stderr
    assert out.stat().st_mode & 0o777 == 0o600
