"""Alerts and reminders on Telegram end to end (issue 15): set by chat through the real PTB and
the Bot API emulator, fired by the real scheduler on a hand-stepped clock, with the quotes
emulator scripting the price path. The scheduler's ticks are called by the test (no waiting):
each one is a poll, since the clock moves past ALERT_POLL_SECONDS between them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings
from testkit.emulators.quotes import QuotesEmulator
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from tests.e2e.conftest import POLL, Fired, price
from tests.e2e.telegram.conftest import GROUP, TIMEOUT, USER, RunningBot, bot_env

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(tg: TelegramApiEmulator, tmp_path: Path, market: QuotesEmulator) -> Settings:
    env = {**bot_env(tg, tmp_path), "QUOTES_BASE_URL": market.base_url}
    return Settings.from_env(env, dotenv_path=None)


async def test_an_alert_set_by_chat_fires_once_per_crossing(
    bot: RunningBot, market: QuotesEmulator, fired: Fired
) -> None:
    price(market, "TSLA", 160.0)
    [ok] = await bot.ask(USER, USER, "tell me when TSLA drops below 150")
    assert ok == "OK: I'll tell you in our private chat when TSLA below 150."
    await fired.after(POLL)
    assert len(bot.tg.shown(USER)) == 1  # not crossed: nothing

    price(market, "TSLA", 149.0)
    await fired.after(POLL)
    [alert] = bot.tg.shown(USER)[1:]
    assert alert.startswith("🔔 TSLA below 150: now 149")

    for wobble in (149.5, 151.0, 149.0):  # back above, but not by 1% (151.5): not re-armed
        price(market, "TSLA", wobble)
        await fired.after(POLL)
    assert len(bot.tg.shown(USER)) == 2

    for path in (152.0, 148.0):  # re-armed above 151.5, then crossed again
        price(market, "TSLA", path)
        await fired.after(POLL)
    assert bot.tg.shown(USER)[2].startswith("🔔 TSLA below 150: now 148")
    assert len(bot.tg.shown(USER)) == 3


async def test_a_reminder_set_by_chat_arrives_with_its_text(bot: RunningBot, fired: Fired) -> None:
    [ok] = await bot.ask(USER, USER, "remind me in 10 minutes to stretch")
    assert 'I\'ll remind you: "stretch"' in ok

    await fired.after(9 * 60)
    assert len(bot.tg.shown(USER)) == 1  # not yet
    await fired.after(60 + 1)
    assert bot.tg.shown(USER)[1:] == ['⏰ Reminder: "stretch"']
    await fired.after(3600)
    assert len(bot.tg.shown(USER)) == 2  # once


async def test_listing_and_removing_by_chat(
    bot: RunningBot, market: QuotesEmulator, fired: Fired
) -> None:
    await bot.ask(USER, USER, "alert me if AAPL goes above 200")
    await bot.ask(USER, USER, "remind me tomorrow at 9 to call mom")

    [alerts] = await bot.ask(USER, USER, "show my alerts")
    assert alerts.split() == ["Your", "alerts:", "1.", "AAPL", "above", "200"]  # shown as a list
    [reminders] = await bot.ask(USER, USER, "what reminders do I have?")
    assert 'call mom"' in reminders and reminders.split()[:3] == ["Your", "reminders:", "1."]
    [removed] = await bot.ask(USER, USER, "remove alert 1")
    assert removed == "Removed: AAPL above 200"

    price(market, "AAPL", 250.0)
    await fired.after(POLL)
    assert not any(text.startswith("🔔") for text in bot.tg.shown(USER))


async def test_in_a_group_it_fires_there_and_falls_back_to_the_private_chat(
    bot: RunningBot, market: QuotesEmulator, fired: Fired
) -> None:
    price(market, "MSFT", 400.0)
    await bot.ask(GROUP, USER, "@switchboard_test_bot tell me when MSFT goes above 420")
    await bot.ask(GROUP, USER, "@switchboard_test_bot remind me in 1 minute to stand up")
    await fired.after(61)
    assert bot.tg.shown(GROUP)[-1] == '⏰ Reminder: "stand up"'

    bot.tg.chat_gone(GROUP, "kicked")  # the bot was removed from the group
    price(market, "MSFT", 421.0)
    await fired.after(POLL)  # refused by the group: CHAT_GONE, moved to the private chat
    await fired.after(POLL)
    assert bot.tg.shown(USER)[-1].startswith("🔔 MSFT above 420: now 421")
    assert sum(text.startswith("🔔") for text in bot.tg.shown(GROUP)) == 0


async def test_alerts_listed_in_a_group_go_to_the_private_chat_only(bot: RunningBot) -> None:
    await bot.ask(GROUP, USER, "@switchboard_test_bot tell me when NVDA goes above 900")
    before = len(bot.tg.shown(USER))

    [note] = await bot.ask(GROUP, USER, "@switchboard_test_bot show my alerts")

    assert "private chat" in note and "NVDA" not in note
    assert not any("NVDA above 900" in text for text in bot.tg.shown(GROUP)[-1:])
    await wait_until(lambda: len(bot.tg.shown(USER)) > before, timeout=TIMEOUT)
    assert "1. NVDA above 900" in bot.tg.shown(USER)[-1]


async def test_the_commands_set_list_and_remove(
    bot: RunningBot, market: QuotesEmulator, fired: Fired
) -> None:
    price(market, "AAPL", 190.0)
    await bot.ask(USER, USER, "/alert AAPL above 200")
    await bot.ask(USER, USER, "/remind in 10m stretch")
    await bot.ask(USER, USER, "/remind in 20m drink water")

    [alerts] = await bot.ask(USER, USER, "/alerts")
    [reminders] = await bot.ask(USER, USER, "/reminders")
    assert "1. AAPL above 200" in alerts
    assert '"stretch"' in reminders and '"drink water"' in reminders
    [removed] = await bot.ask(USER, USER, "/remind remove 1")
    assert '"stretch"' in removed

    price(market, "AAPL", 201.0)
    await fired.after(21 * 60)
    alerts_fired = [t for t in bot.tg.shown(USER) if t.startswith("🔔")]
    reminded = [t for t in bot.tg.shown(USER) if t.startswith("⏰")]
    assert len(alerts_fired) == 1 and alerts_fired[0].startswith("🔔 AAPL above 200: now 201")
    assert reminded == ['⏰ Reminder: "drink water"']  # the removed one never fires
