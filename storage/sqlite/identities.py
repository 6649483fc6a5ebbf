"""Identities of the SQLite store: (platform, platform_user_id) -> our user id. Run on a
connection's thread. Identities are not per app: a platform account is one person whatever
the app. Joining and detaching identities: storage.sqlite.links.
"""

from __future__ import annotations

import sqlite3

from storage.common import new_user_id


def find_user(db: sqlite3.Connection, platform: str, puid: str) -> tuple[str, str | None] | None:
    """(user id, display name) of the identity, or None."""
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
