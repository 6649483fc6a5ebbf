"""Fixtures for every test directory: databases (the helpers behind them: testkit/databases.py),
the market-data emulator, the logging setup undone.

- `db_url`: an SQLite file in the test's tmp_path.
- `postgres_db_url`: a fresh PostgreSQL database, dropped afterwards (skipped without
  TEST_POSTGRES_URL, failing when CI is set).
- `any_db_url`: the test runs twice, on `db_url` and on `postgres_db_url` (marked `postgres`).
- `market`: the quotes emulator, with no prices until the test sets them.
- `restore_logging`: undoes what `setup_logging` did to the root logger and the noisy loggers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.logging_setup import NOISY_LOGGERS, RedactingFilter
from testkit.databases import postgres_database
from testkit.emulators.quotes import QuotesEmulator


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.db'}"


def _prefix(request: pytest.FixtureRequest) -> str:
    """The test's directory (storage, core, ...): a database left behind tells whose it is."""
    return re.sub(r"[^a-z0-9_]", "_", request.path.parent.name.lower())[:30] or "test"


@pytest.fixture
async def postgres_db_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    async with postgres_database(_prefix(request)) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("db_url" if request.param == "sqlite" else "postgres_db_url")


@pytest.fixture
async def market() -> AsyncIterator[QuotesEmulator]:
    async with QuotesEmulator() as emulator:
        yield emulator


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in root.handlers:
        for f in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(f)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)
