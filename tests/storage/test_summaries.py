"""Contract: compaction summaries and what a turn loads (`get_context`), on every backend.

A summary is an ordinary event authored "summary"; a turn loads the latest one and the events
after it, never more than its cap whatever the history holds.
"""

from __future__ import annotations

import sqlite3

import asyncpg

from storage import Event, Store, open_store
from storage.postgres.sessions import _GET_CONTEXT
from storage.sqlite.sessions import load_context
from storage.types import SUMMARY_AUTHOR
from storage.urls import sqlite_path

APP = "app"


def said(i: int) -> Event:
    return Event("user" if i % 2 else "manager", {"text": f"m{i}"}, f"inv{i}", id=f"e{i}")


def summary(n: int, first: str, last: str, count: int) -> Event:
    covers = {"first": first, "last": last, "count": count}
    content = {"summary": f"summary {n}", "covers": covers}
    return Event(SUMMARY_AUTHOR, content, f"inv{n}", id=f"inv{n}:summary")


def texts(events: tuple[Event, ...]) -> list[str]:
    return [e.content.get("summary") or e.text for e in events]


async def test_without_a_summary_a_turn_loads_the_last_events_up_to_the_cap(store: Store) -> None:
    session = await store.create_session(APP, "u1", "s1", {"user:name": "Ann"})
    for i in range(6):
        await store.append_event(session, said(i))
    got = await store.get_context(APP, "u1", "s1", max_events=4)
    assert got is not None and texts(got.events) == ["m2", "m3", "m4", "m5"]
    assert got.state["user:name"] == "Ann"
    assert await store.get_context(APP, "u1", "nope", max_events=4) is None
    assert await store.get_context(APP, "u2", "s1", max_events=4) is None


async def test_a_turn_loads_the_latest_summary_and_the_events_after_it(store: Store) -> None:
    session = await store.create_session(APP, "u1", "s1")
    for i in range(5):
        await store.append_event(session, said(i))
    assert await store.append_event(session, summary(4, "e0", "e4", 5))
    for i in range(5, 8):
        await store.append_event(session, said(i))
    assert await store.append_event(session, summary(7, "e5", "e7", 3))
    await store.append_event(session, said(8))
    got = await store.get_context(APP, "u1", "s1", max_events=50)
    assert got is not None and texts(got.events) == ["summary 7", "m8"]
    summary_event = got.events[0]
    assert summary_event.author == SUMMARY_AUTHOR and summary_event.id == "inv7:summary"
    assert summary_event.content["covers"] == {"first": "e5", "last": "e7", "count": 3}
    # Right after a summary: the summary alone.
    other = await store.create_session(APP, "u1", "s2")
    await store.append_event(other, said(0))
    await store.append_event(other, summary(0, "e0", "e0", 1))
    got = await store.get_context(APP, "u1", "s2", max_events=50)
    assert got is not None and texts(got.events) == ["summary 0"]
    # A summary is appended once: the same id again changes nothing (a replayed job).
    assert not await store.append_event(session, summary(7, "e5", "e7", 3))
    # /export has every event, the summaries and what they cover alike; /forgetme erases them.
    exported = await store.export_user(APP, "u1")
    [first] = [s for s in exported["sessions"] if s["session_id"] == "s1"]
    authors = [e["author"] for e in first["events"]]
    assert authors.count(SUMMARY_AUTHOR) == 2 and len(authors) == 11
    await store.delete_user(APP, "u1")
    assert await store.get_context(APP, "u1", "s1", max_events=50) is None


async def test_the_load_stays_bounded_with_a_thousand_events(store: Store) -> None:
    session = await store.create_session(APP, "u1", "s1")
    for i in range(1000):
        await store.append_event(session, said(i))
    # No summary (a summariser that keeps failing): the cap, the newest events.
    got = await store.get_context(APP, "u1", "s1", max_events=30)
    assert got is not None and texts(got.events) == [f"m{i}" for i in range(970, 1000)]
    await store.append_event(session, summary(999, "e0", "e999", 1000))
    for i in range(1000, 1003):
        await store.append_event(session, said(i))
    got = await store.get_context(APP, "u1", "s1", max_events=30)
    assert got is not None and texts(got.events) == ["summary 999", "m1000", "m1001", "m1002"]
    # Raw events stay: the admin history still pages through everything.
    page = await store.history(APP, "u1", "s1", limit=5, before="e5")
    assert [e.text for e in page] == ["m0", "m1", "m2", "m3", "m4"]
    stats = await store.stats(APP, "u1")
    assert stats.events == 1004 and stats.turns == 501


async def test_summaries_are_found_through_their_index_on_sqlite(db_url: str) -> None:
    async with await open_store(db_url):
        pass
    db = sqlite3.connect(sqlite_path(db_url))
    try:
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT pk FROM events WHERE session_pk = 1"
            " AND author = 'summary' ORDER BY pk DESC LIMIT 1"
        ).fetchall()
        assert "events_summaries" in " ".join(str(row) for row in plan), plan
        assert load_context(db, APP, "u1", "nope", 10) is None
    finally:
        db.close()


async def test_summaries_are_found_through_their_index_on_postgres(postgres_db_url: str) -> None:
    async with await open_store(postgres_db_url) as store:
        await store.create_session(APP, "u1", "s1")
    conn = await asyncpg.connect(postgres_db_url)
    try:
        await conn.execute(
            """INSERT INTO sessions (app_name, user_id, session_id, created_at, updated_at)
               SELECT 'app', 'u1', 's' || g, 0, 0 FROM generate_series(2, 20) g"""
        )
        await conn.execute(
            """INSERT INTO events (id, sid, author, ts, content)
               SELECT 'e' || g, s.sid, CASE WHEN g % 50 = 0 THEN 'summary' ELSE 'user' END, g,
                      jsonb_build_object('text', g::text)
               FROM generate_series(1, 20000) g
               JOIN sessions s ON s.session_id = 's' || (g % 20 + 1) ORDER BY g"""
        )
        await conn.execute("ANALYZE")
        plan = "\n".join(
            row[0] for row in await conn.fetch(f"EXPLAIN {_GET_CONTEXT}", APP, "u1", "s7", 50)
        )
    finally:
        await conn.close()
    assert "events_summaries" in plan, plan
    assert "Seq Scan on events" not in plan, plan
