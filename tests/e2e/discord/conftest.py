"""Fixtures: the Discord emulator, settings read from an environment, the running bot.

The real discord.py client talks to the emulator on 127.0.0.1; behind it the real core
(bot.app.open_app) with SQLite in tmp_path and the offline model. Tests wait on the emulator's
records and the inbox, never sleep.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.discord import DiscordAdapter
from bot.app import App, open_app
from bot.settings import Settings
from testkit.emulators.discord_api import DiscordEmulator
from testkit.helpers import wait_until

# Shaped like a real bot token (base64 id . timestamp . hmac) and easy to grep for in logs.
TOKEN = "OTAwMDAwMDAwMDAwMDAwMDAx.GFAKE0.discord-e2e-SECRET-token_0123456789"
ADMIN = 1001
USER = 2002
TIMEOUT = 15.0


def bot_env(emu: DiscordEmulator, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The whole configuration, as environment variables (docs/architecture.md, "Configuration")."""
    return {
        "DISCORD_BOT_TOKEN": TOKEN,
        "DISCORD_API_BASE": emu.api_base,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "ADMIN_IDS": f"discord:{ADMIN}",
        # Nothing listens there: a quote lookup fails fast instead of reaching the internet.
        "QUOTES_BASE_URL": "http://127.0.0.1:9",
        **extra,
    }


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator() as emulator:
        emulator.expected_auth = f"Bot {TOKEN}"
        yield emulator


@pytest.fixture
def settings(emu: DiscordEmulator, tmp_path: Path) -> Settings:
    return Settings.from_env(bot_env(emu, tmp_path), dotenv_path=None)


@dataclass
class RunningBot:
    app: App
    adapter: DiscordAdapter
    emu: DiscordEmulator

    def user(self, user_id: int) -> dict[str, Any]:
        return self.emu.user(user_id, "admin" if user_id == ADMIN else f"user{user_id}")

    async def settled(self) -> bool:
        """Every recorded message answered (the core marks it only after the send)."""
        return not await self.app.store.inbox_pending("discord")

    async def say(self, user_id: int, text: str, **kw: Any) -> list[dict[str, Any]]:
        """A user message (DM unless guild=True); returns the bot's new messages in that
        channel, as they read once the turn is answered."""
        channel = self.emu.guild_channel_id if kw.get("guild") else user_id + 1
        before = {m["id"] for m in self.emu.channel_messages(channel)}
        sent = await self.emu.send_message(self.user(user_id), text, **kw)

        async def answered() -> bool:
            new = [m for m in self.emu.channel_messages(channel) if m["id"] not in before]
            return bool(new) and await self.settled()

        await wait_until(answered, timeout=TIMEOUT)
        replies = [m for m in self.emu.channel_messages(channel) if m["id"] not in before]
        assert all(m.get("nonce", "").startswith(f"{sent['id']}:") for m in replies)
        return replies

    async def command(
        self, user_id: int, name: str, options: dict[str, Any] | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        """A slash command; returns its follow-ups once the turn is answered."""
        payload = await self.emu.invoke_command(self.user(user_id), name, options, **kw)

        async def answered() -> bool:
            return bool(self.emu.followups(payload)) and await self.settled()

        await wait_until(answered, timeout=TIMEOUT)
        return self.emu.followups(payload)


@contextlib.asynccontextmanager
async def start_bot(
    settings: Settings, emu: DiscordEmulator, **options: Any
) -> AsyncIterator[RunningBot]:
    """The bot on the emulator; `options` go to DiscordAdapter (retry_delay, wall)."""
    async with open_app(settings) as app:
        adapter = DiscordAdapter(settings, app.core, guild_ready_timeout=0.05, **options)
        await adapter.start()
        try:
            yield RunningBot(app, adapter, emu)
        finally:
            emu.release()  # a failed test may have left requests parked
            await adapter.stop()


@pytest.fixture
async def bot(settings: Settings, emu: DiscordEmulator) -> AsyncIterator[RunningBot]:
    async with start_bot(settings, emu) as running:
        yield running
