"""Messages the bot sends on its own (issue 15) through the real discord.py and the emulator:
where they go, idempotence by nonce (a resend of the same id is no second message), what a
refusal means (CHAT_GONE) and what a transient failure means (RETRY)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.discord.outgoing import nonce_key, send_outgoing
from adapters.text import DISCORD_LIMIT
from bot.messages import Outgoing, SendResult
from testkit.emulators.discord_api import Fault
from tests.e2e.conftest import outgoing as to_user
from tests.e2e.discord.conftest import USER, RunningBot

pytestmark = pytest.mark.e2e

POSTS = r"/channels/\d+/messages"


def outgoing(
    text: str, chat: int | None = None, *, id: str = "alert:7:1", **reply: Any
) -> Outgoing:
    return to_user("discord", USER, text, chat, id=id, **reply)


async def test_to_the_channel_it_was_set_in_or_the_dm(bot: RunningBot) -> None:
    guild = bot.emu.guild_channel_id
    assert await bot.adapter.send_outgoing(outgoing("TSLA below 150", guild)) is SendResult.SENT
    assert await bot.adapter.send_outgoing(outgoing("stretch", id="r:1")) is SendResult.SENT

    [alert] = bot.emu.channel_messages(guild)
    assert alert["content"] == "TSLA below 150"
    assert alert["nonce"] == f"{nonce_key('alert:7:1')}:0"
    assert len(alert["nonce"]) <= 25  # Discord's limit for a string nonce
    [reminder] = bot.emu.channel_messages(bot.emu.dm_channel_id(USER))
    assert reminder["content"] == "stretch"


async def test_a_resend_of_the_same_id_is_no_second_message(bot: RunningBot) -> None:
    guild = bot.emu.guild_channel_id
    long = ("tick " * DISCORD_LIMIT)[: DISCORD_LIMIT + 50]
    # The second part's POST lands but its answer is lost: Discord stored it, then a 503
    # (which discord.py does not retry itself) tells the scheduler to try again.
    bot.emu.inject(Fault("POST", POSTS, 503, after_processing=True, skip=1))

    assert await bot.adapter.send_outgoing(outgoing(long, guild)) is SendResult.RETRY
    assert await bot.adapter.send_outgoing(outgoing(long, guild)) is SendResult.SENT

    shown = bot.emu.channel_messages(guild)
    assert len(bot.emu.calls_to("POST", POSTS)) == 4
    assert len(shown) == 2  # every resend of a part was deduplicated by its nonce
    assert "".join(m["content"] for m in shown).replace(" ", "") == long.replace(" ", "")


async def test_a_private_one_never_reaches_the_guild_channel(bot: RunningBot) -> None:
    guild = bot.emu.guild_channel_id
    item = outgoing("your digest", guild, private=True)

    assert await bot.adapter.send_outgoing(item) is SendResult.SENT
    assert bot.emu.channel_messages(guild) == []
    [dm] = bot.emu.channel_messages(bot.emu.dm_channel_id(USER))
    assert dm["content"] == "your digest"


@pytest.mark.parametrize("how", ["deleted", "bot_removed", "dms_closed"])
async def test_a_channel_gone_for_good_says_so(bot: RunningBot, how: str) -> None:
    channel: int | None = bot.emu.guild_channel_id
    if how == "deleted":
        bot.emu.delete_channel(bot.emu.guild_channel_id)
    elif how == "bot_removed":
        bot.emu.remove_bot_from(bot.emu.guild_channel_id)
    else:
        bot.emu.close_dms(USER)
        channel = None

    assert await bot.adapter.send_outgoing(outgoing("hello", channel)) is SendResult.CHAT_GONE
    assert bot.emu.channel_messages(bot.emu.guild_channel_id) == []
    assert bot.emu.channel_messages(bot.emu.dm_channel_id(USER)) == []


async def test_a_send_cut_short_is_retried_and_its_landed_post_not_repeated(
    bot: RunningBot,
) -> None:
    guild = bot.emu.guild_channel_id
    client = bot.adapter.client
    assert client is not None
    bot.emu.hold("POST", POSTS)  # Discord is slow: the POST arrives, the answer does not

    result = await send_outgoing(client, outgoing("TSLA below 150", guild), timeout=0.5)

    assert result is SendResult.RETRY
    bot.emu.release()  # it lands after the bot gave up on it
    assert await bot.adapter.send_outgoing(outgoing("TSLA below 150", guild)) is SendResult.SENT
    assert [m["content"] for m in bot.emu.channel_messages(guild)] == ["TSLA below 150"]
