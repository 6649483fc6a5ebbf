"""Messages the bot sends on its own (issue 15) through the real PTB and the Bot API emulator:
where they go, what a refusal means (CHAT_GONE: the scheduler falls back to the private chat)
and what a transient failure means (RETRY: nothing lost, no part sent twice)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.text import TELEGRAM_LIMIT
from bot.messages import Outgoing, ReplyFile, SendResult
from tests.e2e.conftest import outgoing as to_user
from tests.e2e.telegram.conftest import GROUP, USER, RunningBot

pytestmark = pytest.mark.e2e


def outgoing(text: str, chat: int | None = None, **reply: Any) -> Outgoing:
    return to_user("telegram", USER, text, chat, id=f"reminder:job1:{len(text)}", **reply)


async def test_to_the_chat_it_was_set_in_or_the_private_chat(bot: RunningBot) -> None:
    assert await bot.adapter.send_outgoing(outgoing("Reminder: stretch")) is SendResult.SENT
    assert await bot.adapter.send_outgoing(outgoing("AAPL above 200", GROUP)) is SendResult.SENT

    assert bot.tg.shown(USER) == ["Reminder: stretch"]
    assert bot.tg.shown(GROUP) == ["AAPL above 200"]


async def test_a_private_one_never_reaches_the_group(bot: RunningBot) -> None:
    item = outgoing("your watchlist digest", GROUP, private=True)

    assert await bot.adapter.send_outgoing(item) is SendResult.SENT
    assert bot.tg.shown(USER) == ["your watchlist digest"]
    assert bot.tg.shown(GROUP) == []


@pytest.mark.parametrize("why", ["blocked", "kicked", "not_found"])
async def test_a_chat_gone_for_good_says_so(bot: RunningBot, why: str) -> None:
    chat = USER if why == "blocked" else GROUP
    bot.tg.chat_gone(chat, why)

    result = await bot.adapter.send_outgoing(outgoing("Reminder", None if chat == USER else chat))

    assert result is SendResult.CHAT_GONE
    assert bot.tg.shown(chat) == []


async def test_a_bot_api_that_keeps_failing_means_retry_and_nothing_is_sent_twice(
    bot: RunningBot,
) -> None:
    long = ("word " * TELEGRAM_LIMIT)[: TELEGRAM_LIMIT + 100]
    bot.tg.fail_next("sendMessage", status=502, after=1)  # the first part goes out, not the 2nd

    assert await bot.adapter.send_outgoing(outgoing(long)) is SendResult.RETRY
    assert len(bot.tg.sent(USER)) == 1
    # Tried once (the scheduler retries with its own backoff), not with the sender's backoff.
    assert len(bot.tg.calls_to("sendMessage", ok_only=False)) == 2
    assert await bot.adapter.send_outgoing(outgoing(long)) is SendResult.SENT

    texts = bot.tg.texts(USER)
    assert len(texts) == 2  # the retry sent only the part still missing
    assert "".join(texts).replace(" ", "") == long.replace(" ", "")


async def test_a_file_goes_out_captioned(bot: RunningBot) -> None:
    file = ReplyFile("digest.txt", b"AAPL 187.42", "text/plain")

    assert await bot.adapter.send_outgoing(outgoing("Your digest", file=file)) is SendResult.SENT
    [call] = bot.tg.calls_to("sendDocument")
    assert int(call.params["chat_id"]) == USER
    assert call.params["caption"] == "Your digest"
