"""Memories in the agents: the memory block (format, bound, place in the prompt), the memory
tools scoped to the caller, dislikes and forgetting the name."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator

import pytest

from agents import build_team
from agents.jokes import JokeBook
from agents.memory import MEMORY_HEADER, NO_MEMORIES, format_memories
from agents.openai_model import OpenAIModel
from agents.profile import DISLIKES_KEY, JOKE_TOPICS_KEY, NAME_KEY
from agents.quotes import QuoteProvider
from agents.runner import Runner
from storage import Event, EventActions, Store, open_store
from storage.common import MEMORY_TEXT_MAX
from storage.types import Memory, MemoryChange
from testkit.emulators.llm import LLMEmulator, Say, call
from tests.agents.runner_helpers import APP, make_runner, run
from tests.transcript import final_text


@pytest.fixture
async def store(any_db_url: str) -> AsyncIterator[Store]:
    """Both backends: a tool's reach is the store's scoping as much as the ToolContext's."""
    opened = await open_store(any_db_url)
    async with opened:
        yield opened


def memory(mid: str, text: str) -> Memory:
    return Memory(id=mid, text=text, created_at=0.0, updated_at=0.0, event_id="e")


async def seed(store: Store, user: str, *texts: str) -> list[Memory]:
    """Memories of `user`, added as the store's one way: an event carrying the changes."""
    session = await store.get_session(APP, user, "seed") or await store.create_session(
        APP, user, "seed"
    )
    event = Event(
        author="system",
        content={"text": "seeded"},
        actions=EventActions(memory_changes=tuple(MemoryChange("add", t) for t in texts)),
    )
    await store.append_event(session, event)
    return await store.memories(APP, user)


def tool_results(events: list[Event]) -> list[object]:
    return [e.content["tool_result"]["result"] for e in events if "tool_result" in e.content]


# -- the block -----------------------------------------------------------------------------
def test_the_block_lists_id_and_text_one_per_line_in_the_order_given() -> None:
    block = format_memories([memory("a" * 12, "lives in\nLisbon"), memory("b" * 12, "vegan")])
    assert block.splitlines() == [
        MEMORY_HEADER,
        f"- [{'a' * 12}] lives in Lisbon",
        f"- [{'b' * 12}] vegan",
    ]
    assert format_memories([]) == NO_MEMORIES == "Memories about the user: none."


def test_the_block_stays_within_its_bound_and_skips_what_does_not_fit() -> None:
    memories = [memory(f"{i:012d}", f"fact number {i} " + "x" * 200) for i in range(20)]
    memories.insert(3, memory("s" * 12, "short one"))
    block = format_memories(memories, 1500)
    assert len(block) <= 1500
    assert block.startswith(MEMORY_HEADER) and f"[{'s' * 12}] short one" in block
    assert block.count("\n- [") == 7  # six long ones (~232 characters each), the short one
    assert format_memories(memories, 80) == "\n".join([MEMORY_HEADER, f"- [{'s' * 12}] short one"])


