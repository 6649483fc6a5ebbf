"""/memory typed in a Telegram group: the list goes to the user's private chat, the group gets
only a note (real PTB against the Bot API emulator, the offline model)."""

from __future__ import annotations

import pytest

from tests.e2e.telegram.conftest import GROUP, USER, RunningBot

pytestmark = pytest.mark.e2e


async def test_memory_in_a_group_reaches_only_the_private_chat(bot: RunningBot) -> None:
    await bot.ask(USER, USER, "I live in Lisbon")
    before = len(bot.tg.shown(USER))
    [note] = await bot.ask(GROUP, USER, "/memory@switchboard_test_bot")
    assert note == "I sent you the answer in a private chat."
    listed = bot.tg.shown(USER)[before]
    assert listed.startswith("What I remember about you (1):") and "Lisbon" in listed
    to_group = [c for c in bot.tg.calls if str(c.params.get("chat_id")) == str(GROUP)]
    assert to_group and not any("Lisbon" in str(c.params) for c in to_group)
