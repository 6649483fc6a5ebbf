"""The PostgreSQL side of storage.transfer: idempotent bulk writes, one statement per chunk.

Every function takes a connection inside the copy's transaction. Arrays go through `unnest`,
so a chunk of a thousand rows is one round trip, and rows keep their order (event `seq`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import asyncpg

from storage.common import memory_terms
from storage.jobs import JOB_COLUMNS, OUTBOX_COLUMNS
from storage.postgres.codec import dumps, dumps_state

Conn: TypeAlias = asyncpg.Connection
Row: TypeAlias = tuple[Any, ...]

TABLES = (
    "app_state",
    "user_state",
    "sessions",
    "events",
    "identities",
    "link_codes",
    "inbox",
    "audit",
    "notices",
    "jobs",
    "outbox",
    "memories",
)

_COUNTS = """
SELECT (SELECT count(*) FROM app_state, jsonb_object_keys(state)) AS app_state,
       (SELECT count(*) FROM user_state, jsonb_object_keys(state)) AS user_state,
       (SELECT count(*) FROM sessions) AS sessions,
       (SELECT count(*) FROM events) AS events,
       (SELECT count(*) FROM identities) AS identities,
       (SELECT count(*) FROM link_codes) AS link_codes,
       (SELECT count(*) FROM inbox) AS inbox,
       (SELECT count(*) FROM audit) AS audit,
       (SELECT count(*) FROM notices) AS notices,
       (SELECT count(*) FROM jobs) AS jobs,
       (SELECT count(*) FROM outbox) AS outbox,
       (SELECT count(*) FROM memories) AS memories
"""


async def count_rows(conn: Conn) -> dict[str, int]:
    """Rows per table, counted like the SQLite source (state: one per key)."""
    row = await conn.fetchrow(_COUNTS)
    return {name: int(row[name]) for name in TABLES}


async def adopt_salt(conn: Conn, salt: str) -> None:
    """Audit hashes made with the source's salt stay comparable to new ones - unless this
    database already hashed entries with its own salt, which must then stay."""
    await conn.execute(
        """UPDATE meta SET value = $1 WHERE key = 'audit_salt' AND value <> $1
           AND NOT EXISTS (SELECT 1 FROM audit)""",
        salt,
    )


async def merge_app_states(conn: Conn, groups: Mapping[tuple[str, str], dict[str, Any]]) -> None:
    await conn.executemany(
        """INSERT INTO app_state AS a (app_name, state) VALUES ($1, $2::jsonb)
           ON CONFLICT (app_name) DO UPDATE SET state = a.state || EXCLUDED.state""",
        [(app_name, dumps_state(state)) for (app_name, _), state in groups.items()],
    )


async def merge_user_states(conn: Conn, groups: Mapping[tuple[str, str], dict[str, Any]]) -> None:
    await conn.executemany(
        """INSERT INTO user_state AS u (app_name, user_id, state) VALUES ($1, $2, $3::jsonb)
           ON CONFLICT (app_name, user_id) DO UPDATE SET state = u.state || EXCLUDED.state""",
        [(app, user, dumps_state(state)) for (app, user), state in groups.items()],
    )


async def upsert_sessions(conn: Conn, rows: Sequence[Row]) -> list[int]:
    """rows: (app_name, user_id, session_id, created_at, updated_at, state dict).
    Returns the sids, in the order of `rows`."""
    found = await conn.fetch(
        """INSERT INTO sessions AS s (app_name, user_id, session_id, created_at, updated_at, state)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[],
                                $6::jsonb[])
           ON CONFLICT (app_name, user_id, session_id) DO UPDATE SET
               state = s.state || EXCLUDED.state,
               created_at = least(s.created_at, EXCLUDED.created_at),
               updated_at = greatest(s.updated_at, EXCLUDED.updated_at)
           RETURNING sid, app_name, user_id, session_id""",
        *_columns(rows, 5),
        [dumps_state(row[5]) for row in rows],
    )
    by_key = {(r["app_name"], r["user_id"], r["session_id"]): r["sid"] for r in found}
    return [by_key[row[:3]] for row in rows]


def _content(text: str) -> str:
    # JSON text from SQLite passes through, unless it holds NUL (JSONB cannot).
    return dumps(json.loads(text)) if "\\u0000" in text else text


async def insert_events(conn: Conn, rows: Sequence[Row]) -> None:
    """rows: (sid, id, invocation_id, author, timestamp, content JSON, state_delta JSON or None,
    transfer_to_agent, prompt_tokens, completion_tokens, final, error, memory_changes JSON or
    None), in event order."""
    if not rows:
        return
    fixed = [
        (
            *row[:5],
            _content(row[5]),
            dumps_state(json.loads(row[6])) if row[6] else "{}",
            row[7],
            row[8],
            row[9],
            bool(row[10]),
            row[11],
            None if row[12] is None else _content(row[12]),
        )
        for row in rows
    ]
    await conn.execute(
        """INSERT INTO events (sid, id, invocation_id, author, ts, content, state_delta,
                               transfer_to_agent, prompt_tokens, completion_tokens, final, error,
                               memory_changes)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::float8[],
                                $6::jsonb[], $7::jsonb[], $8::text[], $9::bigint[],
                                $10::bigint[], $11::bool[], $12::text[], $13::jsonb[])
           ON CONFLICT (sid, id) DO NOTHING""",
        *_columns(fixed, 13),
    )


async def recount_sessions(conn: Conn, sids: Sequence[int]) -> None:
    """Session counters from the events stored, whatever was there before the copy."""
    await conn.execute(
        """UPDATE sessions s SET
               events = c.events, turns = c.turns,
               prompt_tokens = c.prompt_tokens, completion_tokens = c.completion_tokens,
               updated_at = greatest(s.updated_at, c.last_ts)
           FROM (SELECT sid, count(*) AS events, count(*) FILTER (WHERE author = 'user') AS turns,
                        coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
                        coalesce(sum(completion_tokens), 0) AS completion_tokens,
                        max(ts) AS last_ts
                 FROM events WHERE sid = ANY($1::bigint[]) GROUP BY sid) c
           WHERE s.sid = c.sid""",
        list(sids),
    )


async def upsert_identities(conn: Conn, rows: Sequence[Row]) -> None:
    """rows: (platform, platform_user_id, user_id, display_name, created_at, username)."""
    await conn.executemany(
        """INSERT INTO identities AS i (platform, platform_user_id, user_id, display_name,
                                        created_at, username)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (platform, platform_user_id) DO UPDATE SET
               user_id = EXCLUDED.user_id,
               display_name = coalesce(EXCLUDED.display_name, i.display_name),
               username = coalesce(EXCLUDED.username, i.username),
               created_at = least(i.created_at, EXCLUDED.created_at)""",
        rows,
    )


async def insert_link_codes(conn: Conn, rows: Sequence[Row]) -> None:
    """rows: (code, user_id, expires_at)."""
    await conn.executemany(
        """INSERT INTO link_codes (code, user_id, expires_at) VALUES ($1, $2, $3)
           ON CONFLICT (code) DO NOTHING""",
        rows,
    )


async def upsert_inbox(conn: Conn, rows: Sequence[Row]) -> None:
    """rows: (platform, message_id, payload JSON, user_id, received_at, done_at). A row answered
    since the last copy takes the source's payload too (emptied when it was answered)."""
    await conn.executemany(
        """INSERT INTO inbox AS b (platform, message_id, payload, user_id, received_at, done_at)
           VALUES ($1, $2, $3::jsonb, $4, $5, $6)
           ON CONFLICT (platform, message_id) DO UPDATE SET
               payload = CASE WHEN b.done_at IS NULL THEN EXCLUDED.payload ELSE b.payload END,
               done_at = coalesce(b.done_at, EXCLUDED.done_at),
               user_id = coalesce(b.user_id, EXCLUDED.user_id)""",
        [(row[0], row[1], _content(row[2]), *row[3:]) for row in rows],
    )


