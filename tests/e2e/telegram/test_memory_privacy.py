"""A user's memories told back only to them: asked in a Telegram group, the answer goes to the
user's private chat (real PTB against the Bot API emulator, the offline model)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import MEMORY_QUESTIONS
from tests.e2e.telegram.conftest import GROUP, USER, RunningBot

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("question", MEMORY_QUESTIONS)
async def test_memories_asked_about_in_a_group_reach_only_the_private_chat(
    bot: RunningBot, question: str
) -> None:
    [told] = await bot.ask(USER, USER, "my dog is Rex")
    assert told == "Got it, I'll remember that your dog is Rex."
    before = len(bot.tg.shown(USER))
    [note] = await bot.ask(GROUP, USER, f"@switchboard_test_bot {question}")
    assert note == "I sent you the answer in a private chat."
    assert "Rex" in bot.tg.shown(USER)[before]
    to_group = [c for c in bot.tg.calls if str(c.params.get("chat_id")) == str(GROUP)]
    assert to_group and not any("Rex" in str(c.params) for c in to_group)
