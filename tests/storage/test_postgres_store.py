"""PostgreSQL-specific behaviour; the shared contract is tests/storage/test_*.py (both backends).

Here: what only PostgreSQL can get wrong - NUL in JSONB, schema versions and concurrent
migrations, time limits turned into StoreBusy, an unreachable server, the plan of a turn's read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from storage import (
    Event,
    EventActions,
    SchemaTooNew,
    StoreBusy,
    StoreError,
    open_store,
)
from storage.postgres import PostgresStore
from storage.postgres import schema as postgres_schema
from storage.postgres.pool import PoolSettings
from storage.postgres.schema import SCHEMA_VERSION
from storage.postgres.sessions import _GET_SESSION, lock_key
from storage.urls import describe
from testkit.databases import audit_log

pytestmark = pytest.mark.postgres
APP = "app"


@pytest.fixture
async def store(postgres_db_url: str) -> AsyncIterator[PostgresStore]:
    opened = await PostgresStore.open(postgres_db_url)
    try:
        yield opened
    finally:
        await opened.close()


async def test_nul_characters_round_trip_though_jsonb_cannot_hold_them(
    store: PostgresStore,
) -> None:
    session = await store.create_session(APP, "u1", "s1", {"user:nick": "a\x00b", "k": "\x00"})
    event = Event(
        author="user",
        content={"text": "hi\x00there", "nested": ["\x00"]},
        actions=EventActions(state_delta={"user:last": "x\x00", "app:motd": "\x00!"}),
    )
    assert await store.append_event(session, event)
    got = await store.get_session(APP, "u1", "s1")
    assert got is not None
    assert got.events[0].content == {"text": "hi\x00there", "nested": ["\x00"]}
    assert got.events[0].actions.state_delta == {"user:last": "x\x00", "app:motd": "\x00!"}
    assert dict(got.state) == {
        "user:nick": "a\x00b",
        "k": "\x00",
        "user:last": "x\x00",
        "app:motd": "\x00!",
    }
    assert await store.inbox_put("tg", "1", {"text": "\x00"}) is not None
    assert (await store.inbox_pending())[0].payload == {"text": "\x00"}
    exported = await store.export_user(APP, "u1")
    assert exported["sessions"][0]["events"][0]["content"]["text"] == "hi\x00there"


async def test_state_is_jsonb_and_turn_reads_use_the_session_index(
    store: PostgresStore, postgres_db_url: str
) -> None:
    for i in range(20):
        await store.create_session(APP, "u1", f"s{i}")
    conn = await asyncpg.connect(postgres_db_url)
    try:
        # 20 sessions x 1000 events, interleaved as real chats are.
        await conn.execute(
            """INSERT INTO events (sid, id, author, ts, content)
               SELECT s.sid, 'e' || g, 'user', g, jsonb_build_object('text', g::text)
               FROM generate_series(1, 20000) g
               JOIN sessions s ON s.session_id = 's' || (g % 20) ORDER BY g"""
        )
        await conn.execute("ANALYZE")
        kinds = await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE column_name IN ('state', 'content', 'state_delta', 'payload')"
            " AND table_schema = current_schema()"
        )
        plan = "\n".join(
            row[0] for row in await conn.fetch(f"EXPLAIN {_GET_SESSION}", APP, "u1", "s7", 20)
        )
    finally:
        await conn.close()
    assert {row["data_type"] for row in kinds} == {"jsonb"}
    # The last N events are an index range of their session, not a scan of the history.
    assert "events_by_session" in plan, plan
    assert "Seq Scan on events" not in plan, plan
    got = await store.get_session(APP, "u1", "s7", recent_events=3)
    assert got is not None and [e.text for e in got.events] == ["19947", "19967", "19987"]


async def test_open_migrates_once_even_when_workers_start_together(postgres_db_url: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(postgres_db_url) for _ in range(4)))
    for opened in stores:
        await opened.close()
    conn = await asyncpg.connect(postgres_db_url)
    try:
        versions = await conn.fetch("SELECT version FROM schema_version ORDER BY version")
        salts = await conn.fetchval("SELECT count(*) FROM meta WHERE key = 'audit_salt'")
    finally:
        await conn.close()
    assert [row["version"] for row in versions] == list(range(1, SCHEMA_VERSION + 1))
    assert salts == 1


async def test_a_database_from_a_newer_release_is_refused(postgres_db_url: str) -> None:
    await (await PostgresStore.open(postgres_db_url)).close()
    conn = await asyncpg.connect(postgres_db_url)
    try:
        await conn.execute("INSERT INTO schema_version VALUES ($1)", SCHEMA_VERSION + 1)
    finally:
        await conn.close()
    with pytest.raises(SchemaTooNew, match="newer"):
        await PostgresStore.open(postgres_db_url)


ACTOR_ID = "987654321012"


async def test_reopen_keeps_the_audit_salt_so_hashes_stay_comparable(postgres_db_url: str) -> None:
    async with await open_store(postgres_db_url) as first:
        await first.audit(f"telegram:{ACTOR_ID}", "/stats")
    async with await open_store(postgres_db_url) as second:
        await second.audit(f"telegram:{ACTOR_ID}", "/sessions")
    entries = await audit_log(postgres_db_url)
    assert entries[0]["actor"] == entries[1]["actor"]
    # A 12-digit id, not "42": two digits turn up inside a 16-hex-digit hash 6% of the time.
    assert ACTOR_ID not in entries[0]["actor"] and "telegram" not in entries[0]["actor"]


async def test_a_statement_past_its_time_limit_is_store_busy(
    store: PostgresStore, postgres_db_url: str
) -> None:
    session = await store.create_session(APP, "u1", "s1")
    # Only the store under test has the short limit (its open finds the schema in place).
    async with await PostgresStore.open(
        postgres_db_url, PoolSettings(statement_timeout=0.5)
    ) as hasty:
        blocker = await asyncpg.connect(postgres_db_url)
        try:
            async with blocker.transaction():
                await blocker.execute("SELECT * FROM sessions FOR UPDATE")  # holds the row
                with pytest.raises(StoreBusy):
                    await hasty.append_event(session, Event(author="user", content={"text": "x"}))
        finally:
            await blocker.close()
    # The failed append left nothing behind; the next one goes through.
    assert await store.append_event(session, Event(author="user", content={"text": "y"}))
    got = await store.get_session(APP, "u1", "s1")
    assert got is not None and [e.text for e in got.events] == ["y"]


async def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    url = "postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere"
    settings = PoolSettings(connect_timeout=2)
    with pytest.raises(StoreError) as failure:
        await PostgresStore.open(url, settings)
    assert "s3cret-pw" not in str(failure.value)
    assert "127.0.0.1:1" in str(failure.value)
    assert describe(url) == "postgresql://127.0.0.1:1/nowhere"


def test_lock_keys_are_stable_signed_64_bit_and_distinct() -> None:
    key = lock_key("app", "u1", "s1")
    assert key == lock_key("app", "u1", "s1")
    assert -(2**63) <= key < 2**63
    # The separator keeps ("a", "bc") and ("ab", "c") apart.
    assert lock_key("app", "a", "bc") != lock_key("app", "ab", "c")
    assert len({lock_key("app", f"u{i}", "s") for i in range(1000)}) == 1000


async def test_close_twice_is_safe_and_a_closed_store_says_so(postgres_db_url: str) -> None:
    store = await PostgresStore.open(postgres_db_url)
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.get_session(APP, "u1", "s1")
    with pytest.raises(StoreError, match="closed"):
        async with store.session_lock(APP, "u1", "s1"):
            pass


async def test_pool_sizes_can_be_tuned_from_the_database_url(postgres_db_url: str) -> None:
    async with await open_store(
        f"{postgres_db_url}?pool_size=3&lock_connections=2&lock_wait=5"
    ) as store:
        assert isinstance(store, PostgresStore)
        assert store.pool.get_max_size() == 3
        assert store._lock_pool.get_max_size() == 2
        session = await store.create_session(APP, "u1", "s1")  # the rest of the URL still works
        async with store.session_lock(APP, "u1", "s1"):
            assert await store.append_event(session, Event(author="user", content={"text": "x"}))


async def test_two_workers_seeing_a_new_user_at_once_agree_on_its_id(postgres_db_url: str) -> None:
    async with (
        await PostgresStore.open(postgres_db_url) as first,
        await PostgresStore.open(postgres_db_url) as second,
    ):
        for n in range(5):
            ids = await asyncio.gather(
                *(
                    store.resolve_user("telegram", f"new-{n}", f"Name {i}")
                    for i in range(10)
                    for store in (first, second)
                )
            )
            assert None not in ids and len(set(ids)) == 1
        found = await first.find_user("telegram", "new-4")
        assert found == await second.find_user("telegram", "new-4") == ids[0]


async def test_an_old_database_upgrades_in_place(
    postgres_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A v1 database with data, opened by a release with one more migration: upgraded once,
    data intact (the mechanism a real v2 will use)."""
    async with await PostgresStore.open(postgres_db_url) as old:
        session = await old.create_session(APP, "u1", "s1", {"user:name": "Ann"})
        await old.append_event(session, Event(author="user", content={"text": "before"}))
    v2 = "ALTER TABLE sessions ADD COLUMN title text NOT NULL DEFAULT 'untitled'"
    monkeypatch.setattr(postgres_schema, "MIGRATIONS", (*postgres_schema.MIGRATIONS, v2))
    monkeypatch.setattr(postgres_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    for _ in range(2):  # the second open finds nothing to do
        async with await PostgresStore.open(postgres_db_url) as new:
            got = await new.get_session(APP, "u1", "s1")
            assert got is not None and got.state["user:name"] == "Ann"
            assert [e.text for e in got.events] == ["before"]
    conn = await asyncpg.connect(postgres_db_url)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_version")]
        titles = await conn.fetch("SELECT title FROM sessions")
    finally:
        await conn.close()
    assert sorted(versions) == list(range(1, SCHEMA_VERSION + 2))
    assert [r["title"] for r in titles] == ["untitled"]
