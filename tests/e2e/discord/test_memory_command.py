"""/memory as a Discord slash command in a guild: typed options rendered back into the line,
every answer ephemeral (real discord.py against the emulator, the offline model)."""

from __future__ import annotations

import pytest

from testkit.emulators.discord_api import EPHEMERAL
from tests.e2e.discord.conftest import USER, RunningBot

pytestmark = pytest.mark.e2e


async def test_memory_slash_command_in_a_guild_is_ephemeral(bot: RunningBot) -> None:
    await bot.say(USER, "I live in Lisbon")
    (listed,) = await bot.command(USER, "memory", guild=True)
    assert listed["content"].startswith("What I remember about you (1):")
    assert "Lisbon" in listed["content"] and listed["flags"] & EPHEMERAL
    (forgot,) = await bot.command(USER, "memory", {"action": "forget", "which": "1"}, guild=True)
    assert forgot["content"].startswith("Forgot:") and forgot["flags"] & EPHEMERAL
    (empty,) = await bot.command(USER, "memory", {"action": "list"}, guild=True)
    assert empty["content"].startswith("I don't remember anything") and empty["flags"] & EPHEMERAL
