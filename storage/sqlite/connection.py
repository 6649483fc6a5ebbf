"""The SQLite store's connections: one group-committing writer, and readers beside it.

Writes are functions `fn(db) -> result` run on the writer connection's thread. One writer task
drains a queue of them and runs a whole batch as ONE call on aiosqlite's worker thread:
`BEGIN IMMEDIATE`, every function, one `COMMIT` (a failing function is undone alone through
SAVEPOINTs and fails only its caller). Callers' awaits return only after that COMMIT.
With many sessions writing at once, one fsync then covers the appends of all of them.

aiosqlite 0.22 runs callables on its thread through `Connection._execute`; calling it with our
own function saves a thread hop per statement (pinned version; see requirements.txt).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import aiosqlite

from storage.types import StoreBusy, StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")
DbFn = Callable[[sqlite3.Connection], Any]
MAX_BATCH = 512
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def map_error(exc: BaseException) -> BaseException:
    """sqlite3 errors become StoreBusy / StoreError; our own exceptions pass unchanged."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _BUSY_CODES:
            return StoreBusy("the database is busy (locked past the busy timeout); try again")
        return StoreError(f"database error: {exc}")
    return exc


async def run_on(conn: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run `fn` with the raw sqlite3 connection on the connection's own thread."""
    try:
        return await conn._execute(lambda: fn(conn._conn))
    except ValueError as exc:  # aiosqlite: "Connection closed" / "no active connection"
        if not conn._running or conn._connection is None:
            raise StoreError("the store is closed") from exc
        raise


def _read_tx(fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    # One read transaction: every SELECT of `fn` sees the same committed snapshot.
    db.execute("BEGIN")
    try:
        return fn(db)
    except sqlite3.Error as exc:
        raise map_error(exc) from exc
    finally:
        db.execute("COMMIT")


def _read_plain(fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    try:
        return fn(db)
    except sqlite3.Error as exc:
        raise map_error(exc) from exc


class Readers:
    """Read connections; under WAL they never wait for the writer. The first serves the reads
    of turns, the second the admin views and exports, so a long export cannot hold up anyone's
    turn (in memory both are the writer's connection: a second would see another database).

    All turns share one connection rather than several round-robin: each connection is a
    thread competing for the GIL with the event loop and the writer, and its decoded-event
    cache sees only its own reads. 100 concurrent users on the 2-core machine: 1,773 turns/s
    on one, 1,365 on two, 1,277 on three (median of 6 interleaved runs)."""

    def __init__(self, conns: Sequence[aiosqlite.Connection]) -> None:
        self._turns, self._admin = conns[0], conns[-1]

    async def run(
        self, fn: Callable[[sqlite3.Connection], T], *, snapshot: bool = True, admin: bool = False
    ) -> T:
        """`snapshot`: run `fn` in one read transaction, so all its SELECTs agree. `admin`: a
        read that may be long (a view over many rows), kept off the turns' connection."""
        conn = self._admin if admin else self._turns
        if snapshot:
            return await run_on(conn, lambda db: _read_tx(fn, db))
        return await run_on(conn, lambda db: _read_plain(fn, db))


def _run_batch(db: sqlite3.Connection, fns: Sequence[DbFn]) -> list[tuple[bool, Any]]:
    """Run every function in ONE transaction; returns (ok, value or error) per function.

    Fast path: the functions run straight in the transaction. If one fails, the transaction is
    rolled back and the batch run again with each function inside its own SAVEPOINT, so that
    only the failing one is undone. Failures are rare (values were encoded and checked before
    queueing), and two statements saved per write are a good share of the writer's time.
    """
    outcomes = _attempt(db, fns, isolated=False)
    if outcomes is None:
        outcomes = _attempt(db, fns, isolated=True)
    assert outcomes is not None  # isolated: a failing function is undone alone, never None
    return outcomes


def _attempt(
    db: sqlite3.Connection, fns: Sequence[DbFn], *, isolated: bool
) -> list[tuple[bool, Any]] | None:
    """One try at the batch; None when a function failed on the fast path (all rolled back)."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        return _fail_all(exc, len(fns))
    alone = len(fns) == 1  # its own transaction is all the isolation it needs
    outcomes: list[tuple[bool, Any]] = []
    for fn in fns:
        if isolated and not alone:
            db.execute("SAVEPOINT job")
        try:
            value = fn(db)
        except Exception as exc:
            if not db.in_transaction:  # SQLite rolled the whole transaction back (e.g. I/O)
                return _fail_all(exc, len(fns))
            if alone:
                db.execute("ROLLBACK")
                return [(False, map_error(exc))]
            if not isolated:
                db.execute("ROLLBACK")
                return None
            db.execute("ROLLBACK TO job")
            db.execute("RELEASE job")
            outcomes.append((False, map_error(exc)))
        else:
            if isolated and not alone:
                db.execute("RELEASE job")
            outcomes.append((True, value))
    try:
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        return _fail_all(exc, len(fns))
    return outcomes


def _fail_all(exc: BaseException, n: int) -> list[tuple[bool, Any]]:
    # A fresh exception per caller: one instance raised in many tasks would share a traceback.
    return [(False, map_error(exc)) for _ in range(n)]


class GroupCommitWriter:
    """The single writer: a queue of write functions, committed together in batches."""

    def __init__(self, conn: aiosqlite.Connection, max_batch: int = MAX_BATCH) -> None:
        self._conn = conn
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[DbFn, asyncio.Future[Any]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0  # counters for the bench and tests: how much group commit happened
        self.jobs = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="sqlite-group-commit-writer")

    async def submit(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((fn, future))
        return await future

    async def close(self) -> None:
        """Finish every queued write, then stop."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task

    async def _loop(self) -> None:
        stop = False
        while not stop:
            item = await self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self._max_batch and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    stop = True
                    break
                batch.append(more)
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[DbFn, asyncio.Future[Any]]]) -> None:
        live = [(fn, fut) for fn, fut in batch if not fut.done()]  # skip cancelled callers
        if not live:
            return
        fns = [fn for fn, _ in live]
        try:
            outcomes = await run_on(self._conn, lambda db: _run_batch(db, fns))
        except Exception as exc:  # the connection itself failed: every caller hears it
            log.error("sqlite writer batch failed: %s", exc)
            outcomes = _fail_all(exc, len(live))
        self.batches += 1
        self.jobs += len(live)
        for (_, future), (ok, value) in zip(live, outcomes, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


async def close_quietly(conn: aiosqlite.Connection) -> None:
    with contextlib.suppress(Exception):
        await conn.close()
