"""MEMORY_EXTRACTION through the real app with the LLM emulator: `auto` extracts after the
answer (off the turn's path), `tools` only gives the tools, `off` neither."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agents.memory import NO_MEMORIES
from agents.memory_extraction import EXTRACTION_INSTRUCTION
from bot.app import App
from bot.messages import Reply
from storage import Event, EventActions
from storage.types import MemoryChange
from testkit.emulators.llm import LLMEmulator, Say, call
from testkit.helpers import wait_until

from .conftest import AppFactory, incoming, say

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
        # Its call is counted like the turn's: calls by outcome, tokens by agent.
        sample = app.metrics.registry.get_sample_value
        calls = {"model": "t/m", "outcome": "ok"}
        assert sample("switchboard_model_calls_total", calls) == 2
        spent = {"model": "t/m", "agent": "memory_extraction", "kind": "prompt"}
        assert sample("switchboard_tokens_total", spent) == 11
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


async def seeded(app: App, *texts: str) -> None:
    """User telegram:42 with these memories (told in the private chat)."""
    await say(app, "/start")
    user_id = await app.store.find_user("telegram", "42")
    assert user_id is not None
    session = await app.store.get_session(app.settings.app_name, user_id, "telegram:42")
    assert session is not None
    adds = tuple(MemoryChange("add", t) for t in texts)
    await app.store.append_event(
        session, Event("system", {"text": "seed"}, actions=EventActions(memory_changes=adds))
    )


async def everything(app: App, text: str, **kwargs: Any) -> list[Reply]:
    """Every reply of one message, streamed previews included."""
    return [r async for r in app.core.handle(incoming(text, **kwargs)) if not r.typing]


async def test_in_a_group_what_the_llm_wrote_after_seeing_memories_goes_to_the_user_alone(
    app_factory: AppFactory, llm: LLMEmulator
) -> None:
    async with app_factory(**llm_env(llm, "tools")) as app:
        await seeded(app, "has a cat called Pixel", "lives in Lisbon")
        llm.script(Say("Your cat is called Pixel, a fine name for a cat."))
        got = await everything(app, "what is my cat called?", group=True)
        assert got and all(r.private for r in got) and not any(r.partial for r in got)
        block = llm.requests[-1].body["messages"][-2]["content"]
        assert "has a cat called Pixel" in block and "Lisbon" not in block  # matches only
        # A group message about nothing remembered: no memory shown, the answer stays there.
        llm.script(Say("It is sunny today, everyone, enjoy it outside."))
        got = await everything(app, "how is the weather today?", group=True)
        assert llm.requests[-1].body["messages"][-2]["content"] == NO_MEMORIES
        assert not any(r.private for r in got) and any(r.partial for r in got)
        # The model searched the memories itself: what it writes next is private too.
        llm.script(
            Say(tool_calls=[call("search_memories", query="anything")]),
            Say("You live in Lisbon."),
        )
        got = await everything(app, "tell me something about me", group=True)
        assert got and all(r.private for r in got)
        # In the private chat nothing changes: the memories are shown and the answer streams.
        llm.script(Say("Hello again, how is Pixel doing today?"))
        got = await everything(app, "hello")
        assert "Lisbon" in llm.requests[-1].body["messages"][-2]["content"]
        assert any(r.partial for r in got) and not any(r.private for r in got)


async def test_memory_prompt_chars_bounds_the_block(
    app_factory: AppFactory, llm: LLMEmulator
) -> None:
    env = llm_env(llm, "tools") | {"MEMORY_PROMPT_CHARS": "300"}
    async with app_factory(**env) as app:
        await seeded(app, *(f"likes colour number {i} " + "z" * 100 for i in range(6)))
        llm.script(Say("Many colours."))
        await say(app, "which colours do I like?")
    block = llm.requests[-1].body["messages"][-2]["content"]
    assert block.count("\n- [") == 1 and len(block) <= 300  # a second (~140) would not fit
