"""Contract: memories (run against every backend). Changed only by events' memory_changes,
applied by append_event in the event's transaction; scoped per user; bounded; searchable."""

from __future__ import annotations

from storage import Event, EventActions, Session, Store
from storage.common import MEMORY_TEXT_MAX, memory_id
from storage.types import Memory, MemoryChange

APP = "app"


def add(*texts: str) -> tuple[MemoryChange, ...]:
    return tuple(MemoryChange("add", text) for text in texts)


async def change(
    store: Store, session: Session, *changes: MemoryChange, eid: str | None = None, ts: float = 0
) -> bool:
    event = Event(
        author="manager",
        content={"tool_result": {"id": "c", "name": "remember", "result": "ok"}},
        actions=EventActions(memory_changes=changes),
        **({"id": eid} if eid else {}),
        **({"timestamp": ts} if ts else {}),
    )
    return await store.append_event(session, event)


def texts(memories: list[Memory]) -> list[str]:
    return [m.text for m in memories]


async def test_memory_changes_round_trip_through_the_event(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    changes = (
        MemoryChange("add", "has a cat called Pixel"),
        MemoryChange("update", "lives in Porto", "abc123abc123"),
        MemoryChange("delete", memory_id="def456def456"),
    )
    await change(store, s, *changes, eid="e1")
    got = await store.get_session(APP, "u1", "s1")
    assert got is not None
    assert got.events[-1].actions.memory_changes == changes
    page = await store.history(APP, "u1", "s1")
    assert page[-1].actions.memory_changes == changes
    plain = Event(author="user", content={"text": "hi"})
    await store.append_event(s, plain)
    got = await store.get_session(APP, "u1", "s1")
    assert got is not None and got.events[-1].actions.memory_changes == ()


async def test_add_update_delete_apply_with_the_event(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    await change(store, s, *add("  has a cat called Pixel  ", "lives in Lisbon"), eid="e1")
    mems = await store.memories(APP, "u1")
    assert texts(mems) == ["has a cat called Pixel", "lives in Lisbon"]
    assert mems[0].id == memory_id("e1", 0, "s1") and len(mems[0].id) == 12
    assert {m.event_id for m in mems} == {"e1"}
    lisbon = mems[1].id
    await change(store, s, MemoryChange("update", "lives in Porto", lisbon), eid="e2")
    await change(store, s, MemoryChange("update", "ignored", "000000000000"), eid="e3")
    mems = await store.memories(APP, "u1")
    assert texts(mems) == ["has a cat called Pixel", "lives in Porto"]
    assert mems[1].id == lisbon and mems[1].event_id == "e2"
    await change(store, s, MemoryChange("delete", memory_id=mems[0].id), eid="e4")
    assert texts(await store.memories(APP, "u1")) == ["lives in Porto"]


async def test_text_is_cut_at_the_limit(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    await change(store, s, *add("x" * 1000, "   "))
    (only,) = await store.memories(APP, "u1")
    assert only.text == "x" * MEMORY_TEXT_MAX
