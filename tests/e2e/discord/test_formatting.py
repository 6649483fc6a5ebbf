"""Formatting on Discord: the model's Markdown goes out as Markdown (Discord renders it) with
mentions disabled; a code block cut by a split is closed and opened again so both parts render;
command replies are escaped, so text quoted from the user never formats. Real discord.py
against the emulator, the real core, and the real OpenAI client against the LLM emulator."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.text import DISCORD_LIMIT
from bot.settings import Settings
from testkit.emulators.discord_api import DiscordEmulator
from testkit.emulators.llm import LLMEmulator, Say
from tests.e2e.discord.conftest import ADMIN, USER, RunningBot, bot_env, start_bot

pytestmark = pytest.mark.e2e

ANSWER = "**Bold** and `code` for <@1001> 👋 世界\n\n- item"


@pytest.fixture
async def with_model(
    emu: DiscordEmulator, tmp_path: Path
) -> AsyncIterator[tuple[RunningBot, LLMEmulator]]:
    async with LLMEmulator() as llm:
        env = bot_env(
            emu,
            tmp_path,
            OPENROUTER_API_KEY="sk-or-test-key",
            LLM_BASE_URL=llm.base_url,
            LLM_MODEL="test/model",
        )
        async with start_bot(Settings.from_env(env, dotenv_path=None), emu) as bot:
            yield bot, llm


async def test_an_answer_in_markdown_goes_out_as_markdown_without_mentions(
    with_model: tuple[RunningBot, LLMEmulator],
) -> None:
    bot, llm = with_model
    llm.script(Say(ANSWER))
    (message,) = await bot.say(USER, "format something")
    assert message["content"] == ANSWER
    assert message["allowed_mentions"] == {"parse": []}


async def test_a_code_block_cut_by_a_split_is_closed_and_opened_again(
    with_model: tuple[RunningBot, LLMEmulator],
) -> None:
    bot, llm = with_model
    code = "\n".join(f"value_{n} = {n} * 2" for n in range(200))  # ~3,600 characters
    llm.script(Say(f"Here:\n\n```python\n{code}\n```\n\nDone."))
    messages = await bot.say(USER, "long code")
    contents = [m["content"] for m in messages]
    assert len(contents) == 2 and all(len(c) <= DISCORD_LIMIT for c in contents)
    assert contents[0].endswith("\n```") and contents[1].startswith("```python\n")
    for content in contents:  # every part renders on its own: its fences are balanced
        assert len(re.findall(r"^```", content, re.MULTILINE)) % 2 == 0
    lines = "\n".join(contents).splitlines()
    assert [line for line in lines if line.startswith("value_")] == code.splitlines()


async def test_a_command_reply_quoting_the_user_is_escaped(bot: RunningBot) -> None:
    (message,) = await bot.say(USER, "/**bold**_x_")
    assert message["content"].startswith(r"I don't know /\*\*bold\*\*\_x\_.")


async def test_an_admin_view_quoting_a_user_s_message_is_escaped(bot: RunningBot) -> None:
    await bot.say(USER, "**not bold** _x_ ~~y~~")
    options = {"user": bot.user(USER)}
    (answer, *_) = await bot.command(ADMIN, "history", options, guild=True)  # a slash command
    assert r"user: \*\*not bold\*\* \_x\_ \~\~y\~\~" in answer["content"]
