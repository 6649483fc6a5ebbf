"""Fixtures of the multi-worker tests: the Bot API emulator. Databases come from the root
fixtures (tests/conftest.py): `postgres_db_url` is a fresh PostgreSQL database per test,
skipped with the reason without TEST_POSTGRES_URL, failing instead when CI is set."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.workers import TOKEN


@pytest.fixture
async def tg() -> AsyncIterator[TelegramApiEmulator]:
    async with TelegramApiEmulator(TOKEN) as emulator:
        yield emulator
