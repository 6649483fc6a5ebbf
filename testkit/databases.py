"""Test databases: a fresh PostgreSQL database per test, and every raw row of either backend.

PostgreSQL comes from TEST_POSTGRES_URL: a database is created there for one test and dropped
(with its connections) afterwards, so no test sees another's rows or leaves any behind. Without
the URL, or with the server unreachable, the test is skipped with the reason; with CI set it
fails instead, because CI must run the PostgreSQL tests.

The row dumps are for the "nothing about X is stored anywhere" checks: they read the tables
directly, not through the store, so nothing the store forgets to clean up can hide.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import aiosqlite
import pytest

Row = tuple[str, tuple[object, ...]]  # (table, values)
EXAMPLE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_unavailable(reason: str) -> NoReturn:
    """Skip with the reason, or fail when CI is set (CI must run the PostgreSQL tests)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the PostgreSQL tests must run)")
    pytest.skip(reason)


@contextlib.asynccontextmanager
async def postgres_database(prefix: str = "test") -> AsyncIterator[str]:
    """The URL of a fresh, empty database `switchboard_<prefix>_<random>` on the
    TEST_POSTGRES_URL server; dropped afterwards even when connections to it are still open."""
    if not re.fullmatch(r"[a-z0-9_]{1,30}", prefix):
        raise ValueError(f"database prefix {prefix!r}: lower-case letters, digits, _ only")
    admin_url = os.environ.get("TEST_POSTGRES_URL")
    if not admin_url:
        postgres_unavailable(f"TEST_POSTGRES_URL is unset (e.g. {EXAMPLE_URL})")
    import asyncpg  # only here: the SQLite-only tests need no PostgreSQL driver

    try:
        admin = await asyncpg.connect(admin_url, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        postgres_unavailable(f"PostgreSQL at TEST_POSTGRES_URL is unreachable: {exc}")
    name = f"switchboard_{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def sqlite_path(database_url: str) -> Path:
    return Path(database_url.removeprefix("sqlite:///"))


async def dump_sqlite(path: Path) -> list[Row]:
    rows: list[Row] = []
    async with aiosqlite.connect(path) as db:
        tables = await db.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        for (table,) in tables:
            for row in await db.execute_fetchall(f'SELECT * FROM "{table}"'):
                rows.append((table, tuple(row)))
    return rows


async def dump_postgres(url: str) -> list[Row]:
    import asyncpg

    rows: list[Row] = []
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
        for record in tables:
            table = record["table_name"]
            for row in await conn.fetch(f'SELECT * FROM "{table}"'):
                rows.append((table, tuple(row.values())))
    finally:
        await conn.close()
    return rows


async def dump_rows(database_url: str) -> list[Row]:
    """Every row of every table of the database at `database_url` (either backend)."""
    if database_url.startswith("sqlite:"):
        return await dump_sqlite(sqlite_path(database_url))
    return await dump_postgres(database_url)


async def audit_log(database_url: str) -> list[dict[str, object]]:
    """The audit table as stored (newest first): what an auditor with the database sees. The
    store itself only counts entries (audit_count); tests read the log through the database."""
    if database_url.startswith("sqlite:"):
        async with aiosqlite.connect(sqlite_path(database_url)) as db:
            rows = await db.execute_fetchall(
                "SELECT at, actor, command, detail FROM audit ORDER BY pk DESC"
            )
        return [dict(zip(("at", "actor", "command", "detail"), row, strict=True)) for row in rows]
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        records = await conn.fetch("SELECT at, actor, command, detail FROM audit ORDER BY seq DESC")
    finally:
        await conn.close()
    return [dict(record) for record in records]
