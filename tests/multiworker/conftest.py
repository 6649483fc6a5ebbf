"""Fixtures of the multi-worker tests: the Bot API emulator and a fresh PostgreSQL database.

The database comes from TEST_POSTGRES_URL (created for the test, dropped after it): the tests
skip with the reason when it is unset or unreachable, and fail instead when CI is set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.emulators.telegram_api import TelegramApiEmulator
from tests.multiworker.workers import TOKEN
from tests.reliability.conftest import postgres_database


@pytest.fixture
async def tg() -> AsyncIterator[TelegramApiEmulator]:
    async with TelegramApiEmulator(TOKEN) as emulator:
        yield emulator


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with postgres_database() as url:
        yield url
