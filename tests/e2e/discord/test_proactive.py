"""Alerts and reminders on Discord end to end (issue 15): set by chat through the real
discord.py and the emulator, fired by the real scheduler on a hand-stepped clock, with the
quotes emulator scripting the price path; each message's nonce comes from its outbox id."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.outgoing import NONCE_DIGITS
from bot.settings import Settings
from testkit.emulators.discord_api import EPHEMERAL, DiscordEmulator
from testkit.emulators.quotes import QuotesEmulator
from tests.e2e.conftest import POLL, Fired, price
from tests.e2e.discord.conftest import USER, RunningBot, bot_env

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(emu: DiscordEmulator, tmp_path: Path, market: QuotesEmulator) -> Settings:
    env = bot_env(emu, tmp_path, QUOTES_BASE_URL=market.base_url)
    return Settings.from_env(env, dotenv_path=None)


def proactive(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages if m["content"][:1] in ("🔔", "⏰")]


async def test_an_alert_set_in_a_channel_fires_there_once_per_crossing(
    bot: RunningBot, market: QuotesEmulator, fired: Fired
) -> None:
    guild = bot.emu.guild_channel_id
    price(market, "AAPL", 190.0)
    [ok] = await bot.say(USER, "alert me if AAPL goes above 200", guild=True, mention_bot=True)
    assert ok["content"] == "OK: I'll tell you here when AAPL above 200."

    for path in (201.0, 202.0, 199.0, 201.0):  # 199 is not 1% back: no re-arm
        price(market, "AAPL", path)
        await fired.after(POLL)
    [alert] = proactive(bot.emu.channel_messages(guild))
    assert alert.startswith("🔔 AAPL above 200: now 201")
    [message] = [m for m in bot.emu.channel_messages(guild) if m["content"] == alert]
    assert re.fullmatch(rf"o[0-9a-f]{{{NONCE_DIGITS}}}:0", message["nonce"])  # from the outbox id

    for path in (197.0, 203.0):  # back below 198 re-arms; above 200 fires again
        price(market, "AAPL", path)
        await fired.after(POLL)
    assert len(proactive(bot.emu.channel_messages(guild))) == 2


async def test_a_reminder_arrives_in_the_dm_and_a_deleted_channel_falls_back_to_it(
    bot: RunningBot, fired: Fired
) -> None:
    guild, dm = bot.emu.guild_channel_id, bot.emu.dm_channel_id(USER)
    await bot.say(USER, "remind me in 2 minutes to drink water")
    await bot.say(USER, "remind me in 3 minutes to stretch", guild=True, mention_bot=True)

    await fired.after(121)
    assert proactive(bot.emu.channel_messages(dm)) == ['⏰ Reminder: "drink water"']
    bot.emu.delete_channel(guild)
    await fired.after(60)  # the channel refuses (404 Unknown Channel): moved to the DM
    await fired.after(1)
    assert proactive(bot.emu.channel_messages(dm))[1:] == ['⏰ Reminder: "stretch"']
    assert proactive(bot.emu.channel_messages(guild)) == []


async def test_slash_commands_set_list_and_remove_privately(
    bot: RunningBot, market: QuotesEmulator, fired: Fired
) -> None:
    guild = bot.emu.guild_channel_id
    price(market, "MSFT", 400.0)
    alert = {"ticker": "MSFT", "condition": "above", "value": "420"}
    await bot.command(USER, "alert", alert, guild=True)
    await bot.command(USER, "remind", {"when": "in 10m", "text": "stretch"}, guild=True)
    await bot.command(USER, "remind", {"when": "in 20m", "text": "drink water"}, guild=True)

    [alerts] = await bot.command(USER, "alerts", guild=True)
    [reminders] = await bot.command(USER, "reminders", guild=True)
    assert "1. MSFT above 420" in alerts["content"]
    assert int(alerts["flags"]) & EPHEMERAL  # only the asking user sees the list
    assert '"stretch"' in reminders["content"] and '"drink water"' in reminders["content"]
    [removed] = await bot.command(USER, "remind", {"when": "remove", "text": "1"}, guild=True)
    assert '"stretch"' in removed["content"]

    price(market, "MSFT", 421.0)
    await fired.after(21 * 60)  # set in the channel: they fire there
    shown = proactive(bot.emu.channel_messages(guild))
    assert len(shown) == 2  # the removed reminder never fires
    assert '⏰ Reminder: "drink water"' in shown
    assert any(text.startswith("🔔 MSFT above 420: now 421") for text in shown)
