"""Identities, inbox and audit log of the SQLite store (run on a connection's thread; /link:
sqlite_links).

Identities and the inbox are not per app: a platform account is one person whatever the app.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from typing import Any

from storage.types import InboxItem, InboxStatus


def new_user_id() -> str:
    return secrets.token_hex(6)


def find_user(db: sqlite3.Connection, platform: str, puid: str) -> tuple[str, str | None] | None:
    row = db.execute(
        "SELECT user_id, display_name FROM identities WHERE platform = ? AND platform_user_id = ?",
        (platform, puid),
    ).fetchone()
    return None if row is None else (row[0], row[1])


def resolve_user(
    db: sqlite3.Connection, platform: str, puid: str, display_name: str | None, now: float
) -> str:
    row = db.execute(
        "INSERT INTO identities (platform, platform_user_id, user_id, display_name, created_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (platform, platform_user_id) DO UPDATE"
        " SET display_name = coalesce(excluded.display_name, identities.display_name)"
        " RETURNING user_id",
        (platform, puid, new_user_id(), display_name, now),
    ).fetchone()
    return row[0]


def inbox_put(
    db: sqlite3.Connection,
    platform: str,
    message_id: str,
    payload: str,
    user_id: str | None,
    now: float,
) -> InboxStatus:
    cur = db.execute(
        "INSERT INTO inbox (platform, message_id, user_id, payload, received_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (platform, message_id) DO NOTHING",
        (platform, message_id, user_id, payload, now),
    )
    if cur.rowcount == 1:
        return InboxStatus.NEW
    row = db.execute(
        "SELECT done_at FROM inbox WHERE platform = ? AND message_id = ?", (platform, message_id)
    ).fetchone()
    return InboxStatus.DONE if row[0] is not None else InboxStatus.PENDING


def inbox_done(db: sqlite3.Connection, platform: str, message_id: str, now: float) -> None:
    # The payload only serves a replay; once answered the row just dedupes, and keeping the text
    # would keep e.g. an admin's "/forget <user>" after that user is erased.
    db.execute(
        "UPDATE inbox SET done_at = ?, payload = '{}'"
        " WHERE platform = ? AND message_id = ? AND done_at IS NULL",
        (now, platform, message_id),
    )


# Round-robin over users: each row's rank among its user's unanswered rows (oldest first), then
# rows by rank, so every user's oldest comes before anyone's second. Rows without a user (group
# chatter recorded before it was read) form one group of their own.
_PENDING = """
SELECT platform, message_id, payload, received_at FROM (
    SELECT platform, message_id, payload, received_at, rowid AS r,
           row_number() OVER (PARTITION BY user_id ORDER BY received_at, rowid) AS turn
    FROM inbox WHERE done_at IS NULL{only}
) ORDER BY turn, received_at, r LIMIT ?
"""


def inbox_pending(
    db: sqlite3.Connection, platform: str | None, limit: int | None
) -> list[InboxItem]:
    only = "" if platform is None else " AND platform = ?"
    args: tuple[Any, ...] = () if platform is None else (platform,)
    cap = -1 if limit is None else max(limit, 0)  # LIMIT -1: no limit
    rows = db.execute(_PENDING.format(only=only), (*args, cap)).fetchall()
    return [InboxItem(p, m, json.loads(payload), received) for p, m, payload, received in rows]


def inbox_earlier_pending(
    db: sqlite3.Connection, platform: str, message_id: str, user_id: str, since: float | None
) -> bool:
    # Only unanswered rows are looked at (the inbox_pending partial index): in-flight messages.
    row = db.execute(
        "SELECT EXISTS (SELECT 1 FROM inbox o JOIN inbox m"
        " ON m.platform = ? AND m.message_id = ?"
        " WHERE o.done_at IS NULL AND o.platform = m.platform AND o.user_id = ?"
        " AND (o.received_at, o.rowid) < (m.received_at, m.rowid)"
        " AND (? IS NULL OR o.received_at >= ?))",
        (platform, message_id, user_id, since, since),
    ).fetchone()
    return bool(row[0])


def prune_inbox(db: sqlite3.Connection, done_before: float) -> None:
    db.execute("DELETE FROM inbox WHERE done_at IS NOT NULL AND done_at < ?", (done_before,))


def audit(db: sqlite3.Connection, actor_hash: str, command: str, detail: str, now: float) -> None:
    db.execute(
        "INSERT INTO audit (at, actor, command, detail) VALUES (?, ?, ?, ?)",
        (now, actor_hash, command, detail),
    )


def audit_entries(db: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT at, actor, command, detail FROM audit ORDER BY pk DESC LIMIT ?", (max(limit, 0),)
    ).fetchall()
    return [{"at": at, "actor": a, "command": c, "detail": d} for at, a, c, d in rows]


def audit_count(db: sqlite3.Connection, actor_hash: str, command: str, since: float) -> int:
    return db.execute(
        "SELECT count(*) FROM audit WHERE actor = ? AND command = ? AND at >= ?",
        (actor_hash, command, since),
    ).fetchone()[0]


def audit_salt(db: sqlite3.Connection) -> str:
    return db.execute("SELECT value FROM meta WHERE key = 'audit_salt'").fetchone()[0]
