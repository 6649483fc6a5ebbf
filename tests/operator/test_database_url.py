"""DATABASE_URL as an operator gets it wrong: one line each, never a password, never a new folder.

A malformed URL is a configuration error (exit 2, before anything opens); a well-formed one that
cannot be opened stops the start (exit 1). Both quote only scheme, host, port and database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.urls import describe, hide_password
from tests.operator.cli import run_bot

SECRET = "s3cret"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite:/x.db", "sqlite:///x.db"),
        ("sqlite://x.db", "sqlite:///x.db"),
        ("sqlite:///x.db?mode=ro", "no query parameters"),
        (f"postgresql://u:{SECRET}@db.example:notaport/db", "port"),
        (f"postgresql://u:pa/{SECRET}@db.example:5432/db", "percent-encode"),
        (f"postgresql://u:pa?{SECRET}@db.example:5432/db", "percent-encode"),
        (f"postgresql://u:pa#{SECRET}@db.example:5432/db", "percent-encode"),
        (f"postgresql://u:pa@{SECRET}@db.example:5432/db", "percent-encode"),
        (f"postgresql://u:{SECRET}@db.example/db?pool_size=abc", "pool_size"),
        (f"postgresql://u:{SECRET}@db.example/db?lock_wait=-1", "lock_wait"),
        ("postgresql://", "no host and no database given"),
        (f"postgresql://u:{SECRET}@db.example", "no database"),
        (f"postgresql:///db?password={SECRET}", "no host"),
        ("mysql://x", "sqlite:///"),
    ],
)
def test_a_malformed_url_is_one_line_and_exit_2(tmp_path: Path, url: str, says: str) -> None:
    line = run_bot(tmp_path, {"DATABASE_URL": url}, "admin", "stats").one_line(2)
    assert line.startswith("Configuration error: DATABASE_URL: ") and says in line
    assert SECRET not in line
    assert list(tmp_path.iterdir()) == []  # nothing created, nothing connected to


def test_the_bot_itself_refuses_it_before_starting(tmp_path: Path) -> None:
    line = run_bot(tmp_path, {"DATABASE_URL": "postgresql://"}, "chat").one_line(2)
    assert "DATABASE_URL" in line and "no host and no database given" in line


def test_a_folder_is_not_a_database_file(tmp_path: Path) -> None:
    line = run_bot(tmp_path, {"DATABASE_URL": f"sqlite:///{tmp_path}"}, "admin", "stats")
    assert f"{tmp_path} is a folder" in line.one_line(1)


def test_a_file_in_place_of_a_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("not a folder")
    url = f"sqlite:///{tmp_path}/notes/x.db"
    line = run_bot(tmp_path, {"DATABASE_URL": url}, "admin", "stats").one_line(1)
    assert f"{tmp_path / 'notes'} is not a folder" in line


def test_a_missing_folder_is_named_and_never_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nonexistent/dir/x.db"
    line = run_bot(tmp_path, {"DATABASE_URL": url}, "admin", "stats").one_line(1)
    assert line.startswith("Cannot open the database (DATABASE_URL)")
    assert f"the folder {tmp_path}/nonexistent/dir does not exist" in line
    assert not (tmp_path / "nonexistent").exists()


def test_the_file_itself_is_created_owner_only(tmp_path: Path) -> None:
    outcome = run_bot(tmp_path, {"DATABASE_URL": "sqlite:///bot.db"}, "admin", "stats")
    assert outcome.code == 0, outcome.stderr
    assert (tmp_path / "bot.db").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u@127.0.0.1:1/nothing?password={SECRET}",  # nothing listens on port 1
        f"postgresql://u:{SECRET}@127.0.0.1:1/nothing",
        f"postgresql://u:{SECRET}@127.0.0.1:1/nothing?sslmode=bogus",
    ],
)
def test_an_unreachable_server_is_quoted_without_the_password(tmp_path: Path, url: str) -> None:
    outcome = run_bot(tmp_path, {"DATABASE_URL": url}, "admin", "stats")
    line = outcome.one_line(1)
    assert line.startswith("Cannot open the database (DATABASE_URL): ")
    assert "postgresql://127.0.0.1:1/nothing" in line
    assert not outcome.shows(SECRET)


def test_the_migration_quotes_no_password_either(tmp_path: Path) -> None:
    (tmp_path / "src.db").touch()
    src = f"sqlite:///{tmp_path / 'src.db'}"
    dst = f"postgresql://u@127.0.0.1:1/nothing?password={SECRET}"
    outcome = run_bot(tmp_path, {}, "admin", "migrate-sqlite-to-postgres", src, dst)
    assert outcome.code == 1
    assert "Traceback" not in outcome.stderr and not outcome.shows(SECRET)
    assert "Cannot migrate: cannot open PostgreSQL at postgresql://127.0.0.1:1/nothing" in (
        outcome.stderr
    )


@pytest.mark.parametrize(
    ("src", "dst", "says"),
    [
        ("sqlite:///src.db", f"postgresql://u:pa/{SECRET}@127.0.0.1:1/db", "Cannot migrate: DST"),
        ("sqlite:///src.db", "postgresql://", "Cannot migrate: DST: no host"),
        ("sqlite://src.db", "postgresql://h/db", "Cannot migrate: SRC: "),
        ("sqlite:///src.db", "sqlite:///x.db", "Usage: python -m bot admin migrate-sqlite"),
    ],
)
def test_a_malformed_migration_url_is_one_line_and_exit_2(
    tmp_path: Path, src: str, dst: str, says: str
) -> None:
    (tmp_path / "src.db").touch()
    outcome = run_bot(tmp_path, {}, "admin", "migrate-sqlite-to-postgres", src, dst)
    line = outcome.one_line(2)
    assert line.startswith(says) and SECRET not in line


def test_a_missing_migration_source_is_one_line(tmp_path: Path) -> None:
    src = f"sqlite:///{tmp_path / 'nope.db'}"
    outcome = run_bot(
        tmp_path, {}, "admin", "migrate-sqlite-to-postgres", src, "postgresql://127.0.0.1/db"
    )
    assert "no SQLite database at" in outcome.one_line(2)


def test_describe_keeps_scheme_host_port_and_database_only() -> None:
    url = f"postgres://user:{SECRET}@db.example:6543/bot?password={SECRET}&pool_size=3"
    assert describe(url) == "postgres://db.example:6543/bot"
    assert describe(f"postgresql://u:{SECRET}@[::1]:5432/bot") == "postgresql://[::1]:5432/bot"
    assert describe("sqlite:////var/lib/bot.db") == "sqlite:////var/lib/bot.db"
    assert SECRET not in describe(f"postgresql://u:pa/{SECRET}@h/db")
    text = f"password {SECRET} and s%2Fcret refused"
    assert (
        hide_password(text, f"postgresql://u:{SECRET}@h/db") == "password *** and s%2Fcret refused"
    )
    assert "s/cret" not in hide_password("got s/cret", "postgresql://u:s%2Fcret@h/db")
