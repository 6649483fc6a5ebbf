"""What the end-to-end tests of both platforms share (each platform's conftest starts its bot):

- `Fired`: the real scheduler over a running app's adapters, on a clock the test steps, so a
  due reminder or a crossed alert is sent when the test says, without waiting;
- `fired`: the one over the running bot (`bot`, from the platform's conftest);
- `price`: the quotes emulator's next price for a symbol;
- `outgoing`: a message the bot sends on its own, to one user of one platform;
- `MEMORY_QUESTIONS`: the ways a user asks what the bot remembers about them;
- `both_emulators`, `both_platforms_env`, `both_platforms`: the Telegram and the Discord
  emulator, a configuration for both, one app with both adapters started on it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import pytest

from adapters.discord import DiscordAdapter
from adapters.telegram import TelegramAdapter
from bot.app import App, open_app
from bot.messages import Outgoing, OutgoingSender, Reply
from bot.scheduler import Scheduler
from bot.settings import Settings
from testkit.bot_process import NO_NETWORK
from testkit.emulators.discord_api import DiscordEmulator
from testkit.emulators.quotes import Listing, QuotesEmulator
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import Clock

POLL = 1.0  # the alerts' poll interval: each `after(POLL)` is one poll

MEMORY_QUESTIONS = ["what is my dog?", "what do you know about me?", "what did I tell you earlier?"]


class Fired:
    """The scheduler of a running app, ticked by the test on its own clock."""

    def __init__(self, app: App, senders: Sequence[OutgoingSender]) -> None:
        assert app.quotes is not None
        self.clock = Clock()
        self.clock.now = time.time()  # the tools stamp reminders with the real time
        self.scheduler = Scheduler(
            app.store,
            app.settings.app_name,
            app.quotes,
            senders,
            poll_seconds=POLL,
            clock=self.clock,
            jitter=0.0,
        )

    async def after(self, seconds: float) -> None:
        self.clock.now += seconds
        await self.scheduler.tick()


class _RunningBot(Protocol):
    """Either platform's running bot (its conftest's RunningBot)."""

    @property
    def app(self) -> App: ...

    @property
    def adapter(self) -> OutgoingSender: ...


@pytest.fixture
def fired(bot: _RunningBot) -> Fired:
    return Fired(bot.app, [bot.adapter])


def price(market: QuotesEmulator, symbol: str, value: float) -> None:
    """The symbol's price from now on; its previous close is the first price the test set."""
    first = market.prices.get(symbol, Listing(value, value))
    market.prices[symbol] = Listing(value, first.previous_close, "USD", symbol)


def outgoing(
    platform: str, user: int, text: str, chat: int | None, *, id: str, **reply: Any
) -> Outgoing:
    """`chat` None: the user's private chat (a Telegram private chat, a Discord DM)."""
    return Outgoing(
        id=id,
        platform=platform,
        chat_id=None if chat is None else str(chat),
        platform_user_id=str(user),
        user_id="u1",
        reply=Reply(text, **reply),
    )


@asynccontextmanager
async def both_emulators(
    tg_token: str, dc_token: str
) -> AsyncIterator[tuple[TelegramApiEmulator, DiscordEmulator]]:
    """Each emulator accepting only its own platform's token."""
    async with TelegramApiEmulator(tg_token) as tg, DiscordEmulator() as dc:
        dc.expected_auth = f"Bot {dc_token}"
        yield tg, dc


def both_platforms_env(
    tg: TelegramApiEmulator, dc: DiscordEmulator, dc_token: str, database_url: str
) -> dict[str, str]:
    """Both platforms configured, on their emulators (as environment variables)."""
    return {
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_BASE": tg.base_url,
        "DISCORD_BOT_TOKEN": dc_token,
        "DISCORD_API_BASE": dc.api_base,
        "DISCORD_GATEWAY_URL": dc.gateway_url,
        "DATABASE_URL": database_url,
        "QUOTES_BASE_URL": NO_NETWORK,
    }


@asynccontextmanager
async def both_platforms(
    settings: Settings,
) -> AsyncIterator[tuple[App, TelegramAdapter, DiscordAdapter]]:
    """The app with both adapters started (test-sized retry and guild waits), stopped after."""
    async with open_app(settings) as app:
        telegram = TelegramAdapter(settings, app.core, retry_delay=0.05)
        discord = DiscordAdapter(settings, app.core, guild_ready_timeout=0.05)
        await telegram.start()
        await discord.start()
        try:
            yield app, telegram, discord
        finally:
            await discord.stop()
            await telegram.stop()
