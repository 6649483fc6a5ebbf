"""Sessions, scoped state and events: statements run on a connection's own thread.

Each function takes the raw sqlite3 connection and runs inside a transaction the caller opened
(a read snapshot, or a SAVEPOINT of a group-commit batch), so it never commits by itself.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from storage.common import DEFAULT_MEMORY_LIMIT
from storage.memory_plan import ChangeContext
from storage.sqlite import memories, schedules
from storage.sqlite.codec import (
    EVENT_COLUMNS,
    EVENT_PLACEHOLDERS,
    EncodedDelta,
    EncodedEvent,
    EventCache,
    row_to_event,
)
from storage.types import Event, Session, SessionNotFound

_UPSERT_APP = (
    "INSERT INTO app_state (app_name, key, value) VALUES (?, ?, ?)"
    " ON CONFLICT (app_name, key) DO UPDATE SET value = excluded.value"
)
_UPSERT_USER = (
    "INSERT INTO user_state (app_name, user_id, key, value) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (app_name, user_id, key) DO UPDATE SET value = excluded.value"
)
_UPSERT_SESSION = (
    "INSERT INTO session_state (session_pk, key, value) VALUES (?, ?, ?)"
    " ON CONFLICT (session_pk, key) DO UPDATE SET value = excluded.value"
)
# The hot path finds the session and inserts in one statement (one less round through the
# sqlite3 module per append); no row back means a duplicate id or a missing session.
_INSERT_EVENT_BY_NAME = (
    f"INSERT INTO events (session_pk, {EVENT_COLUMNS})"
    f" SELECT pk, {EVENT_PLACEHOLDERS} FROM sessions"
    " WHERE app_name = ? AND user_id = ? AND session_id = ?"
    " ON CONFLICT (session_pk, id) DO NOTHING RETURNING session_pk"
)
_BUMP_SESSION = (
    "UPDATE sessions SET updated_at = max(updated_at, ?), events = events + ?,"
    " turns = turns + ?, prompt_tokens = prompt_tokens + ?,"
    " completion_tokens = completion_tokens + ? WHERE pk = ?"
)
_COUNT_DELEGATION = (
    "INSERT INTO delegations (session_pk, agent, n) VALUES (?, ?, ?)"
    " ON CONFLICT (session_pk, agent) DO UPDATE SET n = n + excluded.n"
)
NO_LIMIT_PK = 2**63 - 1


def session_pk(db: sqlite3.Connection, app: str, user: str, sid: str) -> int | None:
    row = db.execute(
        "SELECT pk FROM sessions WHERE app_name = ? AND user_id = ? AND session_id = ?",
        (app, user, sid),
    ).fetchone()
    return None if row is None else row[0]


def user_session_pks(db: sqlite3.Connection, app: str, user: str) -> list[int]:
    rows = db.execute("SELECT pk FROM sessions WHERE app_name = ? AND user_id = ?", (app, user))
    return [row[0] for row in rows]


def load_state(db: sqlite3.Connection, app: str, user: str, pk: int) -> dict[str, Any]:
    """The merged view: app + user + session scopes (their keys never collide: prefixes)."""
    rows = db.execute(
        "SELECT key, value FROM app_state WHERE app_name = ?"
        " UNION ALL SELECT key, value FROM user_state WHERE app_name = ? AND user_id = ?"
        " UNION ALL SELECT key, value FROM session_state WHERE session_pk = ?",
        (app, app, user, pk),
    ).fetchall()
    return {key: json.loads(value) for key, value in rows}


def session_state(db: sqlite3.Connection, pk: int) -> dict[str, Any]:
    rows = db.execute("SELECT key, value FROM session_state WHERE session_pk = ?", (pk,))
    return {key: json.loads(value) for key, value in rows}


def user_state(db: sqlite3.Connection, app: str, user: str) -> dict[str, Any]:
    rows = db.execute(
        "SELECT key, value FROM user_state WHERE app_name = ? AND user_id = ?", (app, user)
    )
    return {key: json.loads(value) for key, value in rows}


def events_before(
    db: sqlite3.Connection,
    pk: int,
    before_pk: int,
    limit: int,
    cache: EventCache | None = None,
    *,
    after_pk: int = 0,
) -> list[Event]:
    """Up to `limit` events of one session older than `before_pk` (and newer than `after_pk`),
    the newest of them, oldest first. Only the per-turn load passes a cache: a long export or
    history page would just flush it."""
    if limit <= 0:
        return []
    rows = db.execute(
        f"SELECT pk, {EVENT_COLUMNS} FROM events WHERE session_pk = ? AND pk < ? AND pk > ?"
        " ORDER BY pk DESC LIMIT ?",
        (pk, before_pk, after_pk, limit),
    ).fetchall()
    if cache is None:
        return [row_to_event(row[1:]) for row in reversed(rows)]
    return [cache.decode(row[0], row[1:]) for row in reversed(rows)]


def load_session(
    db: sqlite3.Connection, app: str, user: str, sid: str, recent: int
) -> Session | None:
    return _load(db, app, user, sid, partial(_recent, cap=recent))


def load_context(db: sqlite3.Connection, app: str, user: str, sid: str, cap: int) -> Session | None:
    """The session as a turn loads it: its latest summary event (found through the partial
    index events_summaries) and at most `cap` of the events after it (the newest), oldest
    first; without a summary, the last `cap` events."""
    return _load(db, app, user, sid, partial(_since_summary, cap=cap))


def _load(
    db: sqlite3.Connection,
    app: str,
    user: str,
    sid: str,
    events: Callable[[sqlite3.Connection, int], list[Event]],
) -> Session | None:
    row = db.execute(
        "SELECT pk, created_at, updated_at FROM sessions"
        " WHERE app_name = ? AND user_id = ? AND session_id = ?",
        (app, user, sid),
    ).fetchone()
    if row is None:
        return None
    pk, created_at, updated_at = row
    return Session(
        app_name=app,
        user_id=user,
        session_id=sid,
        state=load_state(db, app, user, pk),
        events=tuple(events(db, pk)),
        created_at=created_at,
        updated_at=updated_at,
    )


def _recent(db: sqlite3.Connection, pk: int, cap: int) -> list[Event]:
    return events_before(db, pk, NO_LIMIT_PK, cap, getattr(db, "event_cache", None))


def _since_summary(db: sqlite3.Connection, pk: int, cap: int) -> list[Event]:
    summary = db.execute(
        f"SELECT pk, {EVENT_COLUMNS} FROM events WHERE session_pk = ? AND author = 'summary'"
        " ORDER BY pk DESC LIMIT 1",
        (pk,),
    ).fetchone()
    if summary is None:
        return _recent(db, pk, cap)
    cache = getattr(db, "event_cache", None)
    after = events_before(db, pk, NO_LIMIT_PK, cap, cache, after_pk=summary[0])
    return [row_to_event(summary[1:]), *after]


def apply_delta(db: sqlite3.Connection, app: str, user: str, pk: int, delta: EncodedDelta) -> None:
    """Upsert each key into its scope's table; a None value deletes the key."""
    for key, value in delta.app:
        if value is None:
            db.execute("DELETE FROM app_state WHERE app_name = ? AND key = ?", (app, key))
        else:
            db.execute(_UPSERT_APP, (app, key, value))
    for key, value in delta.user:
        if value is None:
            db.execute(
                "DELETE FROM user_state WHERE app_name = ? AND user_id = ? AND key = ?",
                (app, user, key),
            )
        else:
            db.execute(_UPSERT_USER, (app, user, key, value))
    for key, value in delta.session:
        if value is None:
            db.execute("DELETE FROM session_state WHERE session_pk = ? AND key = ?", (pk, key))
        else:
            db.execute(_UPSERT_SESSION, (pk, key, value))


