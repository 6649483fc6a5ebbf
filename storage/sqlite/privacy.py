"""Privacy operations of the SQLite store: everything about a user exported (in one read
snapshot) or erased (in one write). Run on a connection's thread. The document is
storage.export's; the erase scrubs audit details as storage.common says."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from storage.common import DELETED_USER
from storage.export import ExportedSession, UserRows, export_document
from storage.jobs import add_to_export
from storage.sqlite import schedules
from storage.sqlite.memories import delete_user_memories, user_memories
from storage.sqlite.sessions import (
    NO_LIMIT_PK,
    delete_sessions,
    events_before,
    session_state,
    user_session_pks,
    user_state,
)


def export_user(db: sqlite3.Connection, app: str, user: str) -> dict[str, Any]:
    identities = db.execute(
        "SELECT platform, platform_user_id, display_name, created_at, username FROM identities"
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
    rows = UserRows(
        identities=identities,
        user_state=user_state(db, app, user),
        sessions=[
            ExportedSession(
                session_id=sid,
                created_at=created,
                updated_at=updated,
                state=session_state(db, pk),
                events=events_before(db, pk, NO_LIMIT_PK, 2**62),
            )
            for pk, sid, created, updated in sessions
        ],
        messages=[(p, m, json.loads(payload), at, done) for p, m, payload, at, done in inbox],
        notices=notices,
        memories=user_memories(db, app, user),
    )
    document = export_document(app, user, rows)
    jobs, outbox = schedules.user_jobs(db, app, user), schedules.user_outbox(db, app, user)
    return add_to_export(document, jobs, outbox)


def delete_user(db: sqlite3.Connection, app: str, user: str) -> None:
    """Every row about the user goes; audit details naming the user are scrubbed."""
    delete_sessions(db, user_session_pks(db, app, user))
    db.execute("DELETE FROM user_state WHERE app_name = ? AND user_id = ?", (app, user))
    delete_user_memories(db, app, user)
    db.execute(
        "DELETE FROM notices WHERE (platform, platform_user_id) IN"
        " (SELECT platform, platform_user_id FROM identities WHERE user_id = ?)",
        (user,),
    )
    db.execute("DELETE FROM identities WHERE user_id = ?", (user,))
    db.execute("DELETE FROM link_codes WHERE user_id = ?", (user,))
    db.execute("DELETE FROM inbox WHERE user_id = ?", (user,))
    schedules.delete_user(db, app, user)
    db.execute(
        "UPDATE audit SET detail = replace(detail, ?, ?) WHERE instr(detail, ?) > 0",
        (user, DELETED_USER, user),
    )
