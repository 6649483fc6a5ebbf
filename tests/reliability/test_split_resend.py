"""A reply longer than Telegram's 4096 UTF-16 units goes out in parts. When a later part cannot
be sent (the Bot API answers 502 until the sender gives up), the reply is tried again later in
the run with only the parts that did not go out: part 1 is never sent twice. Real PTB and the
real OpenAI client against their emulators, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import Bot

from adapters.telegram.delivery import STREAM_AFTER, Progress, TurnWriter
from adapters.telegram.sender import (
    EDIT_INTERVAL,
    SEND_ATTEMPTS,
    DeliveryFailed,
    Sender,
    Target,
)
from adapters.text import TELEGRAM_LIMIT, split_message, utf16_len
from bot.messages import Reply
from bot.settings import Settings
from testkit.emulators.llm import LLMEmulator, Say
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import Clock, wait_until
from tests.e2e.telegram.conftest import TIMEOUT, TOKEN, USER, RunningBot, bot_env, start_bot

pytestmark = pytest.mark.e2e

LONG = " ".join(f"word{n}" for n in range(1100))  # ~9,000 characters: three parts


@pytest.fixture
async def running(any_db_url: str, tmp_path: Path) -> AsyncIterator[tuple[RunningBot, LLMEmulator]]:
    async with TelegramApiEmulator(TOKEN) as tg, LLMEmulator() as llm:
        env = bot_env(tg, tmp_path) | {
            "DATABASE_URL": any_db_url,
            "OPENROUTER_API_KEY": "sk-or-test-key",
            "LLM_BASE_URL": llm.base_url,
            "LLM_MODEL": "test/model",
        }
        async for bot in start_bot(Settings.from_env(env, dotenv_path=None), tg):
            yield bot, llm


async def test_a_failed_second_part_is_sent_alone_later(
    running: tuple[RunningBot, LLMEmulator],
) -> None:
    bot, llm = running
    parts = split_message(LONG, TELEGRAM_LIMIT, utf16_len)
    assert len(parts) == 3
    llm.script(Say(LONG), Say(LONG))  # a second model call, should the retried turn make one
    bot.tg.fail_next("sendMessage", SEND_ATTEMPTS, status=502, after=1)
    bot.tg.private_text(USER, "tell me everything")

    async def answered() -> bool:
        return len(bot.tg.sent(USER)) >= len(parts) and await bot.settled()

    await wait_until(answered, timeout=TIMEOUT)
    assert bot.tg.texts(USER) == parts
    failed = [c for c in bot.tg.calls_to("sendMessage", ok_only=False) if c.status == 502]
    assert len(failed) == SEND_ATTEMPTS and all(c.params["text"] == parts[1] for c in failed)
    assert not llm.unexpected


async def test_a_stream_whose_final_edit_failed_is_finished_in_place() -> None:
    """The writer of a retried turn edits the message the failed attempt's stream left,
    instead of sending the answer again under it."""
    clock, progress, chat = Clock(), Progress(), Target(chat_id=USER, user_id=USER, group=False)
    async with TelegramApiEmulator(TOKEN) as tg, Bot(TOKEN, base_url=tg.base_url) as bot:
        sender = Sender(bot, "switchboard_test_bot", retry_delay=0.01, clock=clock)
        first = TurnWriter(sender, chat, progress)
        for words in ("The answer", "The answer is long"):
            await first.write(Reply(words, partial=True))
            clock.now += STREAM_AFTER + EDIT_INTERVAL
        assert tg.shown(USER) == ["The answer is long"]
        tg.fail_next("editMessageText", SEND_ATTEMPTS, status=502)
        with pytest.raises(DeliveryFailed):
            await first.write(Reply("The answer is long and whole."))
        retried = TurnWriter(sender, chat, progress)
        await retried.write(Reply("The answer is", partial=True))
        await retried.write(Reply("The answer is long and whole."))
        assert tg.shown(USER) == ["The answer is long and whole."]
        assert len(tg.sent(USER)) == 1
