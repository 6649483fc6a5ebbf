"""The after-turn memory extraction (agents/memory_extraction.py) with the real openai SDK against
the LLM emulator: add, update, delete; garbage ignored; a failing model only logged; a replay
adds nothing twice; the event is never conversation."""

from __future__ import annotations

import json
import logging

import pytest

from agents.history import to_messages
from agents.memory_extraction import EXTRACTION_INSTRUCTION, MEMORY_AUTHOR, MemoryExtraction
from agents.openai_model import OpenAIModel
from storage import Event, EventActions, Session, Store
from storage.common import MEMORY_TEXT_MAX
from storage.types import MemoryChange
from testkit.emulators.llm import Fail, LLMEmulator, Say
from tests.agents.conftest import make_openai

APP = "test-app"
INV = "telegram:77"


def changes(*items: dict[str, str]) -> Say:
    return Say(json.dumps({"changes": list(items)}))


async def answered_turn(
    store: Store, said: str, answer: str = "Nice!", *, error: str | None = None
) -> Session:
    """A session holding one answered turn, as the core leaves it; returned as re-read."""
    session = await store.create_session(APP, "u1", "s1")
    await store.append_event(session, Event("user", {"text": said}, INV, id=f"{INV}:u"))
    final = Event("manager", {"text": answer}, INV, id=f"{INV}:final", final=True, error=error)
    await store.append_event(session, final)
    return await reread(store)


async def reread(store: Store) -> Session:
    session = await store.get_session(APP, "u1", "s1")
    assert session is not None
    return session


async def seed(store: Store, *texts: str) -> list[str]:
    session = await store.get_session(APP, "u1", "s1") or await store.create_session(
        APP, "u1", "s1"
    )
    adds = tuple(MemoryChange("add", t) for t in texts)
    await store.append_event(
        session, Event("system", {"text": "seed"}, actions=EventActions(memory_changes=adds))
    )
    return [m.id for m in await store.memories(APP, "u1")]


async def texts(store: Store) -> list[str]:
    return [m.text for m in await store.memories(APP, "u1")]


async def test_a_new_fact_is_added_by_one_event_that_is_not_conversation(
    llm: LLMEmulator, openai_model: OpenAIModel, store: Store
) -> None:
    session = await answered_turn(store, "My cat Pixel knocked my coffee over")
    llm.script(changes({"op": "add", "text": "has a cat called Pixel"}))
    await MemoryExtraction(store, openai_model).run(session, INV)
    assert await texts(store) == ["has a cat called Pixel"]
    [request] = llm.requests
    assert request.system == EXTRACTION_INSTRUCTION and request.tool_names == []
    shown = json.loads(request.last_user_text)
    assert shown == {
        "stored_memories": [],
        "latest_exchange": {"user": "My cat Pixel knocked my coffee over", "assistant": "Nice!"},
    }
    stored = await reread(store)
    [event] = [e for e in stored.events if e.author == MEMORY_AUTHOR]
    assert event.id == f"{INV}:memory" and event.text == ""
    assert len(to_messages(stored.events)) == 2  # the user's message and the answer, no more


async def test_stored_memories_are_updated_and_deleted_by_id(
    llm: LLMEmulator, openai_model: OpenAIModel, store: Store
) -> None:
    lisbon, tea = await seed(store, "lives in Lisbon", "likes tea")
    session = await answered_turn(store, "I moved to Porto, and I never liked tea really")
    llm.script(
        changes(
            {"op": "update", "id": lisbon, "text": "lives in Porto"},
            {"op": "delete", "id": tea},
        )
    )
    await MemoryExtraction(store, openai_model).run(session, INV)
    assert await texts(store) == ["lives in Porto"]
    shown = json.loads(llm.requests[0].last_user_text)["stored_memories"]
    assert {m["id"] for m in shown} == {lisbon, tea}


@pytest.mark.parametrize(
    "answer",
    [
        "Sure, I'll remember that the user has a cat.",
        '```json\n{"changes": [{"op": "add", "text": "has a cat"}]}\n```',
        '{"changes": {"op": "add", "text": "has a cat"}}',
        '[{"op": "add", "text": "has a cat"}]',
        "",
    ],
)
async def test_an_answer_that_is_not_the_json_asked_for_changes_nothing(
    llm: LLMEmulator,
    openai_model: OpenAIModel,
    store: Store,
    answer: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    [kept] = await seed(store, "lives in Lisbon")
    session = await answered_turn(store, "I have a cat")
    llm.script(Say(answer))
    with caplog.at_level(logging.WARNING, logger="agents.memory_extraction"):
        await MemoryExtraction(store, openai_model).run(session, INV)
    assert [m.id for m in await store.memories(APP, "u1")] == [kept]
    assert "unusable answer" in caplog.text
    assert not [e for e in (await reread(store)).events if e.author == MEMORY_AUTHOR]


async def test_bad_changes_are_dropped_one_by_one(
    llm: LLMEmulator, openai_model: OpenAIModel, store: Store
) -> None:
    await seed(store, "lives in Lisbon")
    session = await answered_turn(store, "I have a cat called Pixel")
    llm.script(
        changes(
            {"op": "delete", "id": "ffffffffffff"},  # not one it was shown (another user's?)
            {"op": "update", "id": "ffffffffffff", "text": "hacked"},
            {"op": "add", "text": "x" * (MEMORY_TEXT_MAX + 1)},
            {"op": "add"},
            {"op": "rename", "text": "y"},
            "add everything",  # type: ignore[arg-type]
            {"op": "add", "text": "has a cat called Pixel"},
        )
    )
    await MemoryExtraction(store, openai_model).run(session, INV)
    assert await texts(store) == ["lives in Lisbon", "has a cat called Pixel"]


async def test_a_failing_model_is_only_logged(
    llm: LLMEmulator, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    session = await answered_turn(store, "I live in Lisbon")
    llm.script(Fail(500))
    model = make_openai(llm, max_retries=0)
    try:
        with caplog.at_level(logging.WARNING, logger="agents.memory_extraction"):
            await MemoryExtraction(store, model).run(session, INV)
    finally:
        await model.aclose()
    assert "memory extraction for telegram:77 failed (unavailable)" in caplog.text
    assert await texts(store) == []


async def test_a_replayed_turn_adds_nothing_twice(
    llm: LLMEmulator, openai_model: OpenAIModel, store: Store
) -> None:
    session = await answered_turn(store, "I'm allergic to peanuts")
    job = MemoryExtraction(store, openai_model)
    llm.script(changes({"op": "add", "text": "is allergic to peanuts"}))
    await job.run(session, INV)
    # Run again on the session as it is now: the event is there, the model is not asked.
    await job.run(await reread(store), INV)
    assert len(llm.requests) == 1
    # Run again on the stale session (a crash between the append and its acknowledgement):
    # the model answers again, the same event id is refused, nothing is added.
    llm.script(changes({"op": "add", "text": "is allergic to peanuts and cashews"}))
    await job.run(session, INV)
    assert await texts(store) == ["is allergic to peanuts"]


async def test_failed_or_unseen_turns_are_left_alone(
    llm: LLMEmulator, openai_model: OpenAIModel, store: Store
) -> None:
    session = await answered_turn(store, "I live in Lisbon", "The AI is busy.", error="timeout")
    job = MemoryExtraction(store, openai_model)
    await job.run(session, INV)
    await job.run(session, "telegram:other")
    assert llm.requests == [] and await texts(store) == []
