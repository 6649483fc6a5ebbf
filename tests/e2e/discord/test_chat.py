"""Chat on Discord end to end: real discord.py against the emulator, the real core behind it."""

from __future__ import annotations

import pytest

from adapters.discord.delivery import EDIT_INTERVAL, ChannelReplies
from adapters.text import DISCORD_LIMIT
from bot.messages import Reply
from testkit.emulators.discord_api import Fault
from testkit.helpers import wait_until
from tests.e2e.discord.conftest import ADMIN, USER, RunningBot

pytestmark = pytest.mark.e2e


async def test_dm_turn_answers_without_pings_and_a_quick_answer_without_typing(
    bot: RunningBot,
) -> None:
    replies = await bot.say(USER, "Hi, my name is Alice")

    assert [m["content"] for m in replies] == ["Nice to meet you, Alice! I'll remember that."]
    channel = f"/channels/{USER + 1}"
    posts = bot.emu.calls_to("POST", f"{channel}/messages")
    # "typing…" only when the core says the answer takes a while: a quick one is one call.
    assert not bot.emu.calls_to("POST", f"{channel}/typing")
    assert all(c.body["allowed_mentions"] == {"parse": []} for c in posts)
    assert all(c.body["enforce_nonce"] is True for c in posts)


async def test_joke_flow_streams_and_stores_the_topic(bot: RunningBot) -> None:
    (joke,) = await bot.say(USER, "Tell me a joke about Python")

    assert joke["content"].startswith("Here's one about python")
    # Streamed: posted with the first words, then edited to the whole joke.
    (post,) = bot.emu.calls_to("POST", rf"/channels/{USER + 1}/messages")
    assert len(post.body["content"]) < len(joke["content"])
    assert bot.emu.calls_to("PATCH", rf"/channels/{USER + 1}/messages/{joke['id']}")

    user_id = await bot.app.store.find_user("discord", str(USER))
    assert user_id is not None
    exported = await bot.app.store.export_user(bot.app.settings.app_name, user_id)
    assert "python" in str(exported).lower()
    (prefs,) = await bot.say(USER, "/prefs")
    assert "Joke topics: python" in prefs["content"]


async def test_guild_messages_are_answered_only_when_addressed(bot: RunningBot) -> None:
    ignored = await bot.emu.send_message(
        bot.user(USER), "just chatting, my name is Bob", guild=True
    )
    other_bot = bot.emu.user(555, "otherbot", bot=True)  # bots never start a turn
    await bot.emu.send_message(other_bot, "Hi, my name is Robo", guild=True, mention_bot=True)
    await bot.emu.send_message(bot.emu.bot_user, "Hi, my name is Me", guild=True, mention_bot=True)
    (answer,) = await bot.say(USER, "Hi, my name is Carol", guild=True, mention_bot=True)

    assert "Carol" in answer["content"]
    # One reply in the guild, threaded under the message that mentioned the bot.
    assert bot.emu.channel_messages(bot.emu.guild_channel_id) == [answer]
    asked = answer["nonce"].split(":")[0]
    assert answer["message_reference"]["message_id"] == asked != ignored["id"]
    # A reply to the bot is addressed too, even without a mention.
    (again,) = await bot.say(USER, "tell me a joke about cats", guild=True, reply_to=answer)
    assert "cats" in again["content"].lower()
    # The unaddressed message never reached the core (no inbox row, no user named Bob).
    user_id = await bot.app.store.find_user("discord", str(USER))
    assert "Bob" not in str(await bot.app.store.export_user(bot.app.settings.app_name, user_id))


async def test_non_text_message_gets_a_polite_answer(bot: RunningBot) -> None:
    photo = {"id": "5", "filename": "cat.png", "size": 10, "url": "https://cdn.invalid/cat.png"}
    photo |= {"proxy_url": photo["url"], "content_type": "image/png"}
    (answer,) = await bot.say(USER, "", attachments=[photo])
    assert answer["content"] == "I can only read text for now."


