"""The inbox of the SQLite store: every incoming platform message recorded once, keyed by
(platform, message_id), until it is answered. Run on a connection's thread."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from storage.types import InboxItem, InboxStatus


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


def inbox_status(db: sqlite3.Connection, platform: str, message_id: str) -> InboxStatus | None:
    row = db.execute(
        "SELECT done_at FROM inbox WHERE platform = ? AND message_id = ?", (platform, message_id)
    ).fetchone()
    if row is None:
        return None
    return InboxStatus.DONE if row[0] is not None else InboxStatus.PENDING


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