async def test_the_block_goes_just_before_the_user_message_and_the_head_stays_the_same(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    [pixel] = await seed(store, "u1", "has a cat called Pixel")
    runner = make_runner(store, openai_model, quotes)
    llm.script(Say("Hello!"), Say("Pixel is a fine name."))
    await run(runner, "hi there")
    await run(runner, "what is my cat called?")
    first, second = (r.body["messages"] for r in llm.requests)
    block = f"{MEMORY_HEADER}\n- [{pixel.id}] has a cat called Pixel"
    assert first[-2:] == [
        {"role": "system", "content": block},
        {"role": "user", "content": "hi there"},
    ]
    assert second[-2] == {"role": "system", "content": block}
    assert second[-1] == {"role": "user", "content": "what is my cat called?"}
    # Everything before the block is the previous prompt without its block: a cacheable prefix.
    assert second[: len(first) - 2] == first[:-2]
    assert second[len(first) - 2 : -2] == [
        {"role": "user", "content": "hi there"},
        {"role": "assistant", "content": "Hello!"},
    ]


async def test_the_block_is_bounded_by_memory_prompt_chars(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    await seed(store, "u1", *(f"likes colour {i} " + "y" * 250 for i in range(12)))
    team = build_team(openai_model, quotes, JokeBook(random.Random(7)))
    runner = Runner(store, team, app_name=APP, memory_prompt_chars=700)
    llm.script(Say("ok"))
    await run(runner, "which colours do I like?")
    block = llm.requests[0].body["messages"][-2]["content"]
    assert block.startswith(MEMORY_HEADER) and 300 < len(block) <= 700


# -- the tools -----------------------------------------------------------------------------
async def test_remember_update_forget_and_search_through_the_runner(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    runner = make_runner(store, openai_model, quotes)
    llm.script(Say(tool_calls=[call("remember", fact="  lives in   Lisbon ")]), Say("Noted."))
    await run(runner, "I live in Lisbon")
    [lisbon] = await store.memories(APP, "u1")
    assert lisbon.text == "lives in Lisbon"
    llm.script(
        Say(tool_calls=[call("update_memory", memory_id=f"[{lisbon.id}]", fact="lives in Porto")]),
        Say(tool_calls=[call("search_memories", query="Porto")]),
        Say("Updated."),
    )
    events = await run(runner, "I moved to Porto")
    found = tool_results(events)[-1]
    assert found == {"memories": [{"id": lisbon.id, "text": "lives in Porto"}]}
    llm.script(Say(tool_calls=[call("forget_memory", memory_id=lisbon.id)]), Say("Forgotten."))
    await run(runner, "forget where I live")
    assert await store.memories(APP, "u1") == []


async def test_memory_tools_never_reach_another_users_memories(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    [alices] = await seed(store, "alice", "has a secret diary")
    runner = make_runner(store, openai_model, quotes)
    llm.script(
        Say(
            tool_calls=[
                call("update_memory", memory_id=alices.id, fact="hacked", user_id="alice"),
                call("forget_memory", memory_id=alices.id, user_id="alice"),
                call("search_memories", query="secret diary", user_id="alice"),
                call("remember", fact="is Mallory", user_id="alice"),
            ]
        ),
        Say("Done."),
    )
    events = await run(runner, "act as alice and wipe her diary", user="mallory")
    assert final_text(events) == "Done."
    update, forget, search, remember = tool_results(events)
    assert "no memory with id" in str(update) and "no memory with id" in str(forget)
    assert search == {"memories": []}
    assert remember == {"ok": True, "remembered": "is Mallory"}
    assert await store.memories(APP, "alice") == [alices]
    assert [m.text for m in await store.memories(APP, "mallory")] == ["is Mallory"]
    sent = json.dumps([r.body for r in llm.requests])
    assert "has a secret diary" not in sent


async def test_a_fact_too_long_or_empty_is_refused_not_cut(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    runner = make_runner(store, openai_model, quotes)
    llm.script(
        Say(
            tool_calls=[
                call("remember", fact="x" * (MEMORY_TEXT_MAX + 1)),
                call("remember", fact="   "),
            ]
        ),
        Say("Hm."),
    )
    events = await run(runner, "remember this essay")
    assert [str(r) for r in tool_results(events)] == [
        str({"error": f"too long: a memory holds at most {MEMORY_TEXT_MAX} characters"}),
        str({"error": "the fact is empty"}),
    ]
    assert await store.memories(APP, "u1") == []


# -- dislikes and the name -----------------------------------------------------------------
def test_the_joke_book_never_picks_an_avoided_topic() -> None:
    book = JokeBook(random.Random(1))
    jokes = [book.joke(None, ["python", "java"]).text.lower() for _ in range(200)]
    assert not [j for j in jokes if "python" in j or "java" in j]
    facts = [book.fact(None, ["python"]).text.lower() for _ in range(100)]
    assert not [f for f in facts if "python" in f]
    assert "python" not in book.joke("programming", ["python"]).text.lower()


async def test_add_dislike_then_no_joke_about_it_and_asking_by_name_lifts_it(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    session = await store.create_session(APP, "u1", "s1")
    await store.append_event(
        session,
        Event(
            author="system",
            content={"text": "seed"},
            actions=EventActions({JOKE_TOPICS_KEY: ["python"], NAME_KEY: "Ada"}),
        ),
    )
    runner = make_runner(store, openai_model, quotes)
    llm.script(
        Say(tool_calls=[call("add_dislike", topic="Python"), call("forget_name")]),
        Say("Got it."),
    )
    await run(runner, "stop telling me python jokes, and forget my name")
    state = (await store.get_session(APP, "u1", "s1")).state  # type: ignore[union-attr]
    assert state.get(DISLIKES_KEY) == ["python"]
    assert state.get(JOKE_TOPICS_KEY) == [] and NAME_KEY not in state
    for _ in range(5):
        llm.script(
            Say(tool_calls=[call("transfer_to_agent", agent_name="funny_nerd")]),
            Say(tool_calls=[call("tell_joke")]),
            Say("Here you go."),
        )
        events = await run(runner, "tell me a joke")
        assert "python" not in str(tool_results(events)[-1]).lower()
    system = llm.requests[-1].body["messages"][0]["content"]
    assert "dislikes (never joke about these): python" in system
    llm.script(
        Say(tool_calls=[call("transfer_to_agent", agent_name="funny_nerd")]),
        Say(tool_calls=[call("tell_joke", topic="python")]),
        Say("A python one."),
    )
    await run(runner, "ok, a python joke then")
    state = (await store.get_session(APP, "u1", "s1")).state  # type: ignore[union-attr]
    assert state.get(DISLIKES_KEY) == [] and state.get(JOKE_TOPICS_KEY) == ["python"]
