"""Sessions, scoped state and events of the PostgreSQL backend, and the session lock.

- every append is ONE statement (data-modifying CTEs): event, counters and the state delta of
  all three scopes commit together, idempotent by event id, in a single round trip;
- `get_session` is one statement too: merged state plus the last N events through the
  (sid, seq) index, so a turn's cost does not grow with the history;
- `session_lock` serialises writers across processes with a session-level advisory lock held on
  a connection of a separate small pool (so turns holding locks never starve the data pool);
  that connection also runs the turn's own statements (pool.TurnConnections), after an
  in-process asyncio lock so that waiters in one process do not each hold a connection.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from storage.common import check_storable
from storage.locks import KeyedLocks
from storage.memory_plan import ChangeContext
from storage.postgres import memories, schedules
from storage.postgres.codec import (
    EVENT_COLUMNS,
    dumps_state,
    event_from_row,
    event_params,
    loads_state,
    memory_changes_param,
    split_for_sql,
)
from storage.postgres.pool import PoolSettings, TurnConnections, db_errors
from storage.types import Event, Session, SessionNotFound, new_id, split_delta

_GET_SESSION = f"""
SELECT s.sid, s.state, s.created_at, s.updated_at,
       (SELECT a.state FROM app_state a WHERE a.app_name = $1) AS app_state,
       (SELECT u.state FROM user_state u WHERE u.app_name = $1 AND u.user_id = $2) AS user_state,
       ARRAY(SELECT ROW({EVENT_COLUMNS}) FROM (
                SELECT * FROM events WHERE events.sid = s.sid ORDER BY seq DESC LIMIT $4
            ) e ORDER BY e.seq) AS recent
FROM sessions s
WHERE s.app_name = $1 AND s.user_id = $2 AND s.session_id = $3
"""

# The latest summary event (through the partial index events_summaries) and at most $4 of the
# events after it: what a turn loads once compaction has summarised the older history.
_GET_CONTEXT = f"""
SELECT s.sid, s.state, s.created_at, s.updated_at,
       (SELECT a.state FROM app_state a WHERE a.app_name = $1) AS app_state,
       (SELECT u.state FROM user_state u WHERE u.app_name = $1 AND u.user_id = $2) AS user_state,
       (SELECT ROW({EVENT_COLUMNS}) FROM events e
            WHERE e.sid = s.sid AND e.author = 'summary' ORDER BY e.seq DESC LIMIT 1) AS summary,
       ARRAY(SELECT ROW({EVENT_COLUMNS}) FROM (
                SELECT * FROM events WHERE events.sid = s.sid AND events.seq > coalesce(
                    (SELECT max(m.seq) FROM events m WHERE m.sid = s.sid AND m.author = 'summary'),
                    0)
                ORDER BY seq DESC LIMIT $4
            ) e ORDER BY e.seq) AS recent