async def test_a_3000_character_reply_is_split_at_2000(bot: RunningBot) -> None:
    # An honest long answer: an admin's /history over a long conversation.
    for n in range(12):
        await bot.say(ADMIN, f"Message {n}: " + "tell me something nerdy about lambdas " * 7)
    replies = await bot.say(ADMIN, "/history 40")

    texts = [m["content"] for m in replies]
    assert len(texts) >= 2
    assert sum(map(len, texts)) >= 3000
    assert all(len(t) <= DISCORD_LIMIT for t in texts)
    assert texts[0].startswith("History of")
    assert all(not t[0].isspace() and not t[-1].isspace() for t in texts)
    nonces = [m["nonce"] for m in replies]
    assert len(set(nonces)) == len(nonces)


async def test_rate_limited_post_is_retried_and_posted_once(bot: RunningBot) -> None:
    bot.emu.inject(Fault("POST", r"/channels/\d+/messages", 429, retry_after=0.05))
    (answer,) = await bot.say(USER, "Hi, my name is Dana")

    posts = bot.emu.calls_to("POST", rf"/channels/{USER + 1}/messages")
    assert [c.status for c in posts] == [429, 200]
    assert posts[0].body["nonce"] == posts[1].body["nonce"]
    assert "Dana" in answer["content"]


async def test_a_post_that_landed_but_failed_is_not_duplicated(bot: RunningBot) -> None:
    # Discord created the message but the answer was lost (502): discord.py retries the POST
    # and the nonce makes Discord hand back the same message.
    bot.emu.inject(Fault("POST", r"/channels/\d+/messages", 502, after_processing=True))
    replies = await bot.say(USER, "Hi, my name is Eve")

    posts = bot.emu.calls_to("POST", rf"/channels/{USER + 1}/messages")
    assert [c.status for c in posts] == [502, 200]
    assert len(replies) == 1 and "Eve" in replies[0]["content"]


async def test_gateway_resume_replays_missed_messages(bot: RunningBot) -> None:
    await bot.emu.force_reconnect()
    # Dispatched while the client is away: delivered on RESUME, answered once.
    (answer,) = await bot.say(USER, "Hi, my name is Frank")

    assert "Frank" in answer["content"]
    assert any(op["op"] == 6 for op in bot.emu.gateway_ops)
    await wait_until(lambda: bot.emu.connected)


async def test_a_reply_discord_refuses_is_logged_and_not_retried_forever(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    # 403: the bot lost the right to post in that channel. Retrying cannot help, so the
    # message is closed (no endless replay at each start) and the refusal is logged.
    bot.emu.inject(Fault("POST", r"/channels/\d+/messages", 403))
    sent = await bot.emu.send_message(bot.user(USER), "Hi, my name is Mallory")

    async def closed() -> bool:
        return bool(bot.emu.calls_to("POST", rf"/channels/{USER + 1}/messages")) and (
            await bot.settled()
        )

    await wait_until(closed, timeout=15)
    assert f"reply to {sent['id']} cannot be delivered" in caplog.text


async def test_streamed_edits_are_spaced_and_the_final_text_always_lands(bot: RunningBot) -> None:
    now = 100.0
    assert bot.adapter.client is not None
    channel = bot.adapter.client.get_partial_messageable(USER + 1)
    replies = ChannelReplies(channel, "777", clock=lambda: now)

    await replies.partial("one")  # posted at once
    await replies.partial("one two")  # too soon after the post: not sent
    now = 100.0 + EDIT_INTERVAL / 2
    await replies.partial("one two three")  # still too soon
    now = 100.0 + EDIT_INTERVAL
    await replies.partial("one two three four")  # an interval later: edited
    await replies.final(Reply("one two three four five"))  # the final text is never held back

    posts = bot.emu.calls_to("POST", rf"/channels/{USER + 1}/messages")
    edits = bot.emu.calls_to("PATCH", rf"/channels/{USER + 1}/messages/\d+")
    assert [c.body["content"] for c in posts] == ["one"]
    assert [c.body["content"] for c in edits] == ["one two three four", "one two three four five"]
