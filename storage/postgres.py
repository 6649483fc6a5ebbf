"""PostgreSQL backend of the session store (asyncpg, a connection pool).

Same protocol and semantics as the SQLite backend; what differs is how they are achieved:
- every append is ONE statement (data-modifying CTEs): event, counters and the state delta of
  all three scopes commit together, idempotent by event id, in a single round trip;
- `get_session` is one statement too: merged state plus the last N events through the
  (sid, seq) index, so a turn's cost does not grow with the history;
- `session_lock` serialises writers across processes with a session-level advisory lock held on
  a connection of a separate small pool (so turns holding locks never starve the data pool);
  that connection also runs the turn's own statements (postgres_pool.TurnConnections), after
  an in-process asyncio lock so that waiters in one process do not each hold a connection.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from storage import postgres_bulk
from storage.locks import KeyedLocks
from storage.postgres_bulk import MERGE_APP, MERGE_USER
from storage.postgres_codec import (
    EVENT_COLUMNS,
    dumps_state,
    event_from_row,
    event_params,
    loads_state,
    split_for_sql,
)
from storage.postgres_ids import IdentityInboxAudit
from storage.postgres_links import Links
from storage.postgres_pool import (
    PoolSettings,
    TurnConnections,
    create_pools,
    db_errors,
    split_url,
)
from storage.postgres_schema import migrate
from storage.postgres_views import AdminAndPrivacy
from storage.types import Event, Session, SessionNotFound, StoreBusy, new_id, split_delta

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

# $1-$3 session key; $4-$14 the event (event_params order); $15-$20 (set, delete) for the app,
# user and session scopes; $21/$22 whether the app/user scopes change at all.
_APPEND = """
WITH s AS (
    SELECT sid FROM sessions WHERE app_name = $1 AND user_id = $2 AND session_id = $3
), ins AS (
    INSERT INTO events (id, sid, invocation_id, author, ts, content, state_delta,
                        transfer_to_agent, prompt_tokens, completion_tokens, final, error)
    SELECT $4, s.sid, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12, $13, $14 FROM s
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


def _check(event: Event) -> None:
    if event.partial:
        raise ValueError("partial (streaming) events are never stored")
    if not event.id:
        raise ValueError("an event needs an id")


def _not_found(session: Session) -> SessionNotFound:
    return SessionNotFound(
        f"no session {session.session_id!r} for user {session.user_id!r}"
        f" in app {session.app_name!r}"
    )


def lock_key(app_name: str, user_id: str, session_id: str) -> int:
    """A signed 64-bit key for pg_advisory_lock, stable across processes and Python runs
    (unlike hash()). A collision only makes two sessions share a lock: slower, never wrong."""
    raw = "\x1f".join((app_name, user_id, session_id)).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)


class PostgresStore(AdminAndPrivacy, IdentityInboxAudit, Links):
    """Implements storage.base.Store on PostgreSQL. Open with `await PostgresStore.open(url)`."""

    def __init__(
        self, pool: asyncpg.Pool, lock_pool: asyncpg.Pool, settings: PoolSettings, salt: str
    ) -> None:
        self._pool = pool
        self._lock_pool = lock_pool
        self._settings = settings
        self._salt = salt.encode()
        self._local_locks = KeyedLocks()
        self._turns = TurnConnections(pool)

    @classmethod
    async def open(cls, url: str, settings: PoolSettings | None = None) -> PostgresStore:
        """Connect, create or upgrade the schema. Pool sizes come from `settings`, overridden
        by the URL's `pool_size`, `lock_connections` and `lock_wait` query parameters."""
        url, settings = split_url(url, settings)
        pool, lock_pool = await create_pools(url, settings)
        try:
            async with db_errors(), pool.acquire() as conn:
                await migrate(conn)
                salt = await conn.fetchval("SELECT value FROM meta WHERE key = 'audit_salt'")
        except BaseException:
            await pool.close()
            await lock_pool.close()
            raise
        return cls(pool, lock_pool, settings, salt)

    @property
    def pool(self) -> asyncpg.Pool:
        """The data pool, for bulk tools in this package (storage.migrate)."""
        return self._pool

    async def close(self) -> None:
        await self._lock_pool.close()
        await self._pool.close()

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- sessions ------------------------------------------------------------------------------
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
        if row is None:
            return None
        state = {
            **loads_state(row["app_state"]),
            **loads_state(row["user_state"]),
            **loads_state(row["state"]),
        }
        return Session(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            state=state,
            events=tuple(event_from_row(item) for item in row["recent"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    async def append_event(self, session: Session, event: Event) -> bool:
        args = self._append_args(session, event)  # fails early: partial event, bad JSON
        key = (session.app_name, session.user_id, session.session_id)
        async with db_errors(), self._turns.connection(key) as conn:
            row = await conn.fetchrow(_APPEND, *args)
        if not row["found"]:
            raise _not_found(session)
        return bool(row["inserted"])

    @staticmethod
    def _append_args(session: Session, event: Event) -> tuple[Any, ...]:
        _check(event)
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
        )

    async def bulk_append(self, session: Session, events: Sequence[Event]) -> int:
        """Append many events in one transaction (imports, benchmarks); returns how many were
        new. Same result as appending them one by one (see storage.postgres_bulk)."""
        for event in events:
            _check(event)  # refuse the whole batch before writing any of it
        async with db_errors(), self._pool.acquire() as conn, conn.transaction():
            try:
                return await postgres_bulk.bulk_append(conn, session, events)
            except LookupError:
                raise _not_found(session) from None

    async def delete_session(self, app_name: str, user_id: str, session_id: str) -> None:
        async with db_errors():
            await self._pool.execute(
                "DELETE FROM sessions WHERE app_name = $1 AND user_id = $2 AND session_id = $3",
                app_name,
                user_id,
                session_id,
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


__all__ = ["PostgresStore", "StoreBusy", "lock_key"]
