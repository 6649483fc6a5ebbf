"""A user's memories told back only to them: asked in a guild channel, the answer goes to the
user's DM (real discord.py against the Discord emulator, the offline model)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import MEMORY_QUESTIONS
from tests.e2e.discord.conftest import USER, RunningBot

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("question", MEMORY_QUESTIONS)
async def test_memories_asked_about_in_a_channel_reach_only_the_dm(
    bot: RunningBot, question: str
) -> None:
    [told] = await bot.say(USER, "my dog is Rex")
    assert told["content"] == "Got it, I'll remember that your dog is Rex."
    dm = bot.emu.dm_channel_id(USER)
    before = len(bot.emu.channel_messages(dm))
    [note] = await bot.say(USER, question, guild=True, mention_bot=True)
    assert "Rex" not in note["content"]
    assert "Rex" in bot.emu.channel_messages(dm)[before]["content"]
    channel = bot.emu.channel_messages(bot.emu.guild_channel_id)
    assert not any("Rex" in str(m) for m in channel)
