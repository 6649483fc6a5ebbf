"""Chat through the real PTB Application: private turns, groups, non-text, redelivery, errors."""

from __future__ import annotations

import logging

import pytest

from adapters.telegram.sender import SEND_ATTEMPTS
from testkit.helpers import wait_until
from tests.e2e.telegram.conftest import GROUP, TIMEOUT, TOKEN, USER, RunningBot

pytestmark = pytest.mark.e2e


async def test_private_message_is_a_turn(bot: RunningBot) -> None:
    # ("typing…" only for a slow answer, when the core says so: tests/e2e/telegram/test_turns.py)
    [reply] = await bot.ask(USER, USER, "Hi there, how are you?")
    assert reply.strip()
    sent = bot.tg.sent(USER)[0]
    assert "parse_mode" not in sent.params  # plain text: nothing the model writes can break it
    assert "reply_parameters" not in sent.params  # no need to quote in a private chat


async def test_joke_flow_remembers_the_topic(bot: RunningBot) -> None:
    [joke] = await bot.ask(USER, USER, "Tell me a joke about Python")
    assert joke.strip()
    # One message: a quick answer is sent whole; a stream still coming after STREAM_AFTER is
    # sent with its first words and edited up to the whole joke.
    [first] = bot.tg.texts(USER)
    edits = [c.params["text"] for c in bot.tg.calls_to("editMessageText")]
    assert joke.startswith(first.strip())
    assert (edits and edits[-1] == joke) or first == joke
    user_id = await bot.app.store.find_user("telegram", str(USER))
    assert user_id is not None
    [info] = await bot.app.store.list_sessions(bot.app.settings.app_name, user_id)
    session = await bot.app.store.get_session(
        bot.app.settings.app_name, user_id, info.session_id, recent_events=0
    )
    assert session is not None
    assert "python" in str(session.state.get("user:joke_topics")).lower()
    [prefs] = await bot.ask(USER, USER, "/prefs")
    topics = next(line for line in prefs.splitlines() if line.startswith("Joke topics:"))
    assert "python" in topics.lower()


async def test_group_chatter_is_ignored_mentions_and_replies_answered(bot: RunningBot) -> None:
    bot.tg.group_text(GROUP, USER, "just chatting with friends")
    bot.tg.group_text(GROUP, USER, "/help@some_other_bot")
    [answer] = await bot.ask(GROUP, USER, "@switchboard_test_bot tell me a joke")
    assert answer.strip()
    assert len(bot.tg.sent(GROUP)) == 1  # the chatter and the other bot's command got nothing
    mention = bot.tg.sent(GROUP)[0]
    assert mention.params["reply_parameters"]["message_id"]  # answers quote the asker
    bot_message = bot.tg.bot_messages(GROUP)[0]["message_id"]
    [again] = await bot.ask(GROUP, USER, "another one please", reply_to=bot_message)
    assert again.strip()
    [helped] = await bot.ask(GROUP, USER, "/help")
    assert "/watchlist" in helped
    handled = await bot.app.store.history(
        bot.app.settings.app_name,
        str(await bot.app.store.find_user("telegram", str(USER))),
        limit=50,
    )
    said = " ".join(e.text for e in handled if e.author == "user")
    assert "just chatting" not in said and "@switchboard_test_bot" not in said


async def test_sticker_gets_a_short_answer(bot: RunningBot) -> None:
    before = len(bot.tg.bot_messages(USER))
    bot.tg.sticker(USER, USER)
    await wait_until(lambda: len(bot.tg.bot_messages(USER)) > before, timeout=TIMEOUT)
    assert bot.tg.shown(USER)[-1] == "I can only read text for now."


async def test_same_update_delivered_twice_is_answered_once(bot: RunningBot) -> None:
    first = bot.tg.private_text(USER, "Tell me a joke about cats")
    await wait_until(lambda: bot.tg.sent(USER), timeout=TIMEOUT)
    await wait_until(bot.settled, timeout=TIMEOUT)
    # Telegram re-sends an update the bot did not confirm; here it arrives in the next batch,
    # ahead of a new message, so once the new one is answered the duplicate was seen too.
    bot.tg.deliver_again(first)
    replies = await bot.ask(USER, USER, "/help")
    assert len(replies) == 1 and "/watchlist" in replies[0]
    assert len(bot.tg.sent(USER)) == 2
    gets = [c for c in bot.tg.calls_to("getUpdates") if c.params.get("offset")]
    assert any(int(c.params["offset"]) == first + 1 for c in gets)


async def test_429_on_send_is_retried_and_delivered_once(bot: RunningBot) -> None:
    bot.tg.fail_next("sendMessage", status=429, retry_after=1)
    [reply] = await bot.ask(USER, USER, "/start")
    assert "/help" in reply
    tries = bot.tg.calls_to("sendMessage", ok_only=False)
    assert [c.status for c in tries] == [429, 200]
    assert tries[0].params["text"] == tries[1].params["text"]
    assert tries[1].at - tries[0].at >= 1.0  # retry_after honoured


async def test_network_errors_are_retried(bot: RunningBot) -> None:
    bot.tg.fail_next("getUpdates", status=502)
    bot.tg.fail_next("sendMessage", status=502)
    [reply] = await bot.ask(USER, USER, "/start")
    assert "/help" in reply
    assert [c.status for c in bot.tg.calls_to("sendMessage", ok_only=False)] == [502, 200]
    assert bot.adapter is not None  # still running: the next message is answered too
    [helped] = await bot.ask(USER, USER, "/help")
    assert "/prefs" in helped


async def test_a_reply_the_network_swallowed_is_sent_again_later(bot: RunningBot) -> None:
    bot.tg.fail_next("sendMessage", times=SEND_ATTEMPTS, status=502)
    [reply] = await bot.ask(USER, USER, "/start")
    assert "/help" in reply
    statuses = [c.status for c in bot.tg.calls_to("sendMessage", ok_only=False)]
    assert statuses == [502] * SEND_ATTEMPTS + [200]  # given up, then tried again: once


async def test_token_never_logged(settings, tg, caplog: pytest.LogCaptureFixture) -> None:
    from tests.e2e.telegram.conftest import start_bot

    caplog.set_level(logging.INFO)
    async for running in start_bot(settings, tg):
        await running.ask(USER, USER, "hello")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in text
    assert TOKEN.split(":")[1] not in text


async def test_mentions_and_command_suffixes_are_stripped(bot: RunningBot) -> None:
    # Entity offsets count UTF-16 units: the emoji before the mention take two each.
    await bot.ask(GROUP, USER, "🎉🎉 hey @switchboard_test_bot, tell me a joke about space")
    [added] = await bot.ask(GROUP, USER, "/watchlist@switchboard_test_bot add NVDA")
    assert "Added NVDA" in added
    user_id = await bot.app.store.find_user("telegram", str(USER))
    events = await bot.app.store.history(bot.app.settings.app_name, str(user_id), limit=50)
    said = [e.text for e in events if e.author == "user"]
    assert said[0] == "🎉🎉 hey tell me a joke about space"
