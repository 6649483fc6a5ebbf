"""SQLite-only behaviour: file, URL forms, WAL, migrations, locking, group commit."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import threading
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from storage import (
    Event,
    EventActions,
    InboxStatus,
    SchemaTooNew,
    StoreBusy,
    StoreError,
    TokenUsage,
    open_store,
)
from storage.sqlite import SqliteStore
from storage.sqlite.schema import LATEST
from testkit.helpers import wait_until

APP = "Multi-Agent System"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def ev(author: str, text: str, delta: dict | None = None, **kw: object) -> Event:
    return Event(author=author, content={"text": text}, actions=EventActions(delta or {}), **kw)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(f"sqlite:///{tmp_path / 'store.db'}", busy_timeout=0.2)
    try:
        yield store
    finally:
        await store.close()


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


async def test_file_is_owner_only_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"  # its folder must exist: tests/operator/test_database_url.py
    async with await open_store(f"sqlite:///{path}") as store:
        s = await store.create_session(APP, "u1", "s1")
        await store.append_event(s, ev("user", "hi"))
        for file in (path, Path(f"{path}-wal")):
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        with closing(raw(path)) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_relative_and_memory_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with await open_store("sqlite:///relative.db") as store:
        await store.create_session(APP, "u1", "s1")
    assert (tmp_path / "relative.db").is_file()
    async with await open_store("sqlite:///:memory:") as store:
        s = await store.create_session(APP, "u1", "s1")
        assert await store.append_event(s, ev("user", "in memory", {"user:k": 1}))
        got = await store.get_session(APP, "u1", "s1")
        assert got is not None and got.state == {"user:k": 1} and len(got.events) == 1
    assert sorted(os.listdir(tmp_path)) == ["relative.db"]
    for bad in ("sqlite://relative.db", "sqlite:///", "sqlite:///x.db?mode=ro", "mysql://x"):
        with pytest.raises(ValueError):
            await open_store(bad)
    (tmp_path / "not-a-db.db").write_text("hello")
    with pytest.raises(StoreError, match="not a database"):
        await open_store(f"sqlite:///{tmp_path / 'not-a-db.db'}")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StoreError, match="cannot create"):
        await open_store(f"sqlite:///{tmp_path / 'a-file' / 'x.db'}")


async def test_a_version_1_database_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(raw(path)) as db:
        db.executescript((FIXTURES / "sqlite_v1.sql").read_text())
    async with await open_store(f"sqlite:///{path}") as store:
        ann = await store.get_session(APP, "a1b2c3d4e5f6", "telegram:100")
        assert ann is not None
        assert dict(ann.state) == {
            "app:motd": "welcome",
            "user:name": "Ann",
            "user:joke_topics": ["python"],
        }
        assert [e.id for e in ann.events] == ["inv1:u", "inv1:t", "inv1:f", "inv3:u"]
        assert ann.events[2].usage == TokenUsage(200, 30) and ann.events[2].final
        assert ann.events[1].actions.transfer_to_agent == "funny_nerd"
        bob = await store.get_session(APP, "0f0f0f0f0f0f", "discord:200")
        assert bob is not None and bob.state["last_ticker"] == "TSLA"
        # The counters added by version 2 were computed from the old events.
        sessions = {r.session_id: r for r in await store.list_sessions(APP)}
        assert (sessions["telegram:100"].turns, sessions["telegram:100"].events) == (2, 4)
        assert (sessions["discord:200"].turns, sessions["discord:200"].events) == (1, 3)
        stats = await store.stats(APP)
        assert dict(stats.delegations) == {"funny_nerd": 1, "stock_analyst": 1}
        assert (stats.prompt_tokens, stats.completion_tokens) == (450, 48)
        assert await store.find_user("telegram", "100") == "a1b2c3d4e5f6"
        assert [i.message_id for i in await store.inbox_pending()] == ["5002"]
        # ...and what version 2 added works on the upgraded file.
        assert await store.append_event(ann, ev("user", "still here"))
        await store.audit("telegram:1", "/stats")
        assert await store.create_link_code("a1b2c3d4e5f6")
    with closing(raw(path)) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(LATEST,)]
    async with await open_store(f"sqlite:///{path}") as store:  # migrations run once
        assert (await store.stats(APP)).turns == 4


async def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    async with await open_store(f"sqlite:///{path}"):
        pass
    with closing(raw(path)) as db:
        db.execute("UPDATE schema_version SET version = ?", (LATEST + 1,))
    with pytest.raises(SchemaTooNew, match="newer"):
        await open_store(f"sqlite:///{path}")


async def test_busy_database_raises_store_busy_and_reads_go_on(
    tmp_path: Path, sqlite_store: SqliteStore
) -> None:
    s = await sqlite_store.create_session(APP, "u1", "s1")
    await sqlite_store.append_event(s, ev("user", "before"))
    other = raw(tmp_path / "store.db")
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(StoreBusy):
            await sqlite_store.append_event(s, ev("user", "blocked"))
        got = await sqlite_store.get_session(APP, "u1", "s1")  # readers don't queue
        assert got is not None and [e.text for e in got.events] == ["before"]
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await sqlite_store.append_event(s, ev("user", "after"))
    got = await sqlite_store.get_session(APP, "u1", "s1")
    assert got is not None and [e.text for e in got.events] == ["before", "after"]


async def test_an_append_is_committed_when_its_await_returns(
    tmp_path: Path, sqlite_store: SqliteStore
) -> None:
    s = await sqlite_store.create_session(APP, "u1", "s1")
    await asyncio.gather(*(sqlite_store.append_event(s, ev("user", f"m{i}")) for i in range(5)))
    with closing(raw(tmp_path / "store.db")) as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 5


async def test_a_failing_append_in_a_group_commit_fails_alone(
    tmp_path: Path, sqlite_store: SqliteStore
) -> None:
    s = await sqlite_store.create_session(APP, "u1", "s1")
    with closing(raw(tmp_path / "store.db")) as db:  # a failure only the database can produce
        db.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON user_state WHEN NEW.key = 'user:boom'"
            " BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
    batches = sqlite_store.writer.batches
    events = [ev("user", f"m{i}", {f"user:k{i}": i}) for i in range(10)]
    events[4] = ev("user", "m4", {"k4-session": 4, "user:boom": 1})
    results = await asyncio.gather(
        *(sqlite_store.append_event(s, e) for e in events), return_exceptions=True
    )
    assert sqlite_store.writer.batches == batches + 1  # all ten went in one COMMIT
    assert isinstance(results[4], StoreError) and "boom" in str(results[4])
    assert [r for i, r in enumerate(results) if i != 4] == [True] * 9
    got = await sqlite_store.get_session(APP, "u1", "s1")
    assert got is not None
    assert [e.text for e in got.events] == [f"m{i}" for i in range(10) if i != 4]
    assert "k4-session" not in got.state and "user:boom" not in got.state
    assert got.state["user:k9"] == 9


async def test_concurrent_appends_share_commits(sqlite_store: SqliteStore) -> None:
    sessions = [await sqlite_store.create_session(APP, f"u{k}", f"s{k}") for k in range(100)]
    jobs, batches = sqlite_store.writer.jobs, sqlite_store.writer.batches
    await asyncio.gather(*(sqlite_store.append_event(s, ev("user", "hi")) for s in sessions))
    assert sqlite_store.writer.jobs - jobs == 100
    assert sqlite_store.writer.batches - batches < 10


async def test_session_locks_are_dropped_when_free(sqlite_store: SqliteStore) -> None:
    for k in range(100):
        async with sqlite_store.session_lock(APP, "u1", f"s{k}"):
            assert len(sqlite_store.locks) == 1
    assert len(sqlite_store.locks) == 0
    # ...but never while someone waits: a third writer must still queue behind the second.
    order: list[str] = []
    b_trying, c_trying, release_b = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def writer(name: str, trying: asyncio.Event, hold: asyncio.Event | None) -> None:
        trying.set()  # the lock attempt follows in this same step
        async with sqlite_store.session_lock(APP, "u1", "s1"):
            order.append(name)
            if hold is not None:
                await hold.wait()

    async with sqlite_store.session_lock(APP, "u1", "s1"):
        b = asyncio.create_task(writer("b", b_trying, release_b))
        await wait_until(b_trying.is_set)
    await wait_until(lambda: order == ["b"])
    c = asyncio.create_task(writer("c", c_trying, None))
    await wait_until(c_trying.is_set)
    assert order == ["b"]  # c waits for b
    release_b.set()
    await asyncio.gather(b, c)
    assert order == ["b", "c"] and len(sqlite_store.locks) == 0


async def test_old_answered_inbox_rows_are_pruned_at_open(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    async with await open_store(f"sqlite:///{path}") as store:
        for message_id in ("old", "recent", "unanswered"):
            await store.inbox_put("telegram", message_id, {"text": message_id})
        await store.inbox_done("telegram", "old")
        await store.inbox_done("telegram", "recent")
    with closing(raw(path)) as db:
        db.execute("UPDATE inbox SET done_at = done_at - 31 * 86400, received_at = 0")
        db.execute("UPDATE inbox SET done_at = NULL WHERE message_id = 'unanswered'")
        db.execute("UPDATE inbox SET done_at = done_at + 2 * 86400 WHERE message_id = 'recent'")
    async with await open_store(f"sqlite:///{path}") as store:
        assert await store.inbox_put("telegram", "recent", {}) is InboxStatus.DONE
        assert await store.inbox_put("telegram", "unanswered", {}) is InboxStatus.PENDING
        assert await store.inbox_put("telegram", "old", {}) is InboxStatus.NEW


async def test_a_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'x.db'}")
    s = await store.create_session(APP, "u1", "s1")
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.append_event(s, ev("user", "late"))
    with pytest.raises(StoreError, match="closed"):
        await store.get_session(APP, "u1", "s1")


async def test_a_long_admin_read_does_not_hold_up_a_turns_read(sqlite_store: SqliteStore) -> None:
    """Admin views and exports run on their own read connection: while one is busy (here held
    on purpose), the turns' reads go on."""
    s = await sqlite_store.create_session(APP, "u1", "s1")
    await sqlite_store.append_event(s, ev("user", "hello"))
    release, started = threading.Event(), threading.Event()

    def long_admin_read(db: sqlite3.Connection) -> int:
        started.set()
        release.wait(10)
        return db.execute("SELECT count(*) FROM events").fetchone()[0]

    admin = asyncio.create_task(sqlite_store._readers.run(long_admin_read, admin=True))
    try:
        await wait_until(started.is_set)
        got = await asyncio.wait_for(sqlite_store.get_session(APP, "u1", "s1"), 5)
        assert got is not None and [e.text for e in got.events] == ["hello"]
        assert not admin.done()
    finally:
        release.set()
    assert await admin == 1
