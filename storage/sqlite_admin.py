"""Admin views and privacy (export, delete) of the SQLite store, run on a connection's thread.

Counts come from the per-session counters kept by every append (turns, events, tokens,
delegations), so these views never scan the events table.
"""

from __future__ import annotations

import heapq
import json
import sqlite3
import time
from typing import Any

from storage.export_format import event_to_dict
from storage.sqlite_codec import EVENT_COLUMNS, row_to_event
from storage.sqlite_ops import (
    NO_LIMIT_PK,
    delete_sessions,
    events_before,
    session_pk,
    session_state,
    user_state,
)
from storage.types import Event, SessionInfo, Stats, UserInfo

DELETED_USER = "<deleted user>"


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
        pks = [r[0] for r in db.execute(_USER_SESSIONS, (app, user))]
    else:
        pk = session_pk(db, app, user, sid)
        pks = [] if pk is None else [pk]
    if not pks or limit <= 0:
        return []
    before_pk = NO_LIMIT_PK
    if before is not None:
        marks = ",".join("?" * len(pks))
        row = db.execute(
            f"SELECT pk FROM events WHERE id = ? AND session_pk IN ({marks})", (before, *pks)
        ).fetchone()
        if row is None:
            return []  # unknown cursor: nothing older can be named
        before_pk = row[0]
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


_USER_SESSIONS = "SELECT pk FROM sessions WHERE app_name = ? AND user_id = ?"


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


def list_users(db: sqlite3.Connection, app: str, limit: int, offset: int) -> list[UserInfo]:
    rows = db.execute(
        "SELECT user_id, count(*), sum(turns), max(updated_at) FROM sessions"
        " WHERE app_name = ? GROUP BY user_id ORDER BY max(updated_at) DESC, user_id"
        " LIMIT ? OFFSET ?",
        (app, max(limit, 0), max(offset, 0)),
    ).fetchall()
    users = []
    for user_id, sessions, turns, last_active in rows:
        identities = db.execute(
            "SELECT platform, platform_user_id, display_name FROM identities"
            " WHERE user_id = ? ORDER BY created_at DESC",
            (user_id,),
        ).fetchall()
        names = [name for _, _, name in identities if name]
        users.append(
            UserInfo(
                user_id=user_id,
                sessions=sessions,
                turns=turns,
                last_active=last_active,
                identities=tuple((platform, puid) for platform, puid, _ in identities),
                display_name=names[0] if names else None,
            )
        )
    return users


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


def export_user(db: sqlite3.Connection, app: str, user: str) -> dict[str, Any]:
    identities = db.execute(
        "SELECT platform, platform_user_id, display_name, created_at FROM identities"
        " WHERE user_id = ? ORDER BY created_at",
        (user,),
    ).fetchall()
    sessions = db.execute(
        "SELECT pk, session_id, created_at, updated_at FROM sessions"
        " WHERE app_name = ? AND user_id = ? ORDER BY created_at, pk",
        (app, user),
    ).fetchall()
    inbox = db.execute(
        "SELECT platform, message_id, payload, received_at, done_at FROM inbox"
        " WHERE user_id = ? ORDER BY received_at",
        (user,),
    ).fetchall()
    notices = db.execute(
        "SELECT n.platform, n.platform_user_id, n.text, n.created_at FROM notices n"
        " JOIN identities i USING (platform, platform_user_id) WHERE i.user_id = ?"
        " ORDER BY n.pk",
        (user,),
    ).fetchall()
    return {
        "app_name": app,
        "user_id": user,
        "exported_at": time.time(),
        "identities": [
            {"platform": p, "platform_user_id": u, "display_name": n, "created_at": c}
            for p, u, n, c in identities
        ],
        "user_state": user_state(db, app, user),
        "sessions": [
            {
                "session_id": sid,
                "created_at": created,
                "updated_at": updated,
                "state": session_state(db, pk),
                "events": [event_to_dict(e) for e in events_before(db, pk, NO_LIMIT_PK, 2**62)],
            }
            for pk, sid, created, updated in sessions
        ],
        "messages": [
            {
                "platform": p,
                "message_id": m,
                "payload": json.loads(payload),
                "received_at": received,
                "answered": done is not None,
            }
            for p, m, payload, received, done in inbox
        ],
        "notices": [
            {"platform": p, "platform_user_id": u, "text": t, "created_at": c}
            for p, u, t, c in notices
        ],
    }


def delete_user(db: sqlite3.Connection, app: str, user: str) -> None:
    """Every row about the user goes; audit details naming the user are scrubbed."""
    delete_sessions(db, [r[0] for r in db.execute(_USER_SESSIONS, (app, user)).fetchall()])
    db.execute("DELETE FROM user_state WHERE app_name = ? AND user_id = ?", (app, user))
    db.execute(
        "DELETE FROM notices WHERE (platform, platform_user_id) IN"
        " (SELECT platform, platform_user_id FROM identities WHERE user_id = ?)",
        (user,),
    )
    db.execute("DELETE FROM identities WHERE user_id = ?", (user,))
    db.execute("DELETE FROM link_codes WHERE user_id = ?", (user,))
    db.execute("DELETE FROM inbox WHERE user_id = ?", (user,))
    db.execute(
        "UPDATE audit SET detail = replace(detail, ?, ?) WHERE instr(detail, ?) > 0",
        (user, DELETED_USER, user),
    )
