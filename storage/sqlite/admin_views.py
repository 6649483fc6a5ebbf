"""Admin views of the SQLite store (history pages, session list, stats), run on a reader's thread.

Counts come from the per-session counters kept by every append (turns, events, tokens,
delegations), so these views never scan the events table.
"""

from __future__ import annotations

import heapq
import sqlite3
from typing import Any

from storage.sqlite.codec import EVENT_COLUMNS, row_to_event
from storage.sqlite.sessions import NO_LIMIT_PK, events_before, session_pk, user_session_pks
from storage.types import Event, EventNotFound, SessionInfo, Stats


def history(
    db: sqlite3.Connection,
    app: str,
    user: str,
    sid: str | None,
    before: str | None,
    limit: int,
) -> list[Event]:
    """Events older than `before`, newest `limit` of them, oldest first. For all the user's
    sessions, each session contributes its newest `limit` (an index range) and we merge."""
    if sid is None:
        pks = user_session_pks(db, app, user)
    else:
        pk = session_pk(db, app, user, sid)
        pks = [] if pk is None else [pk]
    if limit <= 0:
        return []
    before_pk = NO_LIMIT_PK
    if before is not None:
        marks = ",".join("?" * len(pks))
        row = db.execute(
            f"SELECT pk FROM events WHERE id = ? AND session_pk IN ({marks})", (before, *pks)
        ).fetchone()
        if row is None:
            raise EventNotFound(before)
        before_pk = row[0]
    if not pks:
        return []
    if len(pks) == 1:
        return events_before(db, pks[0], before_pk, limit)
    rows: list[tuple[Any, ...]] = []
    for pk in pks:
        rows.extend(
            db.execute(
                f"SELECT pk, {EVENT_COLUMNS} FROM events WHERE session_pk = ? AND pk < ?"
                " ORDER BY pk DESC LIMIT ?",
                (pk, before_pk, limit),
            ).fetchall()
        )
    newest = heapq.nlargest(limit, rows, key=lambda r: r[0])
    return [row_to_event(r[1:]) for r in reversed(newest)]


def list_sessions(
    db: sqlite3.Connection, app: str, user: str | None, limit: int, offset: int
) -> list[SessionInfo]:
    args = (app,) if user is None else (app, user)
    only_user = "" if user is None else " AND user_id = ?"
    rows = db.execute(
        "SELECT app_name, user_id, session_id, created_at, updated_at, turns, events"
        f" FROM sessions WHERE app_name = ?{only_user}"
        " ORDER BY updated_at DESC, pk DESC LIMIT ? OFFSET ?",
        (*args, max(limit, 0), max(offset, 0)),
    ).fetchall()
    return [SessionInfo(*row) for row in rows]


def turns_per_day(db: sqlite3.Connection, app: str, since: float) -> list[tuple[int, int]]:
    rows = db.execute(
        "SELECT CAST(e.timestamp / 86400 AS INTEGER) AS day, count(*) FROM events e"
        " JOIN sessions s ON s.pk = e.session_pk"
        " WHERE e.author = 'user' AND e.timestamp >= ? AND s.app_name = ?"
        " GROUP BY day ORDER BY day",
        (since, app),
    ).fetchall()
    return [(int(day), int(n)) for day, n in rows]


def stats(db: sqlite3.Connection, app: str, user: str | None) -> Stats:
    args = (app,) if user is None else (app, user)
    only_user = "" if user is None else " AND user_id = ?"
    users, sessions, turns, events, prompt, completion = db.execute(
        "SELECT count(DISTINCT user_id), count(*), coalesce(sum(turns), 0),"
        " coalesce(sum(events), 0), coalesce(sum(prompt_tokens), 0),"
        f" coalesce(sum(completion_tokens), 0) FROM sessions WHERE app_name = ?{only_user}",
        args,
    ).fetchone()
    delegations = db.execute(
        "SELECT agent, sum(n) FROM delegations WHERE session_pk IN"
        f" (SELECT pk FROM sessions WHERE app_name = ?{only_user}) GROUP BY agent ORDER BY agent",
        args,
    ).fetchall()
    return Stats(
        users=users,
        sessions=sessions,
        turns=turns,
        events=events,
        delegations=dict(delegations),
        prompt_tokens=prompt,
        completion_tokens=completion,
    )