async def insert_audit(conn: Conn, rows: Sequence[Row]) -> None:
    """rows: (at, actor hash, command, detail). Entries have no key of their own: an entry
    equal in all four fields is the same entry (the index on `at` keeps this lookup cheap)."""
    await conn.executemany(
        """INSERT INTO audit (at, actor, command, detail)
           SELECT $1, $2, $3, $4 WHERE NOT EXISTS (
               SELECT 1 FROM audit
               WHERE at = $1 AND actor = $2 AND command = $3 AND detail = $4)""",
        rows,
    )


async def insert_notices(conn: Conn, rows: Sequence[Row]) -> None:
    """rows: (platform, platform_user_id, text, created_at). Like audit entries, a notice equal
    in all four fields is the same notice."""
    await conn.executemany(
        """INSERT INTO notices (platform, platform_user_id, text, created_at)
           SELECT $1, $2, $3, $4 WHERE NOT EXISTS (
               SELECT 1 FROM notices WHERE platform = $1 AND platform_user_id = $2
               AND text = $3 AND created_at = $4)""",
        rows,
    )


async def insert_jobs(conn: Conn, rows: Sequence[Row]) -> None:
    """rows: (app_name, *JOB_COLUMNS); a job already there (same app and id) stays as it is."""
    marks = ", ".join(f"${n}" for n in range(1, 19))
    await conn.executemany(
        f"INSERT INTO jobs (app_name, {JOB_COLUMNS}) VALUES ({marks})"
        " ON CONFLICT (app_name, id) DO NOTHING",
        [(*row[:15], bool(row[15]), *row[16:]) for row in rows],  # armed: 0/1 -> boolean
    )


async def insert_outbox(conn: Conn, rows: Sequence[Row]) -> None:
    """rows: (app_name, *OUTBOX_COLUMNS); an unsent message already there stays as it is."""
    await conn.executemany(
        f"INSERT INTO outbox (app_name, {OUTBOX_COLUMNS})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (app_name, id) DO NOTHING",
        rows,
    )


def _columns(rows: Sequence[Row], width: int) -> list[list[Any]]:
    """Row tuples -> one list per column (the arrays `unnest` takes)."""
    return [[row[i] for row in rows] for i in range(width)]


async def upsert_memories(conn: Conn, rows: Sequence[Row]) -> None:
    """rows: (app_name, user_id, id, text, created_at, updated_at, event_id), oldest first. The
    search terms are made here from the text (storage.common.memory_terms, as on every write);
    a memory already there takes the source's text, like state."""
    await conn.execute(
        """INSERT INTO memories AS m (app_name, user_id, id, text, created_at, updated_at,
                                      event_id, terms)
           SELECT a, u, i, t, c, up, e, array_to_tsvector(string_to_array(k, ' '))
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[],
                       $6::float8[], $7::text[], $8::text[]) AS r(a, u, i, t, c, up, e, k)
           ON CONFLICT (app_name, user_id, id) DO UPDATE SET text = EXCLUDED.text,
               updated_at = EXCLUDED.updated_at, event_id = EXCLUDED.event_id,
               terms = EXCLUDED.terms""",
        *_columns(rows, 7),
        [" ".join(memory_terms(row[0], row[1], row[3])) for row in rows],
    )
