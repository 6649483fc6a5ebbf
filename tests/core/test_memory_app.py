"""MEMORY_EXTRACTION through the real app with the LLM emulator: `auto` extracts after the
answer (off the turn's path), `tools` only gives the tools, `off` neither."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from agents.memory_extraction import EXTRACTION_INSTRUCTION
from testkit.emulators.llm import LLMEmulator, Say
from testkit.helpers import wait_until

from .conftest import AppFactory, say

MEMORY_TOOLS = {"remember", "update_memory", "forget_memory", "search_memories"}


@pytest.fixture
async def llm() -> AsyncIterator[LLMEmulator]:
    async with LLMEmulator() as emulator:
        yield emulator


def llm_env(llm: LLMEmulator, mode: str) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": "sk-memory-test",
        "LLM_BASE_URL": llm.base_url,
        "LLM_MODEL": "t/m",
        "MEMORY_EXTRACTION": mode,
    }


async def test_auto_extracts_after_the_answer(app_factory: AppFactory, llm: LLMEmulator) -> None:
    added = {"changes": [{"op": "add", "text": "has a cat called Pixel"}]}
    llm.script(Say("What a lovely name!"), Say(json.dumps(added)))
    async with app_factory(**llm_env(llm, "auto")) as app:
        assert await say(app, "My cat is called Pixel") == "What a lovely name!"
        user_id = await app.store.find_user("telegram", "42")
        assert user_id is not None

        async def remembered() -> list[str]:
            return [m.text for m in await app.store.memories(app.settings.app_name, user_id)]

        assert await wait_until(remembered) == ["has a cat called Pixel"]
        assert "1. has a cat called Pixel" in await say(app, "/memory")
    turn, extraction = llm.requests
    assert set(turn.tool_names) >= MEMORY_TOOLS
    assert extraction.system == EXTRACTION_INSTRUCTION and extraction.tool_names == []


@pytest.mark.parametrize("mode", ["tools", "off"])
async def test_tools_and_off_make_no_extraction_call(
    app_factory: AppFactory, llm: LLMEmulator, mode: str
) -> None:
    llm.script(Say("Noted."))
    async with app_factory(**llm_env(llm, mode)) as app:
        assert await say(app, "I live in Lisbon") == "Noted."
    # Closing the app waited for the after-turn work: there was no second call.
    [turn] = llm.requests
    assert (set(turn.tool_names) >= MEMORY_TOOLS) is (mode == "tools")
    assert "add_dislike" in turn.tool_names and "forget_name" in turn.tool_names
    assert turn.body["messages"][-2]["content"] == "Memories about the user: none."
