"""Identities of the SQLite store: (platform, platform_user_id) -> our user id. Run on a
connection's thread. Identities are not per app: a platform account is one person whatever
the app. Joining and detaching identities: storage.sqlite.links.
"""

from __future__ import annotations

import sqlite3

from storage.common import new_user_id
from storage.types import Identity


def find_user(
    db: sqlite3.Connection, platform: str, puid: str
) -> tuple[str, str | None, str | None] | None:
    """(user id, display name, username) of the identity, or None."""
    row = db.execute(
        "SELECT user_id, display_name, username FROM identities"
        " WHERE platform = ? AND platform_user_id = ?",
        (platform, puid),
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def resolve_user(
    db: sqlite3.Connection,
    platform: str,
    puid: str,
    display_name: str | None,
    username: str | None,
    now: float,
) -> str:
    if username is not None:  # it moved to this account: the old holder no longer has it
        db.execute(
            "UPDATE identities SET username = NULL"
            " WHERE username = ? AND platform = ? AND platform_user_id != ?",
            (username, platform, puid),
        )
    row = db.execute(
        "INSERT INTO identities"
        " (platform, platform_user_id, user_id, display_name, username, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (platform, platform_user_id) DO UPDATE"
        " SET display_name = coalesce(excluded.display_name, identities.display_name),"
        " username = coalesce(excluded.username, identities.username)"
        " RETURNING user_id",
        (platform, puid, new_user_id(), display_name, username, now),
    ).fetchone()
    return row[0]


def find_by_username(db: sqlite3.Connection, username: str) -> list[Identity]:
    rows = db.execute(
        "SELECT platform, platform_user_id, user_id, display_name, username FROM identities"
        " WHERE username = ? ORDER BY platform, platform_user_id",
        (username,),
    ).fetchall()
    return [Identity(*row) for row in rows]
