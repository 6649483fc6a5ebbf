"""PostgreSQL: one writer per session ACROSS PROCESSES (advisory lock), and what a lock costs.

A second Python process opens its own store (own pool, own connections) on the same database,
so these tests see exactly what two bot workers would: the second writer waits, then sees the
first one's events; turns never interleave; no update is lost.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from storage import Event, EventActions, StoreBusy, StoreError
from storage.postgres import PostgresStore
from storage.postgres.pool import PoolSettings
from testkit.helpers import wait_until

pytestmark = pytest.mark.postgres
APP = "app"
ROOT = Path(__file__).resolve().parents[2]

# The other worker. "hold": take the lock, say "locked", wait for "go", write one whole turn
# (three events) and leave. "count N": say "ready", wait for "go", then N read-modify-write
# turns on state key `n` - while this process runs the same turns.
WORKER = """
import asyncio, sys
from storage.postgres import PostgresStore
from storage import Event, EventActions

async def turn(store, who, i):
    session = await store.get_session("app", "u1", "s1", recent_events=0)
    n = session.state.get("n", 0) + 1
    await store.append_event(session, Event(author="user", content={"text": f"{who}{i}"}))
    await store.get_session("app", "u1", "s1")  # time for the other side to run (it must not)
    await store.append_event(session, Event(
        author="manager", content={"text": f"{who}{i} ok"},
        actions=EventActions(state_delta={"n": n, "user:n": n}), final=True))

async def main(url, mode, count):
    store = await PostgresStore.open(url)
    try:
        if mode == "hold":
            async with store.session_lock("app", "u1", "s1"):
                print("locked", flush=True)
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
                session = await store.get_session("app", "u1", "s1")
                for text in ("first", "tool", "first done"):
                    event = Event(author="worker", content={"text": text})
                    await store.append_event(session, event)
            print("released", flush=True)
        else:
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            for i in range(count):
                async with store.session_lock("app", "u1", "s1"):
                    await turn(store, "w", i)
            print("done", flush=True)
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def start_worker(url: str, mode: str, count: int = 0) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER,
        url,
        mode,
        str(count),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def read_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        return (await proc.stdout.readline()).decode().strip()


