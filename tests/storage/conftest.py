"""Store fixtures: every contract test runs once per backend, like aiogram's storage tests.

A new backend is one more parameter of `any_db_url` (tests/conftest.py) plus a way to make an
empty database for it and to dump its raw rows (testkit/databases.py), for the "nothing about a
deleted user is left" checks.

PostgreSQL: each test gets a fresh database on the TEST_POSTGRES_URL server, dropped afterwards;
skipped with the reason when the URL is unset or the server unreachable, failing when CI is set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from storage import Store, open_store
from testkit.databases import Row, dump_rows


@dataclass(frozen=True)
class Backend:
    name: str
    url: str

    async def open(self, **options: int) -> Store:
        return await open_store(self.url, **options)

    async def dump_rows(self) -> list[Row]:
        return await dump_rows(self.url)


@pytest.fixture
def backend(any_db_url: str) -> Backend:
    return Backend("sqlite" if any_db_url.startswith("sqlite:") else "postgres", any_db_url)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.close()
