"""Memories of the PostgreSQL backend.

Changes run in the append's transaction, under a transaction-scoped advisory lock on the user
(two sessions of one user may append at once, from two workers): read the user's memories, plan
(storage.memory_plan), write. `terms` is a tsvector of owner-keyed hashed terms
(storage.common.memory_terms) with a GIN index; a query is a tsquery of quoted terms we made,
so user text is never syntax. `recall` is one statement.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import asyncpg

from storage.common import memory_terms, recall_terms
from storage.memory_plan import ChangeContext, MemoryPlan, plan_changes, plan_merge
from storage.postgres.pool import db_errors
from storage.types import Memory, MemoryChange

_COLUMNS = "id, text, created_at, updated_at, event_id"
_LIST = f"""
SELECT {_COLUMNS} FROM memories WHERE app_name = $1 AND user_id = $2 ORDER BY created_at, seq
"""
_UPSERT = f"""
INSERT INTO memories (app_name, user_id, {_COLUMNS}, terms)
VALUES ($1, $2, $3, $4, $5, $6, $7, array_to_tsvector($8::text[]))
ON CONFLICT (app_name, user_id, id) DO UPDATE SET text = EXCLUDED.text,
    updated_at = EXCLUDED.updated_at, event_id = EXCLUDED.event_id, terms = EXCLUDED.terms
"""
_DELETE = "DELETE FROM memories WHERE app_name = $1 AND user_id = $2 AND id = ANY($3::text[])"
# $3 the tsquery (NULL: nothing to match), $4 how many matches, $5 how many recent others.
# `hits` asks the GIN index alone (MATERIALIZED: the planner may not fold the owner in and pick
# the owner's index instead, which reads every memory of the user); the terms are owner-keyed,
# so the hits are the user's own, the owner check only guards against a hash collision.
_RECALL = f"""
WITH hits AS MATERIALIZED (
    SELECT {_COLUMNS}, seq, app_name, user_id, terms FROM memories WHERE terms @@ $3::tsquery
), rel AS (
    SELECT {_COLUMNS}, seq, ts_rank(terms, $3::tsquery) AS score FROM hits
    WHERE app_name = $1 AND user_id = $2
    ORDER BY score DESC, updated_at DESC, seq DESC LIMIT $4
), rec AS (
    SELECT {_COLUMNS}, seq FROM memories
    WHERE app_name = $1 AND user_id = $2 AND id NOT IN (SELECT id FROM rel)
    ORDER BY updated_at DESC, seq DESC LIMIT $5
)
SELECT {_COLUMNS}, 0 AS part, score, seq FROM rel
UNION ALL SELECT {_COLUMNS}, 1, 0, seq FROM rec
ORDER BY part, score DESC, updated_at DESC, seq DESC
"""


def _user_lock(app: str, user: str) -> int:
    raw = f"memories\x1f{app}\x1f{user}".encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)


def _memory(row: asyncpg.Record) -> Memory:
    return Memory(row[0], row[1], row[2], row[3], row[4])


async def user_memories(conn: asyncpg.Connection, app: str, user: str) -> list[Memory]:
    return [_memory(row) for row in await conn.fetch(_LIST, app, user)]


async def apply_changes(
    conn: asyncpg.Connection,
    app: str,
    user: str,
    changes: Sequence[MemoryChange],
    ctx: ChangeContext,
) -> None:
    """An appended event's memory changes; `conn` is in the append's transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _user_lock(app, user))
    existing = await user_memories(conn, app, user)
    await write_plan(conn, app, user, plan_changes(existing, changes, ctx))


async def merge_user(conn: asyncpg.Connection, source: str, target: str, limit: int) -> None:
    """/link: the source user's memories (of every app) join the target's, in the caller's
    transaction; then the source has none."""
    apps = await conn.fetch("SELECT DISTINCT app_name FROM memories WHERE user_id = $1", source)
    for (app,) in apps:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _user_lock(app, target))
        incoming = await user_memories(conn, app, source)
        await conn.execute("DELETE FROM memories WHERE app_name = $1 AND user_id = $2", app, source)
        existing = await user_memories(conn, app, target)
        await write_plan(conn, app, target, plan_merge(existing, incoming, limit))


async def write_plan(conn: asyncpg.Connection, app: str, user: str, plan: MemoryPlan) -> None:
    if plan.delete:
        await conn.execute(_DELETE, app, user, list(plan.delete))
    if plan.write:
        await conn.executemany(
            _UPSERT,
            [
                (
                    app,
                    user,
                    m.id,
                    m.text,
                    m.created_at,
                    m.updated_at,
                    m.event_id,
                    memory_terms(app, user, m.text),
                )
                for m in plan.write
            ],
        )


def tsquery(app: str, user: str, query: str) -> str | None:
    """The query's terms OR-ed, each quoted (hex: nothing to escape); None when it has none."""
    terms = recall_terms(app, user, query)
    return " | ".join(f"'{term}'" for term in terms) if terms else None


class PostgresMemories:
    """Reading memories, for PostgresStore, which sets the attributes declared here."""

    _pool: asyncpg.Pool

    async def memories(self, app_name: str, user_id: str) -> list[Memory]:
        async with db_errors(), self._pool.acquire() as conn:
            return await user_memories(conn, app_name, user_id)

    async def recall(
        self, app_name: str, user_id: str, query: str, *, relevant: int = 8, recent: int = 4
    ) -> list[Memory]:
        match = tsquery(app_name, user_id, query) if relevant > 0 else None
        async with db_errors(), self._pool.acquire() as conn:
            rows = await conn.fetch(
                _RECALL, app_name, user_id, match, max(relevant, 0), max(recent, 0)
            )
        return [_memory(row) for row in rows]
