"""Memories of the SQLite backend: statements run on a connection's own thread, inside the
caller's transaction (the append's savepoint, a read snapshot), like storage.sqlite.sessions.

`memory_terms` (FTS5, rowid = memories.pk) holds each memory's owner-keyed hashed terms
(storage.common.memory_terms); a query is only ever a disjunction of quoted terms we made.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from storage.common import memory_terms, recall_terms
from storage.memory_plan import ChangeContext, MemoryPlan, plan_changes, plan_merge
from storage.types import Memory, MemoryChange

_COLUMNS = "id, text, created_at, updated_at, event_id"
_UPSERT = (
    f"INSERT INTO memories (app_name, user_id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (app_name, user_id, id) DO UPDATE SET text = excluded.text,"
    " updated_at = excluded.updated_at, event_id = excluded.event_id RETURNING pk"
)
# Ranked matches of the user's own terms; the owner check only guards against a hash collision.
_RELEVANT = (
    "SELECT m.id, m.text, m.created_at, m.updated_at, m.event_id"
    " FROM memory_terms JOIN memories m ON m.pk = memory_terms.rowid"
    " WHERE memory_terms MATCH ? AND m.app_name = ? AND m.user_id = ?"
    " ORDER BY bm25(memory_terms), m.updated_at DESC, m.pk DESC LIMIT ?"
)
_RECENT = (
    f"SELECT {_COLUMNS} FROM memories WHERE app_name = ? AND user_id = ?"
    " ORDER BY updated_at DESC, pk DESC LIMIT ?"
)


def user_memories(db: sqlite3.Connection, app: str, user: str) -> list[Memory]:
    """All of a user's memories, oldest first."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM memories WHERE app_name = ? AND user_id = ?"
        " ORDER BY created_at, pk",
        (app, user),
    )
    return [Memory(*row) for row in rows]


def apply_changes(
    db: sqlite3.Connection,
    app: str,
    user: str,
    changes: Sequence[MemoryChange],
    ctx: ChangeContext,
) -> None:
    """An appended event's memory changes, in its transaction."""
    write_plan(db, app, user, plan_changes(user_memories(db, app, user), changes, ctx))


def merge_user(db: sqlite3.Connection, source: str, target: str, limit: int) -> None:
    """/link: the source user's memories (of every app) join the target's, near-duplicates
    folded and the limit kept; then the source has none."""
    apps = db.execute("SELECT DISTINCT app_name FROM memories WHERE user_id = ?", (source,))
    for (app,) in apps.fetchall():
        incoming = user_memories(db, app, source)
        delete_user_memories(db, app, source)
        existing = user_memories(db, app, target)
        write_plan(db, app, target, plan_merge(existing, incoming, limit))


def write_plan(db: sqlite3.Connection, app: str, user: str, plan: MemoryPlan) -> None:
    for mid in plan.delete:
        row = db.execute(
            "DELETE FROM memories WHERE app_name = ? AND user_id = ? AND id = ? RETURNING pk",
            (app, user, mid),
        ).fetchone()
        if row is not None:
            db.execute("DELETE FROM memory_terms WHERE rowid = ?", (row[0],))
    for memory in plan.write:
        pk = db.execute(
            _UPSERT,
            (
                app,
                user,
                memory.id,
                memory.text,
                memory.created_at,
                memory.updated_at,
                memory.event_id,
            ),
        ).fetchone()[0]
        db.execute("DELETE FROM memory_terms WHERE rowid = ?", (pk,))
        terms = " ".join(memory_terms(app, user, memory.text))
        db.execute("INSERT INTO memory_terms (rowid, terms) VALUES (?, ?)", (pk, terms))
    if plan.write:
        merge_index(db)


def merge_index(db: sqlite3.Connection) -> None:
    """A little of FTS5's incremental merge after each write: every segment of the index is
    probed for every query term, and left to its automerge a store written in many small
    transactions keeps ~16 of them (0.47 ms a recall at 1M memories); this keeps ~6 (0.27 ms),
    for at most 16 pages of merge work per write (bench/memory_search.py)."""
    db.execute("INSERT INTO memory_terms (memory_terms, rank) VALUES ('merge', 16)")


def delete_user_memories(db: sqlite3.Connection, app: str, user: str) -> None:
    db.execute(
        "DELETE FROM memory_terms WHERE rowid IN"
        " (SELECT pk FROM memories WHERE app_name = ? AND user_id = ?)",
        (app, user),
    )
    db.execute("DELETE FROM memories WHERE app_name = ? AND user_id = ?", (app, user))


def recall(
    db: sqlite3.Connection, app: str, user: str, query: str, relevant: int, recent: int
) -> list[Memory]:
    """Best matches of the query's words, then the most recently updated others."""
    found: list[Memory] = []
    terms = recall_terms(app, user, query)
    if terms and relevant > 0:
        match = " OR ".join(f'"{term}"' for term in terms)  # hex: nothing to escape
        rows = db.execute(_RELEVANT, (match, app, user, relevant))
        found = [Memory(*row) for row in rows]
    if recent > 0:
        seen = {memory.id for memory in found}
        rows = db.execute(_RECENT, (app, user, recent + len(found)))
        found += [m for m in (Memory(*row) for row in rows) if m.id not in seen][:recent]
    return found