FROM sessions s
WHERE s.app_name = $1 AND s.user_id = $2 AND s.session_id = $3
"""

# $1-$3 session key; $4-$14 the event (event_params order); $15-$20 (set, delete) for the app,
# user and session scopes; $21/$22 whether the app/user scopes change at all; $23 the event's
# memory changes (JSONB or NULL).
_APPEND = """
WITH s AS (
    SELECT sid FROM sessions WHERE app_name = $1 AND user_id = $2 AND session_id = $3
), ins AS (
    INSERT INTO events (id, sid, invocation_id, author, ts, content, state_delta,
                        transfer_to_agent, prompt_tokens, completion_tokens, final, error,
                        memory_changes)
    SELECT $4, s.sid, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12, $13, $14, $23::jsonb
    FROM s
    ON CONFLICT (sid, id) DO NOTHING
    RETURNING sid
), upd AS (
    UPDATE sessions SET state = (state || $19::jsonb) - $20::text[],
                        updated_at = greatest(updated_at, $7::double precision),
                        events = events + 1,
                        turns = turns + CASE WHEN $6 = 'user' THEN 1 ELSE 0 END,
                        prompt_tokens = prompt_tokens + coalesce($11, 0),
                        completion_tokens = completion_tokens + coalesce($12, 0)
    WHERE sid = (SELECT sid FROM ins)
), app AS (
    INSERT INTO app_state AS a (app_name, state)
    SELECT $1, $15::jsonb FROM ins WHERE $21
    ON CONFLICT (app_name) DO UPDATE SET state = (a.state || EXCLUDED.state) - $16::text[]
), usr AS (
    INSERT INTO user_state AS u (app_name, user_id, state)
    SELECT $1, $2, $17::jsonb FROM ins WHERE $22
    ON CONFLICT (app_name, user_id) DO UPDATE SET state = (u.state || EXCLUDED.state) - $18::text[]
)
SELECT (SELECT count(*) FROM s) AS found, (SELECT count(*) FROM ins) AS inserted
"""

_CREATE_SESSION = """
INSERT INTO sessions (app_name, user_id, session_id, state, created_at, updated_at)
VALUES ($1, $2, $3, $4::jsonb, $5, $5)
ON CONFLICT (app_name, user_id, session_id) DO NOTHING
RETURNING sid
"""


MERGE_APP = """
INSERT INTO app_state AS a (app_name, state) VALUES ($1, $2::jsonb)
ON CONFLICT (app_name) DO UPDATE SET state = (a.state || EXCLUDED.state) - $3::text[]
"""

MERGE_USER = """
INSERT INTO user_state AS u (app_name, user_id, state) VALUES ($1, $2, $3::jsonb)
ON CONFLICT (app_name, user_id) DO UPDATE SET state = (u.state || EXCLUDED.state) - $4::text[]
"""


def _not_found(session: Session) -> SessionNotFound:
    return SessionNotFound(
        f"no session {session.session_id!r} for user {session.user_id!r}"
        f" in app {session.app_name!r}"
    )


def _session(key: tuple[str, str, str], row: asyncpg.Record, first: tuple[Event, ...]) -> Session:
    """A Session from a _GET_SESSION/_GET_CONTEXT row; `first` goes before its recent events."""
    state = {
        **loads_state(row["app_state"]),
        **loads_state(row["user_state"]),
        **loads_state(row["state"]),
    }
    return Session(
        app_name=key[0],
        user_id=key[1],
        session_id=key[2],
        state=state,
        events=(*first, *(event_from_row(item) for item in row["recent"])),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def lock_key(app_name: str, user_id: str, session_id: str) -> int:
    """A signed 64-bit key for pg_advisory_lock, stable across processes and Python runs
    (unlike hash()). A collision only makes two sessions share a lock: slower, never wrong."""
    raw = "\x1f".join((app_name, user_id, session_id)).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)


class PostgresSessions:
    """Sessions, scoped state, events and the session lock of PostgresStore, which sets the
    attributes declared here."""

    _pool: asyncpg.Pool
    _lock_pool: asyncpg.Pool
    _settings: PoolSettings
    _local_locks: KeyedLocks
    _turns: TurnConnections
    memory_limit: int

    async def create_session(
        self,
        app_name: str,
        user_id: str,
        session_id: str | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> Session:
        session_id = session_id or new_id()
        app, user, own = split_delta(state or {})
        own = {key: value for key, value in own.items() if value is not None}
        async with db_errors(), self._pool.acquire() as conn, conn.transaction():
            sid = await conn.fetchval(
                _CREATE_SESSION, app_name, user_id, session_id, dumps_state(own), time.time()
            )
            if sid is not None:  # new: its initial state reaches the shared scopes too
                app_set, app_del, user_set, user_del, _, _ = split_for_sql({**app, **user})
                if app:
                    await conn.execute(MERGE_APP, app_name, app_set, app_del)
                if user:
                    await conn.execute(MERGE_USER, app_name, user_id, user_set, user_del)
        found = await self.get_session(app_name, user_id, session_id)
        if found is None:  # deleted between the two statements
            raise SessionNotFound(f"session {session_id} vanished while being created")
        return found

    async def get_session(
        self, app_name: str, user_id: str, session_id: str, *, recent_events: int = 20
    ) -> Session | None:
        key = (app_name, user_id, session_id)
        async with db_errors(), self._turns.connection(key) as conn:
            row = await conn.fetchrow(_GET_SESSION, *key, max(recent_events, 0))
        return None if row is None else _session(key, row, ())

    async def get_context(
        self, app_name: str, user_id: str, session_id: str, *, max_events: int
    ) -> Session | None:
        key = (app_name, user_id, session_id)
        async with db_errors(), self._turns.connection(key) as conn:
            row = await conn.fetchrow(_GET_CONTEXT, *key, max(max_events, 0))
        if row is None:
            return None
        summary = () if row["summary"] is None else (event_from_row(row["summary"]),)
        return _session(key, row, summary)

    async def append_event(self, session: Session, event: Event) -> bool:
        args = self._append_args(session, event)  # fails early: partial event, bad JSON
        key = (session.app_name, session.user_id, session.session_id)
        changes = event.actions.memory_changes
        jobs = event.actions.schedule_changes
        async with db_errors(), self._turns.connection(key) as conn:
            if not (changes or jobs):
                row = await conn.fetchrow(_APPEND, *args)
            else:
                async with conn.transaction():
                    row = await conn.fetchrow(_APPEND, *args)
                    if row["inserted"] and changes:  # a replayed event id changes nothing
                        ctx = ChangeContext(
                            event.id, session.session_id, event.timestamp, self.memory_limit
                        )
                        await memories.apply_changes(
                            conn, session.app_name, session.user_id, changes, ctx
                        )
                    if row["inserted"] and jobs:
                        await schedules.apply_changes(conn, session.app_name, session.user_id, jobs)
        if not row["found"]:
            raise _not_found(session)
        return bool(row["inserted"])

    @staticmethod
    def _append_args(session: Session, event: Event) -> tuple[Any, ...]:
        check_storable(event)
        delta = split_for_sql(event.actions.state_delta)
        app_set, app_del, user_set, user_del = delta[:4]
        return (
            session.app_name,
            session.user_id,
            session.session_id,
            *event_params(event),
            *delta,
            app_set != "{}" or bool(app_del),
            user_set != "{}" or bool(user_del),
            memory_changes_param(event),
        )

    @asynccontextmanager
    async def session_lock(
        self, app_name: str, user_id: str, session_id: str
    ) -> AsyncIterator[None]:
        # In-process first: waiters in this process queue on an asyncio lock, not on pool
        # connections, so one busy session cannot tie up the lock pool.
        key = (app_name, user_id, session_id)
        async with (
            self._local_locks.hold(key),
            self._advisory_lock(key) as conn,
            self._turns.bind(key, conn),  # the turn's own statements run on `conn`
        ):
            yield

    @asynccontextmanager
    async def _advisory_lock(self, key: tuple[str, str, str]) -> AsyncIterator[asyncpg.Connection]:
        async with db_errors():
            conn = await self._lock_pool.acquire(timeout=self._settings.lock_wait)
        try:
            async with db_errors():
                # lock_timeout (set on this pool's connections) bounds the wait -> StoreBusy.
                await conn.execute("SELECT pg_advisory_lock($1)", lock_key(*key))
            yield conn
        finally:
            # Releasing to the pool runs `SELECT pg_advisory_unlock_all()` (asyncpg's reset), and
            # terminates the connection if that fails - which also drops the lock server-side.
            # It is shielded from cancellation, so the lock never outlives the turn.
            await self._lock_pool.release(conn)
