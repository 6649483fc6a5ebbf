"""Transfer an SQLite store into PostgreSQL: `copy_store(src_url, dst_url, progress)`.

A data copy between backends (`python -m bot migrate`), not a schema migration: each backend's
schema upgrades itself at open (storage.sqlite.schema, storage.postgres.schema).

Every row goes over - sessions, events (in their order), state of all scopes, identities, link
codes, the inbox, the audit log (with the salt its hashes were made with), notices, jobs
(alerts, reminders, digests, with their bookkeeping), unsent outbox messages and memories
(their search terms made again from the text). The copy runs in ONE PostgreSQL transaction,
so an interrupted copy leaves the destination as it was, and it is idempotent: rows already
there are matched by their natural keys (event id per session, platform + message id, ...),
so a second run adds nothing. State is merged key by key, the source's value winning; session
counters are recomputed from the events actually stored.
The source is read in one snapshot, read-only, after its own migrations brought it up to date.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from storage.jobs import JOB_COLUMNS, OUTBOX_COLUMNS
from storage.postgres import PostgresStore
from storage.postgres import transfer as pg
from storage.sqlite import SqliteStore
from storage.urls import MEMORY, sqlite_path

Progress = Callable[[int, int], None]  # (rows done, rows in total)
Row = tuple[Any, ...]
CHUNK = 1000

# Source tables in copy order (sessions before their events); state tables count keys.
TABLES = pg.TABLES


@dataclass(frozen=True, slots=True)
class CopyReport:
    source: Mapping[str, int]  # rows per table in the SQLite database
    added: Mapping[str, int]  # rows new in PostgreSQL (all 0 when run again)
    skipped: int  # source rows that could not be copied (events of a missing session)
    seconds: float

    @property
    def rows(self) -> int:
        return sum(self.source.values())

    @property
    def new_rows(self) -> int:
        return sum(self.added.values())

    def summary(self) -> str:
        parts = ", ".join(f"{name} {self.source[name]} (+{self.added[name]})" for name in TABLES)
        skipped = f"; {self.skipped} skipped" if self.skipped else ""
        return f"copied {self.rows} rows in {self.seconds:.1f}s: {parts}{skipped}"


async def copy_store(src_url: str, dst_url: str, progress: Progress | None = None) -> CopyReport:
    """Copy the SQLite store at `src_url` into the PostgreSQL store at `dst_url`.

    `progress(done, total)` is called as rows go over (tqdm: set `total`, update by the
    difference). Raises ValueError for a missing source or a non-PostgreSQL destination."""
    started = time.monotonic()
    uri = _read_only_uri(src_url)
    if not dst_url.startswith(("postgresql:", "postgres:")):
        raise ValueError("the destination must be a postgresql:// URL")
    await (await SqliteStore.open(src_url)).close()  # migrations: the layout read below
    async with (
        aiosqlite.connect(uri, uri=True, isolation_level=None) as src,
        await PostgresStore.open(dst_url) as dst,
    ):
        await src.execute("BEGIN")  # one read snapshot of the whole source
        try:
            source = {name: await _scalar(src, f"SELECT count(*) FROM {name}") for name in TABLES}
            ticker = _Ticker(sum(source.values()), progress)
            async with dst.pool.acquire() as conn, conn.transaction():
                before = await pg.count_rows(conn)
                skipped = await _copy_all(src, conn, ticker)
                after = await pg.count_rows(conn)
        finally:
            await src.execute("COMMIT")
    added = {name: max(after[name] - before[name], 0) for name in TABLES}
    return CopyReport(source, added, skipped, time.monotonic() - started)


def _read_only_uri(src_url: str) -> str:
    """The source as a read-only SQLite URI; it must exist (opening would create it)."""
    path = sqlite_path(src_url)
    if path == MEMORY or not Path(path).is_file():
        raise ValueError(f"no SQLite database at {src_url!r}")
    return f"{Path(path).resolve().as_uri()}?mode=ro"


class _Ticker:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.done = 0
        self._progress = progress
        self.tick(0)

    def tick(self, rows: int) -> None:
        self.done += rows
        if self._progress is not None:
            self._progress(self.done, self.total)


async def _scalar(src: aiosqlite.Connection, query: str) -> Any:
    async with src.execute(query) as cur:
        row = await cur.fetchone()
    return None if row is None else row[0]


async def _batches(
    src: aiosqlite.Connection, query: str, args: Row = ()
) -> AsyncIterator[list[Row]]:
    async with src.execute(query, args) as cur:
        while rows := await cur.fetchmany(CHUNK):
            yield [tuple(row) for row in rows]


async def _copy_all(src: aiosqlite.Connection, conn: pg.Conn, ticker: _Ticker) -> int:
    salt = await _scalar(src, "SELECT value FROM meta WHERE key = 'audit_salt'")
    if salt is not None:
        await pg.adopt_salt(conn, salt)
    await _copy_state(src, conn, ticker)
    sids = await _copy_sessions(src, conn, ticker)
    skipped = await _copy_events(src, conn, ticker, sids)
    await pg.recount_sessions(conn, list(sids.values()))
    simple: list[tuple[str, Callable[[pg.Conn, list[Row]], Any]]] = [
        (
            "SELECT platform, platform_user_id, user_id, display_name, created_at, username"
            " FROM identities ORDER BY created_at",
            pg.upsert_identities,
        ),
        ("SELECT code, user_id, expires_at FROM link_codes", pg.insert_link_codes),
        (
            "SELECT platform, message_id, payload, user_id, received_at, done_at FROM inbox"
            " ORDER BY received_at, rowid",
            pg.upsert_inbox,
        ),
        ("SELECT at, actor, command, detail FROM audit ORDER BY pk", pg.insert_audit),
        (
            "SELECT platform, platform_user_id, text, created_at FROM notices ORDER BY pk",
            pg.insert_notices,
        ),
        (f"SELECT app_name, {JOB_COLUMNS} FROM jobs", pg.insert_jobs),
        (f"SELECT app_name, {OUTBOX_COLUMNS} FROM outbox", pg.insert_outbox),
        (
            "SELECT app_name, user_id, id, text, created_at, updated_at, event_id FROM memories"
            " ORDER BY pk",
            pg.upsert_memories,
        ),
    ]
    for query, write in simple:
        async for chunk in _batches(src, query):
            await write(conn, chunk)
            ticker.tick(len(chunk))
    return skipped


async def _copy_state(src: aiosqlite.Connection, conn: pg.Conn, ticker: _Ticker) -> None:
    """app_state and user_state hold one row per key in SQLite, one JSONB object here."""
    for query, merge in (
        ("SELECT app_name, '', key, value FROM app_state ORDER BY 1, 2", pg.merge_app_states),
        (
            "SELECT app_name, user_id, key, value FROM user_state ORDER BY 1, 2",
            pg.merge_user_states,
        ),
    ):
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        async for chunk in _batches(src, query):
            for app_name, user_id, key, value in chunk:
                groups.setdefault((app_name, user_id), {})[key] = json.loads(value)
            ticker.tick(len(chunk))
        await merge(conn, groups)


async def _copy_sessions(
    src: aiosqlite.Connection, conn: pg.Conn, ticker: _Ticker
) -> dict[int, int]:
    """Upsert every session with its own state; returns SQLite pk -> PostgreSQL sid."""
    sids: dict[int, int] = {}
    query = (
        "SELECT pk, app_name, user_id, session_id, created_at, updated_at FROM sessions"
        " WHERE pk > ? ORDER BY pk LIMIT ?"
    )
    last = -1
    while True:
        async with src.execute(query, (last, CHUNK)) as cur:
            chunk = [tuple(row) for row in await cur.fetchall()]
        if not chunk:
            return sids
        last = chunk[-1][0]
        states = await _session_states(src, chunk[0][0], last)
        rows = [(*row[1:], states.get(row[0], {})) for row in chunk]
        new_sids = await pg.upsert_sessions(conn, rows)
        sids.update(zip([row[0] for row in chunk], new_sids, strict=True))
        ticker.tick(len(chunk))


async def _session_states(
    src: aiosqlite.Connection, low: int, high: int
) -> dict[int, dict[str, Any]]:
    states: dict[int, dict[str, Any]] = {}
    async for chunk in _batches(
        src,
        "SELECT session_pk, key, value FROM session_state WHERE session_pk BETWEEN ? AND ?",
        (low, high),
    ):
        for pk, key, value in chunk:
            states.setdefault(pk, {})[key] = json.loads(value)
    return states


async def _copy_events(
    src: aiosqlite.Connection, conn: pg.Conn, ticker: _Ticker, sids: Mapping[int, int]
) -> int:
    """Events in their global order (SQLite pk), so `seq` keeps every session's order."""
    query = (
        "SELECT pk, session_pk, id, invocation_id, author, timestamp, content, state_delta,"
        " transfer_to_agent, prompt_tokens, completion_tokens, final, error, memory_changes"
        " FROM events WHERE pk > ? ORDER BY pk LIMIT ?"
    )
    last, skipped = -1, 0
    while True:
        async with src.execute(query, (last, CHUNK)) as cur:
            chunk = [tuple(row) for row in await cur.fetchall()]
        if not chunk:
            return skipped
        last = chunk[-1][0]
        rows = [(sids[row[1]], *row[2:]) for row in chunk if row[1] in sids]
        skipped += len(chunk) - len(rows)
        await pg.insert_events(conn, rows)
        ticker.tick(len(chunk))
