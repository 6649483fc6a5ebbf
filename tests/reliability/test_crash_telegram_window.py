"""Telegram's unavoidable duplicate window, kept small: a reply that left just before a crash,
unrecorded, is sent again after the restart. A streamed answer widens that window to the whole
stream (its first words are out long before the answer is marked sent), so a quick answer is
sent as one message and only an answer that keeps coming for STREAM_AFTER is shown while it
streams. Real PTB Bot against the Bot API emulator; the sender's clock is stepped by the test
instead of waiting."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from adapters.telegram.delivery import STREAM_AFTER, TurnWriter
from adapters.telegram.sender import EDIT_INTERVAL, Sender, Target
from bot.messages import Reply
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import Clock
from tests.reliability.conftest import TOKEN

pytestmark = pytest.mark.e2e
CHAT = 424_242


@pytest.fixture
async def writer(
    tg: TelegramApiEmulator,
) -> AsyncIterator[tuple[TurnWriter, Clock]]:
    clock = Clock()
    async with Bot(TOKEN, base_url=tg.base_url) as bot:
        sender = Sender(bot, "switchboard_test_bot", retry_delay=0.01, clock=clock)
        yield TurnWriter(sender, Target(chat_id=CHAT, user_id=CHAT, group=False)), clock


async def test_a_quick_answer_is_one_message_without_edits(
    tg: TelegramApiEmulator, writer: tuple[TurnWriter, Clock]
) -> None:
    turn, clock = writer
    text = ""
    for word in ("Here's ", "one ", "about ", "python."):
        text += word
        await turn.write(Reply(text, partial=True))
        clock.now += STREAM_AFTER / 10
    await turn.write(Reply(text))
    assert tg.texts(CHAT) == ["Here's one about python."]
    assert not tg.calls_to("editMessageText")


async def test_a_slow_stream_is_shown_while_it_comes_and_ends_as_the_whole_answer(
    tg: TelegramApiEmulator, writer: tuple[TurnWriter, Clock]
) -> None:
    turn, clock = writer
    await turn.write(Reply("Thinking", partial=True))
    clock.now += STREAM_AFTER
    await turn.write(Reply("Thinking about", partial=True))
    clock.now += EDIT_INTERVAL
    await turn.write(Reply("Thinking about it", partial=True))
    await turn.write(Reply("Thinking about it: done."))
    assert tg.texts(CHAT) == ["Thinking about"]  # one message, shown once it kept coming
    edits = [c.params["text"] for c in tg.calls_to("editMessageText")]
    assert edits == ["Thinking about it", "Thinking about it: done."]
    assert tg.shown(CHAT) == ["Thinking about it: done."]
