"""A database written by a newer release: both backends refuse it in the same one line (exit 1),
the bot, the admin commands and the migration alike, and nothing in it is changed."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest

from storage import open_store
from storage.urls import parse_postgres, sqlite_path
from tests.operator.cli import run_bot

NEWER = 99
REFUSAL = (
    f"Cannot open the database (DATABASE_URL): the database schema is v{NEWER}, newer than this"
    " release supports"
)


async def _make_newer(url: str) -> None:
    """A database of this release, then stamped as one of a later release."""
    await (await open_store(url)).close()
    if url.startswith("sqlite:"):
        with closing(sqlite3.connect(sqlite_path(url))) as db, db:
            db.execute("UPDATE schema_version SET version = ?", (NEWER,))
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", NEWER)
    finally:
        await conn.close()


def _password(url: str) -> str | None:
    return None if url.startswith("sqlite:") else parse_postgres(url).password


@pytest.mark.parametrize("args", [("admin", "stats"), ("chat",)])
async def test_a_newer_schema_is_one_line_on_both_backends(
    tmp_path: Path, any_db_url: str, args: tuple[str, ...]
) -> None:
    await _make_newer(any_db_url)
    outcome = run_bot(tmp_path, {"DATABASE_URL": any_db_url}, *args)
    assert outcome.one_line(1).startswith(REFUSAL)
    secret = _password(any_db_url)
    assert secret is None or not outcome.shows(secret)


@pytest.mark.postgres
async def test_the_migration_refuses_a_newer_destination_the_same_way(
    tmp_path: Path, postgres_db_url: str
) -> None:
    await _make_newer(postgres_db_url)
    src = f"sqlite:///{tmp_path / 'src.db'}"
    await (await open_store(src)).close()
    outcome = run_bot(tmp_path, {}, "admin", "migrate-sqlite-to-postgres", src, postgres_db_url)
    assert outcome.code == 1 and "Traceback" not in outcome.stderr
    assert f"Cannot migrate: the database schema is v{NEWER}, newer" in outcome.stderr
    secret = _password(postgres_db_url)
    assert secret is None or not outcome.shows(secret)