def create_session(
    db: sqlite3.Connection, app: str, user: str, sid: str, delta: EncodedDelta, now: float
) -> Session:
    cur = db.execute(
        "INSERT INTO sessions (app_name, user_id, session_id, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_name, user_id, session_id) DO NOTHING",
        (app, user, sid, now, now),
    )
    if cur.rowcount == 1 and delta:
        apply_delta(db, app, user, cur.lastrowid, delta)  # type: ignore[arg-type]
    session = load_session(db, app, user, sid, 20)
    assert session is not None  # inserted or already there, inside this transaction
    return session


def append_event(
    db: sqlite3.Connection,
    app: str,
    user: str,
    sid: str,
    event: EncodedEvent,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
) -> bool:
    row = db.execute(_INSERT_EVENT_BY_NAME, (*event.row, app, user, sid)).fetchone()
    if row is None:
        if session_pk(db, app, user, sid) is None:
            raise SessionNotFound(f"no session {sid!r} for user {user!r} in app {app!r}")
        return False  # this id is stored already: idempotent, nothing else changes
    pk = row[0]
    if event.delta:
        apply_delta(db, app, user, pk, event.delta)
    db.execute(
        _BUMP_SESSION,
        (event.timestamp, 1, int(event.is_turn), event.prompt_tokens, event.completion_tokens, pk),
    )
    if event.transfer_to_agent:
        db.execute(_COUNT_DELEGATION, (pk, event.transfer_to_agent, 1))
    if event.memory_changes:
        ctx = ChangeContext(event.id, sid, event.timestamp, memory_limit)
        memories.apply_changes(db, app, user, event.memory_changes, ctx)
    if event.schedule_changes:
        schedules.apply_changes(db, app, user, event.schedule_changes)
    return True


def delete_sessions(db: sqlite3.Connection, pks: Sequence[int]) -> None:
    for pk in pks:
        db.execute("DELETE FROM events WHERE session_pk = ?", (pk,))
        db.execute("DELETE FROM session_state WHERE session_pk = ?", (pk,))
        db.execute("DELETE FROM delegations WHERE session_pk = ?", (pk,))
        db.execute("DELETE FROM sessions WHERE pk = ?", (pk,))
