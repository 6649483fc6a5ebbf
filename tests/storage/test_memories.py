"""Contract: memories (run against every backend). Changed only by events' memory_changes,
applied by append_event in the event's transaction; scoped per user; bounded; searchable."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from storage import Event, EventActions, Session, Store, open_store
from storage.common import MEMORY_TEXT_MAX, memory_id, normalise_memory
from storage.types import Memory, MemoryChange
from tests.storage.conftest import Backend

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
    # What JSON from a model may carry and no database can store is made storable, not refused.
    await change(store, s, *add("cat \ud800 called\x00 Pixel"), eid="odd")
    got = await store.get_session(APP, "u1", "s1")
    assert (
        got is not None
        and got.events[-1].actions.memory_changes[0].text == "cat \ufffd called\x00 Pixel"
    )
    assert texts(await store.memories(APP, "u1"))[-1] == "cat \ufffd called Pixel"


async def test_scoped_per_user_and_app(store: Store) -> None:
    a = await store.create_session(APP, "u1", "s1")
    b = await store.create_session(APP, "u2", "s1")
    c = await store.create_session("other", "u1", "s1")
    await change(store, a, *add("has a cat called Pixel"))
    await change(store, b, *add("has a dog called Rex"))
    await change(store, c, *add("plays chess"))
    assert texts(await store.memories(APP, "u1")) == ["has a cat called Pixel"]
    assert texts(await store.memories(APP, "u2")) == ["has a dog called Rex"]
    assert texts(await store.memories("other", "u1")) == ["plays chess"]
    assert texts(await store.recall(APP, "u1", "dog Rex chess")) == ["has a cat called Pixel"]
    assert await store.recall(APP, "nobody", "cat") == []
    # An update or delete naming another user's memory changes nothing.
    (rex,) = await store.memories(APP, "u2")
    await change(
        store,
        a,
        MemoryChange("update", "mine now", rex.id),
        MemoryChange("delete", memory_id=rex.id),
    )
    assert texts(await store.memories(APP, "u2")) == ["has a dog called Rex"]


async def test_near_duplicates_update_instead_of_adding(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    await change(store, s, *add("Lives in Lisbon"), eid="e1", ts=100)
    await change(store, s, *add("lives in  lisbon."), eid="e2", ts=200)
    (one,) = await store.memories(APP, "u1")
    assert one.text == "lives in  lisbon." and one.event_id == "e2" and one.updated_at == 200
    assert one.created_at == 100
    await change(store, s, *add("lives in Lisbon since 2020"), eid="e3", ts=300)
    await change(store, s, *add("Lisbon"), eid="e4", ts=400)  # held by the longer one: kept
    (one,) = await store.memories(APP, "u1")
    assert one.text == "lives in Lisbon since 2020" and one.event_id == "e4"
    await change(store, s, *add("likes concatenation"), eid="e5", ts=500)
    await change(store, s, *add("cat"), eid="e6", ts=600)  # not a whole word of it: new
    assert texts(await store.memories(APP, "u1")) == [
        "lives in Lisbon since 2020",
        "likes concatenation",
        "cat",
    ]


async def test_bounded_by_the_limit_dropping_the_least_recently_updated(backend: Backend) -> None:
    store = await backend.open(memory_limit=3)
    try:
        s = await store.create_session(APP, "u1", "s1")
        for n, fact in enumerate(["one apple", "two bananas", "three cherries"]):
            await change(store, s, *add(fact), eid=f"e{n}", ts=100 + n)
        first = (await store.memories(APP, "u1"))[0]
        await change(store, s, MemoryChange("update", "one apricot", first.id), eid="u", ts=200)
        await change(store, s, *add("four dates", "five elderberries"), eid="e9", ts=300)
        assert texts(await store.memories(APP, "u1")) == [
            "one apricot",
            "four dates",
            "five elderberries",
        ]
    finally:
        await store.close()


async def test_a_replayed_event_changes_nothing(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    assert await change(store, s, *add("has a cat"), eid="e1", ts=100)
    (before,) = await store.memories(APP, "u1")
    await change(store, s, MemoryChange("delete", memory_id=before.id), eid="e2")
    assert not await change(store, s, *add("has a cat"), eid="e1", ts=100)
    assert await store.memories(APP, "u1") == []
    # The same event id in another session of the user is another event: its own memory id.
    other = await store.create_session(APP, "u1", "s2")
    assert await change(store, other, *add("has a dog"), eid="e1", ts=100)
    (dog,) = await store.memories(APP, "u1")
    assert dog.id != before.id


async def test_exported_with_the_events_that_made_them(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    await change(store, s, *add("has a cat called Pixel"), eid="e1", ts=100)
    await change(store, await store.create_session(APP, "u2", "x"), *add("secret of u2"))
    exported = await store.export_user(APP, "u1")
    json.dumps(exported)
    assert exported["memories"] == [
        {
            "id": memory_id("e1", 0, "s1"),
            "text": "has a cat called Pixel",
            "created_at": 100,
            "updated_at": 100,
            "event_id": "e1",
        }
    ]
    (event,) = exported["sessions"][0]["events"]
    assert event["memory_changes"] == [{"op": "add", "text": "has a cat called Pixel"}]
    assert "secret of u2" not in json.dumps(exported)


async def test_erased_with_the_user_leaving_no_readable_trace(
    backend: Backend, store: Store
) -> None:
    s = await store.create_session(APP, "u1", "s1")
    await change(store, s, *add("owns a zebra named Quixotic"))
    other = await store.create_session(APP, "u2", "s1")
    await change(store, other, *add("owns a llama named Bartholomew"))
    await store.delete_user(APP, "u1")
    assert await store.memories(APP, "u1") == []
    assert await store.recall(APP, "u1", "zebra Quixotic") == []
    rows = "\n".join(repr(row) for row in await backend.dump_rows())
    assert "Quixotic" not in rows and "zebra" not in rows  # the index holds no plain words
    assert "Bartholomew" in rows
    assert texts(await store.recall(APP, "u2", "llama")) == ["owns a llama named Bartholomew"]


async def test_merged_on_link_folding_near_duplicates(backend: Backend) -> None:
    store = await backend.open(memory_limit=3)
    try:
        main = await store.resolve_user("telegram", "1")
        joining = await store.resolve_user("discord", "2")
        a = await store.create_session(APP, main, "a")
        b = await store.create_session(APP, joining, "b")
        await change(store, a, *add("lives in Lisbon", "likes tea"), eid="e1", ts=100)
        await change(store, b, *add("Lives in Lisbon.", "plays go", "has a cat"), eid="e2", ts=200)
        code = await store.create_link_code(main)
        assert await store.redeem_link_code(code, "discord", "2") == main
        merged = await store.memories(APP, main)
        # Lisbon folded (the newer wording); beyond 3 the stalest ("likes tea") went.
        assert sorted(texts(merged)) == ["Lives in Lisbon.", "has a cat", "plays go"]
        assert await store.memories(APP, joining) == []
        assert texts(await store.recall(APP, main, "cat"))[0] == "has a cat"
        assert await store.recall(APP, joining, "cat") == []
    finally:
        await store.close()


async def test_recall_ranks_matches_first_then_the_most_recent(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    facts = [
        "has a cat called Pixel",
        "vegetarian",
        "lives in Lisbon",
        "works as a nurse",
        "allergic to peanuts",
        "cat Pixel is black and Pixel likes tuna",
    ]
    for n, fact in enumerate(facts):
        await change(store, s, *add(fact), eid=f"e{n}", ts=100 + n)
    got = texts(await store.recall(APP, "u1", "What is my cat Pixel's favourite food?"))
    assert set(got[:2]) == {"has a cat called Pixel", "cat Pixel is black and Pixel likes tuna"}
    assert got[2:] == ["allergic to peanuts", "works as a nurse", "lives in Lisbon", "vegetarian"]
    only = await store.recall(APP, "u1", "cat", relevant=1, recent=2)
    assert len(only) == 3 and "Pixel" in only[0].text
    assert texts(await store.recall(APP, "u1", "LISBON!", recent=0)) == ["lives in Lisbon"]
    assert texts(await store.recall(APP, "u1", "where do I live?", recent=0)) == ["lives in Lisbon"]
    assert texts(await store.recall(APP, "u1", "Nurses?", recent=0)) == ["works as a nurse"]


async def test_recall_with_nothing_matching_gives_the_most_recent(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    assert await store.recall(APP, "u1", "anything") == []
    for n in range(6):
        await change(store, s, *add(f"fact number {n}"), eid=f"e{n}", ts=100 + n)
    assert texts(await store.recall(APP, "u1", "zebra")) == [
        "fact number 5",
        "fact number 4",
        "fact number 3",
        "fact number 2",
    ]
    assert len(await store.recall(APP, "u1", "", recent=10)) == 6


async def test_recall_takes_any_text_as_words_never_as_syntax(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    await change(store, s, *add("likes C++ and rock'n'roll", "NEAR the sea"))
    hostile = [
        '"',
        "'",
        "cat AND",
        "OR OR NOT",
        "NEAR(a b)",
        "c++ & | ! : * ( ) { } ^ - \\",
        "a'b\"c",
        "*",
        "\x00nul",
        "sea:*",
        "🙂 ünïcödé",
        "x" * 10_000,
        " ".join(f"w{n}" for n in range(1000)),
    ]
    for query in hostile:
        assert len(await store.recall(APP, "u1", query)) == 2, query
    got = await store.recall(APP, "u1", "rock'n'roll?", recent=0)
    assert texts(got) == ["likes C++ and rock'n'roll"]
    assert texts(await store.recall(APP, "u1", "near", recent=0)) == ["NEAR the sea"]


async def test_concurrent_changes_from_several_sessions_keep_the_rules(backend: Backend) -> None:
    store = await backend.open(memory_limit=5)
    try:
        sessions = [await store.create_session(APP, "u1", f"s{n}") for n in range(4)]
        facts = [f"fact {n} about the garden" for n in range(12)] + ["Fact 3 about the garden."] * 4
        await asyncio.gather(
            *(
                change(store, sessions[n % 4], *add(fact), eid=f"e{n}", ts=100 + n)
                for n, fact in enumerate(facts)
            )
        )
        kept = texts(await store.memories(APP, "u1"))
        assert len(kept) == 5
        folded = {normalise_memory(text) for text in kept}
        assert len(folded) == 5  # no two near-duplicates side by side
    finally:
        await store.close()


async def test_unlink_leaves_the_memories_with_the_account(store: Store) -> None:
    main = await store.resolve_user("telegram", "1")
    s = await store.create_session(APP, main, "a")
    await change(store, s, *add("has a cat called Pixel"))
    code = await store.create_link_code(main)
    assert await store.redeem_link_code(code, "discord", "2") == main
    new = await store.detach_identity(APP, "discord", "2", {"user:name": "Ann"})
    assert new is not None and new != main
    assert await store.memories(APP, new) == []
    assert texts(await store.memories(APP, main)) == ["has a cat called Pixel"]


@pytest.mark.parametrize("checkpointed", [False, True], ids=["in the WAL", "in the file"])
async def test_an_erased_memory_leaves_no_byte_in_the_sqlite_files(
    tmp_path: Path, checkpointed: bool
) -> None:
    """The bytes, not only the rows: the full-text index's pages included (its terms are
    hashed, so not even index pages FTS5 has yet to merge hold the words)."""
    path = tmp_path / "m.db"
    async with await open_store(f"sqlite:///{path}") as store:
        s = await store.create_session(APP, "u1", "s1")
        await change(store, s, *add("owns a zebra named Quixotic"))
        await change(store, s, MemoryChange("add", "Quixotic sleeps in Xanadu"), eid="e2")
        other = await store.create_session(APP, "u2", "s1")
        await change(store, other, *add("owns a llama named Bartholomew"))
        if checkpointed:
            with contextlib.closing(sqlite3.connect(path)) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            assert b"Quixotic" in path.read_bytes()
        await store.delete_user(APP, "u1")
        files = [p.read_bytes() for p in (path, path.with_name(path.name + "-wal"))]
    for word in (b"Quixotic", b"Xanadu", b"zebra"):
        assert not any(word in data for data in files), word
    assert any(b"Bartholomew" in data for data in files)
