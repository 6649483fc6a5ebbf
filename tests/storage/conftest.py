"""Store fixtures: every contract test runs once per backend, like aiogram's storage tests.

A new backend is one more entry in BACKENDS plus a way to make an empty database for it and to
dump its raw rows (for the "nothing about a deleted user is left" checks).

PostgreSQL: each test gets a fresh database created from TEST_POSTGRES_URL with asyncpg and
dropped afterwards. Skipped with the reason when the URL is unset, the server unreachable or
storage.postgres not written yet — but with CI set, a missing or unreachable server fails.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiosqlite
import pytest

from storage import Store, open_store

BACKENDS = ["sqlite", "postgres"]
Row = tuple[str, tuple[object, ...]]  # (table, values)


@dataclass(frozen=True)
class Backend:
    name: str
    url: str
    dump_rows: Callable[[], Awaitable[list[Row]]]

    async def open(self) -> Store:
        return await open_store(self.url)


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


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so PostgreSQL tests must run)")
    pytest.skip(reason)


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, empty database on the TEST_POSTGRES_URL server; dropped afterwards."""
    admin_url = os.environ.get("TEST_POSTGRES_URL")
    if not admin_url:
        _unavailable(
            "TEST_POSTGRES_URL is unset (e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
        )
    if importlib.util.find_spec("storage.postgres") is None:
        pytest.skip("storage.postgres is not written yet")
    import asyncpg

    try:
        admin = await asyncpg.connect(admin_url, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        _unavailable(f"PostgreSQL at TEST_POSTGRES_URL is unreachable: {exc}")
    name = f"switchboard_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        yield Backend("sqlite", f"sqlite:///{path}", lambda: dump_sqlite(path))
    else:
        async with postgres_database() as url:
            yield Backend("postgres", url, lambda: dump_postgres(url))


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.close()
