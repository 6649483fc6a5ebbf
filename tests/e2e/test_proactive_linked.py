"""A reminder whose chat is gone on one platform reaches the user's linked account on the other
(issue 15): Telegram and Discord adapters on one app (the real PTB and discord.py on the
emulators), the real scheduler on a stepped clock."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import App
from bot.messages import OutgoingSender
from bot.settings import Settings
from testkit.emulators.discord_api import DiscordEmulator
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from tests.e2e.conftest import Fired, both_emulators, both_platforms, both_platforms_env

pytestmark = pytest.mark.e2e

TG_TOKEN = "123456789:AAFAKE-proactive-linked-TELEGRAM_tok0"
DC_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GFAKE3.proactive-linked-DISCORD-token_42"
TG_USER = 3103
DC_USER = 4104
TIMEOUT = 15.0


@dataclass
class Running:
    app: App
    tg: TelegramApiEmulator
    dc: DiscordEmulator
    senders: tuple[OutgoingSender, ...]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with both_emulators(TG_TOKEN, DC_TOKEN) as (tg, dc):
        env = both_platforms_env(tg, dc, DC_TOKEN, f"sqlite:///{tmp_path / 'bot.db'}")
        settings = Settings.from_env(env, dotenv_path=None)
        async with both_platforms(settings) as (app, telegram, discord):
            yield Running(app, tg, dc, (telegram, discord))


# Whichever account the user met the bot on first, the other one is tried.
@pytest.mark.parametrize("first", ["telegram", "discord"])
async def test_a_blocked_telegram_chat_falls_back_to_the_linked_discord_dm(
    running: Running, first: str
) -> None:
    """`first`: where the person first wrote to the bot (the older identity)."""
    app, tg, dc = running.app, running.tg, running.dc
    ada = dc.user(DC_USER, "ada")
    dm = dc.dm_channel_id(DC_USER)

    async def telegram(text: str, expect: str) -> str:
        """Send on Telegram; the new messages once one contains `expect`."""
        before = len(tg.shown(TG_USER))
        tg.private_text(TG_USER, text)

        def shown() -> str:
            return "\n".join(tg.shown(TG_USER)[before:])

        await wait_until(lambda: shown() and expect in shown(), timeout=TIMEOUT)
        return shown()

    async def discord(text: str) -> str:
        before = len(dc.channel_messages(dm))
        await dc.send_message(ada, text)
        await wait_until(lambda: len(dc.channel_messages(dm)) > before, timeout=TIMEOUT)
        return str(dc.channel_messages(dm)[before]["content"])

    if first == "telegram":
        await telegram("hello", "")
    await discord("hello")
    code = re.search(r"Your link code: (\S+)", await telegram("/link", "Your link code"))
    assert code is not None
    assert (await discord(f"/link {code[1]} confirm")).startswith("Linked!")
    await telegram("remind me in 1 minute to call mom", "remind you")

    tg.chat_gone(TG_USER, "blocked")  # the user blocked the bot on Telegram
    fired = Fired(app, running.senders)
    await fired.after(61)  # refused on Telegram (403): moved to the next identity
    await fired.after(0)
    assert dc.channel_messages(dm)[-1]["content"] == '⏰ Reminder: "call mom"'
    assert not any(text.startswith("⏰") for text in tg.shown(TG_USER))
