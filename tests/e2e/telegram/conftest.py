"""Fixtures: the Bot API emulator, settings read from an environment, the running bot.

Everything is local: the emulator on 127.0.0.1, SQLite in tmp_path, the offline model (no LLM key)
and a quotes URL nothing listens on. Tests wait on the emulator's records, never sleep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.telegram import TelegramAdapter
from bot.app import App, open_app
from bot.settings import Settings
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until

# Shaped like a real token (so the log redaction's pattern would catch it) and easy to grep for.
TOKEN = "987654321:AAFAKE-e2e-token-TELEGRAM-TESTS_0123456"
ADMIN = 1001
USER = 2002
GROUP = -100500
TIMEOUT = 15.0
RETRY_DELAY = 0.05


def bot_env(tg: TelegramApiEmulator, tmp_path: Path) -> dict[str, str]:
    """The whole configuration, as environment variables (docs/architecture.md, "Configuration")."""
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": tg.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "ADMIN_IDS": f"telegram:{ADMIN}",
        # Nothing listens there: a quote lookup fails fast instead of reaching the internet.
        "QUOTES_BASE_URL": "http://127.0.0.1:9",
    }


@pytest.fixture
async def tg() -> AsyncIterator[TelegramApiEmulator]:
    async with TelegramApiEmulator(TOKEN) as emulator:
        yield emulator


@pytest.fixture
def settings(tg: TelegramApiEmulator, tmp_path: Path) -> Settings:
    return Settings.from_env(bot_env(tg, tmp_path), dotenv_path=None)


@dataclass
class RunningBot:
    app: App
    adapter: TelegramAdapter
    tg: TelegramApiEmulator

    async def settled(self) -> bool:
        """Every recorded message answered (the core marks it only after the send)."""
        return not await self.app.store.inbox_pending("telegram")

    async def ask(self, chat_id: int, user_id: int, text: str, **kw: object) -> list[str]:
        """Send a message and return the bot's new messages in that chat once it answered."""
        before = len(self.tg.bot_messages(chat_id))
        if chat_id > 0:
            self.tg.private_text(user_id, text)
        else:
            self.tg.group_text(chat_id, user_id, text, **kw)  # type: ignore[arg-type]

        async def answered() -> bool:
            return len(self.tg.bot_messages(chat_id)) > before and await self.settled()

        await wait_until(answered, timeout=TIMEOUT)
        return self.tg.shown(chat_id)[before:]


async def start_bot(settings: Settings, tg: TelegramApiEmulator) -> AsyncIterator[RunningBot]:
    async with open_app(settings) as app:
        # Short retry steps keep the network-error tests fast; the logic is the production one.
        adapter = TelegramAdapter(settings, app.core, retry_delay=RETRY_DELAY)
        await adapter.start()
        try:
            yield RunningBot(app, adapter, tg)
        finally:
            await adapter.stop()


@pytest.fixture
async def bot(settings: Settings, tg: TelegramApiEmulator) -> AsyncIterator[RunningBot]:
    async for running in start_bot(settings, tg):
        yield running
