""" "typing…" is refreshed while a turn runs, except when the bot is at Telegram's rate limit:
then each refresh would wait in PTB's limiter and delay somebody's answer, so a chat action that
waited longer than TYPING_PATIENCE is not repeated. Real PTB Bot against the Bot API emulator;
the sender's clock is stepped by the test instead of waiting."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from adapters.telegram.delivery import Typing
from adapters.telegram.sender import TYPING_PATIENCE, Sender, Target
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import Clock, wait_until
from tests.e2e.telegram.conftest import TOKEN

pytestmark = pytest.mark.e2e
CHAT = 515_151
REFRESH = 0.02  # seconds between refreshes in these tests (4 s in production)


@pytest.fixture
async def sender(tg: TelegramApiEmulator) -> AsyncIterator[tuple[Sender, Clock]]:
    clock = Clock()
    async with Bot(TOKEN, base_url=tg.base_url) as bot:
        yield Sender(bot, "switchboard_test_bot", clock=clock, typing_refresh=REFRESH), clock


def typing_task() -> asyncio.Task[object]:
    return next(t for t in asyncio.all_tasks() if t.get_name() == f"telegram-typing-{CHAT}")


@contextlib.asynccontextmanager
async def showing(sender: Sender) -> AsyncIterator[None]:
    """ "typing…" from the block's start (as after the core's signal) to its end."""
    typing = Typing(sender, Target(chat_id=CHAT, user_id=CHAT, group=False))
    typing.start()
    try:
        yield
    finally:
        await typing.aclose()


async def test_typing_is_refreshed_while_the_turn_runs(
    tg: TelegramApiEmulator, sender: tuple[Sender, Clock]
) -> None:
    bot, _ = sender
    async with showing(bot):
        await wait_until(lambda: len(tg.calls_to("sendChatAction")) >= 3)
    count = len(tg.calls_to("sendChatAction"))
    assert all(c.params["action"] == "typing" for c in tg.calls_to("sendChatAction"))
    assert count >= 3
    # Over once the block ends: nothing is sent after it.
    assert len(tg.calls_to("sendChatAction")) == count


async def test_a_chat_action_that_waited_for_the_rate_limit_is_not_repeated(
    tg: TelegramApiEmulator, sender: tuple[Sender, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    bot, clock = sender
    caplog.set_level(logging.DEBUG, logger="adapters.telegram.sender")
    tg.hold("sendChatAction")  # the call waits, as behind a backlogged rate limiter
    async with showing(bot):
        await wait_until(lambda: tg.holding)
        refreshing = typing_task()
        clock.now += TYPING_PATIENCE + 1
        tg.drop_held()
        # The refresh loop ends although the turn goes on (calls would now go through).
        await wait_until(refreshing.done, timeout=5)
        assert "not refreshed" in caplog.text
        assert len(tg.holding) == 1
        assert not tg.calls_to("sendChatAction", ok_only=False)
    assert not tg.calls_to("sendChatAction", ok_only=False)