async def waiting_advisory_locks(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    finally:
        await conn.close()


async def test_a_second_process_waits_then_sees_the_first_ones_events(postgres_db_url: str) -> None:
    async with await PostgresStore.open(postgres_db_url) as store:
        await store.create_session(APP, "u1", "s1")
        worker = await start_worker(postgres_db_url, "hold")
        try:
            assert await read_line(worker) == "locked"
            seen: list[str] = []

            async def second_writer() -> None:
                async with store.session_lock(APP, "u1", "s1"):
                    session = await store.get_session(APP, "u1", "s1")
                    assert session is not None
                    seen.extend(e.text for e in session.events)
                    await store.append_event(session, Event(author="user", content={"text": "2nd"}))

            task = asyncio.create_task(second_writer())
            # Proof that it waits on the database lock (not merely has not run yet).
            await wait_until(lambda: waiting_advisory_locks(postgres_db_url), timeout=10)
            assert not task.done()
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
            async with asyncio.timeout(30):
                await task
            assert await read_line(worker) == "released"
        finally:
            if worker.returncode is None:
                worker.kill()
            await worker.wait()
        assert seen == ["first", "tool", "first done"]
        history = await store.history(APP, "u1", "s1")
        assert [e.text for e in history] == ["first", "tool", "first done", "2nd"]


async def test_two_processes_counting_turns_lose_no_update_and_never_interleave(
    postgres_db_url: str,
) -> None:
    turns = 40
    async with await PostgresStore.open(postgres_db_url) as store:
        await store.create_session(APP, "u1", "s1")
        worker = await start_worker(postgres_db_url, "count", turns)
        try:
            assert await read_line(worker) == "ready"
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
            for i in range(turns):
                async with store.session_lock(APP, "u1", "s1"):
                    session = await store.get_session(APP, "u1", "s1", recent_events=0)
                    assert session is not None
                    n = session.state.get("n", 0) + 1
                    await store.append_event(
                        session, Event(author="user", content={"text": f"m{i}"})
                    )
                    await store.get_session(APP, "u1", "s1")
                    await store.append_event(
                        session,
                        Event(
                            author="manager",
                            content={"text": f"m{i} ok"},
                            actions=EventActions(state_delta={"n": n, "user:n": n}),
                            final=True,
                        ),
                    )
            assert await read_line(worker) == "done"
        finally:
            if worker.returncode is None:
                worker.kill()
            await worker.wait()
        session = await store.get_session(APP, "u1", "s1")
        assert session is not None
        assert session.state["n"] == session.state["user:n"] == 2 * turns  # no lost update
        events = await store.history(APP, "u1", "s1", limit=10 * turns)
        assert len(events) == 4 * turns
        for question, answer in zip(events[::2], events[1::2], strict=True):  # no interleaving
            assert answer.text == f"{question.text} ok"
        stats = await store.stats(APP, "u1")
        assert stats.turns == 2 * turns and stats.events == 4 * turns


async def test_a_lock_held_too_long_elsewhere_gives_store_busy(postgres_db_url: str) -> None:
    patient = PoolSettings(lock_wait=0.2)
    async with (
        await PostgresStore.open(postgres_db_url) as first,
        await PostgresStore.open(postgres_db_url, patient) as second,
    ):
        async with first.session_lock(APP, "u1", "s1"):
            with pytest.raises(StoreBusy):
                async with second.session_lock(APP, "u1", "s1"):
                    pytest.fail("the lock was held by the other store")
        async with asyncio.timeout(10), second.session_lock(APP, "u1", "s1"):
            pass  # released by the first: free again, and nothing leaked on the failed try


async def test_lock_is_released_on_error_and_on_cancel(postgres_db_url: str) -> None:
    async with (
        await PostgresStore.open(postgres_db_url) as first,
        await PostgresStore.open(postgres_db_url) as second,
    ):
        with pytest.raises(RuntimeError):
            async with first.session_lock(APP, "u1", "s1"):
                raise RuntimeError("the turn failed")

        entered = asyncio.Event()

        async def stuck_turn() -> None:
            async with first.session_lock(APP, "u1", "s1"):
                entered.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(stuck_turn())
        async with asyncio.timeout(10):
            await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(10), second.session_lock(APP, "u1", "s1"):
            pass


async def test_cancelling_a_waiter_leaks_no_lock(postgres_db_url: str) -> None:
    async with (
        await PostgresStore.open(postgres_db_url) as first,
        await PostgresStore.open(postgres_db_url) as second,
    ):
        released = asyncio.Event()
        async with first.session_lock(APP, "u1", "s1"):
            waiter = asyncio.create_task(_hold(second, released))
            await wait_until(lambda: waiting_advisory_locks(postgres_db_url), timeout=10)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        # Neither store holds the lock now: both can take it in turn.
        for store in (second, first):
            async with asyncio.timeout(10), store.session_lock(APP, "u1", "s1"):
                pass
        assert not released.is_set()
        assert len(second._local_locks) == 0 and len(first._local_locks) == 0


async def _hold(store: PostgresStore, flag: asyncio.Event) -> None:
    async with store.session_lock(APP, "u1", "s1"):
        flag.set()


async def test_many_waiters_in_one_process_use_one_lock_connection(postgres_db_url: str) -> None:
    """Waiters queue on the in-process lock first, so 30 turns of one session never need more
    than one connection of the lock pool (whose size is far smaller)."""
    settings = PoolSettings(lock_connections=2)
    async with await PostgresStore.open(postgres_db_url, settings) as store:
        await store.create_session(APP, "u1", "s1")
        order: list[int] = []

        async def turn(i: int) -> None:
            async with store.session_lock(APP, "u1", "s1"):
                order.append(i)
                session = await store.get_session(APP, "u1", "s1", recent_events=0)
                assert session is not None
                n = session.state.get("n", 0) + 1
                await store.append_event(
                    session,
                    Event(
                        author="user",
                        content={"text": str(i)},
                        actions=EventActions(state_delta={"n": n}),
                    ),
                )

        async with asyncio.timeout(30):
            await asyncio.gather(*(turn(i) for i in range(30)))
        assert store._lock_pool.get_size() == 1  # connections ever opened by the lock pool
        # Another session is not blocked by a busy one, even with the lock pool this small.
        async with asyncio.timeout(10), store.session_lock(APP, "u1", "s2"):
            pass
        session = await store.get_session(APP, "u1", "s1")
        assert session is not None and session.state["n"] == 30
        assert sorted(order) == list(range(30))


async def test_a_turn_that_lost_its_lock_connection_cannot_keep_writing(
    postgres_db_url: str,
) -> None:
    """The lock lives on a connection; the turn's statements run on that same connection, so
    if it dies (and the lock with it) the turn fails instead of writing unlocked."""
    async with await PostgresStore.open(postgres_db_url) as store:
        session = await store.create_session(APP, "u1", "s1")
        admin = await asyncpg.connect(postgres_db_url)
        try:
            with pytest.raises(StoreError):
                async with store.session_lock(APP, "u1", "s1"):
                    await store.append_event(session, Event(author="user", content={"text": "a"}))
                    killed = await admin.fetchval(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks"
                        " WHERE locktype = 'advisory' AND granted AND database ="
                        " (SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                    assert killed
                    await store.append_event(session, Event(author="user", content={"text": "b"}))
        finally:
            await admin.close()
        # The store recovers: a new lock connection, and only the first event was written.
        async with asyncio.timeout(10), store.session_lock(APP, "u1", "s1"):
            got = await store.get_session(APP, "u1", "s1")
        assert got is not None and [e.text for e in got.events] == ["a"]


async def test_concurrent_statements_inside_one_turn_still_work(postgres_db_url: str) -> None:
    async with await PostgresStore.open(postgres_db_url) as store:
        session = await store.create_session(APP, "u1", "s1")
        async with store.session_lock(APP, "u1", "s1"):
            results = await asyncio.gather(
                *(
                    store.append_event(session, Event(author="tool", content={"text": str(i)}))
                    for i in range(10)
                ),
                *(store.get_session(APP, "u1", "s1") for _ in range(5)),
            )
            assert all(results)
            leftover = asyncio.create_task(
                store.append_event(session, Event(author="late", content={"text": "after"}))
            )
        assert await leftover  # ran on the pool, not on the released lock connection
        got = await store.get_session(APP, "u1", "s1", recent_events=50)
        assert got is not None and len(got.events) == 11


async def test_a_lock_held_in_an_async_generator_closed_by_another_task_is_released(
    postgres_db_url: str,
) -> None:
    """The core holds the lock inside an async generator while the adapter sends replies; the
    generator may be closed from another task (shutdown)."""
    async with await PostgresStore.open(postgres_db_url) as store:
        session = await store.create_session(APP, "u1", "s1")

        async def replies() -> AsyncIterator[str]:
            async with store.session_lock(APP, "u1", "s1"):
                await store.append_event(session, Event(author="user", content={"text": "q"}))
                yield "first"
                yield "second"

        gen = replies()
        assert await anext(gen) == "first"
        await asyncio.create_task(gen.aclose())
        async with asyncio.timeout(10), store.session_lock(APP, "u1", "s1"):
            got = await store.get_session(APP, "u1", "s1")
        assert got is not None and [e.text for e in got.events] == ["q"]
