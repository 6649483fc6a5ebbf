"""Filling a store with long histories quickly, for bench/store.py: one transaction per chunk.

Benchmark-only: the store's API appends one event at a time (what a turn does), which would
take minutes for a million events. These statements reach past that API into each backend's
tables and insert fresh filler events (new ids, no state delta, no usage, no transfer) with
the session counters the admin views read; anything else falls back to append_event.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from functools import partial

from storage import Event, Session, Store
from storage.postgres import PostgresStore
from storage.postgres.codec import event_params
from storage.sqlite import SqliteStore
from storage.sqlite.codec import EVENT_COLUMNS, EVENT_PLACEHOLDERS, encode_event

_SQLITE_INSERT = (
    f"INSERT INTO events (session_pk, {EVENT_COLUMNS})"
    f" SELECT pk, {EVENT_PLACEHOLDERS} FROM sessions"
    " WHERE app_name = ? AND user_id = ? AND session_id = ?"
)
_SQLITE_COUNT = (
    "UPDATE sessions SET updated_at = max(updated_at, ?), events = events + ?,"
    " turns = turns + ? WHERE app_name = ? AND user_id = ? AND session_id = ?"
)

# Columns in event_params order, as arrays; unnest keeps their order, so `seq` does too.
_POSTGRES_INSERT = """
INSERT INTO events (sid, id, invocation_id, author, ts, content, state_delta,
                    transfer_to_agent, prompt_tokens, completion_tokens, final, error)
SELECT (SELECT sid FROM sessions WHERE app_name = $1 AND user_id = $2 AND session_id = $3), *
FROM unnest($4::text[], $5::text[], $6::text[], $7::float8[], $8::jsonb[], $9::jsonb[],
            $10::text[], $11::bigint[], $12::bigint[], $13::bool[], $14::text[])
"""
_POSTGRES_COUNT = """
UPDATE sessions SET updated_at = greatest(updated_at, $4::double precision),
                    events = events + $5, turns = turns + $6
WHERE app_name = $1 AND user_id = $2 AND session_id = $3
"""


async def append_fresh(store: Store, session: Session, events: Sequence[Event]) -> None:
    """Append filler `events` (fresh ids, nothing but content) to an existing session."""
    if isinstance(store, SqliteStore):
        await store.writer.submit(partial(_sqlite_chunk, session=session, events=events))
    elif isinstance(store, PostgresStore):
        await _postgres_chunk(store, session, events)
    else:
        for part in range(0, len(events), 100):
            await asyncio.gather(
                *(store.append_event(session, e) for e in events[part : part + 100])
            )


def _key(session: Session) -> tuple[str, str, str]:
    return session.app_name, session.user_id, session.session_id


def _counts(events: Sequence[Event]) -> tuple[float, int, int]:
    """(newest timestamp, events, turns): what the session counters grow by."""
    turns = sum(event.author == "user" for event in events)
    return max(event.timestamp for event in events), len(events), turns


def _sqlite_chunk(db: sqlite3.Connection, session: Session, events: Sequence[Event]) -> None:
    db.executemany(_SQLITE_INSERT, [(*encode_event(e).row, *_key(session)) for e in events])
    db.execute(_SQLITE_COUNT, (*_counts(events), *_key(session)))


async def _postgres_chunk(store: PostgresStore, session: Session, events: Sequence[Event]) -> None:
    rows = [event_params(event) for event in events]
    columns = [[row[i] for row in rows] for i in range(len(rows[0]))]
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute(_POSTGRES_INSERT, *_key(session), *columns)
        await conn.execute(_POSTGRES_COUNT, *_key(session), *_counts(events))
