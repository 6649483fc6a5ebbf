"""/link and /unlink of the SQLite store (run on the writer's thread, or a reader's for the
reads): link codes, joining two users, detaching an identity, notices left for identities.
The codes themselves (alphabet, length, normalising) are storage.common's."""

from __future__ import annotations

import sqlite3

from storage.common import DEFAULT_MEMORY_LIMIT, new_link_code, new_user_id, normalize_code
from storage.sqlite import memories, schedules
from storage.sqlite.identities import find_user
from storage.types import Identity, Notice


def create_link_code(db: sqlite3.Connection, user_id: str, expires_at: float, now: float) -> str:
    db.execute("DELETE FROM link_codes WHERE expires_at < ?", (now,))  # housekeeping
    while True:
        code = new_link_code()
        cur = db.execute(
            "INSERT INTO link_codes (code, user_id, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (code) DO NOTHING",
            (code, user_id, expires_at),
        )
        if cur.rowcount == 1:
            return code


def identities(db: sqlite3.Connection, user_id: str) -> list[Identity]:
    rows = db.execute(
        "SELECT platform, platform_user_id, display_name FROM identities WHERE user_id = ?"
        " ORDER BY created_at, platform, platform_user_id",
        (user_id,),
    ).fetchall()
    return [Identity(platform, puid, user_id, name) for platform, puid, name in rows]


def peek_link_code(db: sqlite3.Connection, code: str, now: float) -> str | None:
    row = db.execute(
        "SELECT user_id FROM link_codes WHERE code = ? AND expires_at >= ?",
        (normalize_code(code), now),
    ).fetchone()
    return None if row is None else row[0]


def redeem_link_code(
    db: sqlite3.Connection,
    code: str,
    platform: str,
    puid: str,
    notice: str,
    now: float,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
) -> str | None:
    row = db.execute(
        "DELETE FROM link_codes WHERE code = ? RETURNING user_id, expires_at",
        (normalize_code(code),),
    ).fetchone()
    if row is None or row[1] < now:
        return None  # unknown, used or expired (an expired code is consumed all the same)
    target = row[0]
    found = find_user(db, platform, puid)
    db.execute(
        "INSERT INTO identities (platform, platform_user_id, user_id, display_name, created_at)"
        " VALUES (?, ?, ?, NULL, ?) ON CONFLICT (platform, platform_user_id) DO UPDATE"
        " SET user_id = excluded.user_id",
        (platform, puid, target, now),
    )
    if found is not None and found[0] != target:
        merge_user(db, found[0], target, memory_limit)
    if notice and (found is None or found[0] != target):
        db.execute(
            "INSERT INTO notices (platform, platform_user_id, text, created_at)"
            " SELECT platform, platform_user_id, ?, ? FROM identities WHERE user_id = ?"
            " AND NOT (platform = ? AND platform_user_id = ?) ORDER BY created_at",
            (notice, now, target, platform, puid),
        )
    return target


def merge_user(
    db: sqlite3.Connection, old: str, target: str, memory_limit: int = DEFAULT_MEMORY_LIMIT
) -> None:
    """Fold `old` into `target`: every identity of `old` moves (none is left on an emptied
    user, out of reach of its /forgetme), its `user:` values fill the target's gaps, its
    sessions move (renamed when the target has a session of the same id), its inbox rows and
    link codes follow, its memories join the target's (storage.memory_plan.plan_merge)."""
    db.execute("UPDATE identities SET user_id = ? WHERE user_id = ?", (target, old))
    db.execute(
        "INSERT INTO user_state (app_name, user_id, key, value)"
        " SELECT app_name, ?, key, value FROM user_state WHERE user_id = ?"
        " ON CONFLICT (app_name, user_id, key) DO NOTHING",
        (target, old),
    )
    db.execute("DELETE FROM user_state WHERE user_id = ?", (old,))
    db.execute(
        "UPDATE sessions SET user_id = ? WHERE user_id = ? AND NOT EXISTS (SELECT 1 FROM"
        " sessions t WHERE t.app_name = sessions.app_name AND t.user_id = ?"
        " AND t.session_id = sessions.session_id)",
        (target, old, target),
    )
    db.execute(
        "UPDATE sessions SET user_id = ?, session_id = session_id || '~' || ? WHERE user_id = ?",
        (target, old, old),
    )
    db.execute("UPDATE inbox SET user_id = ? WHERE user_id = ?", (target, old))
    db.execute("UPDATE link_codes SET user_id = ? WHERE user_id = ?", (target, old))
    memories.merge_user(db, old, target, memory_limit)
    schedules.merge_user(db, old, target)


def detach_identity(
    db: sqlite3.Connection,
    app: str,
    platform: str,
    puid: str,
    state: list[tuple[str, str]],
    notice: str,
    now: float,
) -> str | None:
    """Move the identity to a new user holding `state` (encoded key/value pairs)."""
    found = find_user(db, platform, puid)
    if found is None or len(identities(db, found[0])) < 2:
        return None
    user = new_user_id()
    db.execute(
        "UPDATE identities SET user_id = ? WHERE platform = ? AND platform_user_id = ?",
        (user, platform, puid),
    )
    db.executemany(
        "INSERT INTO user_state (app_name, user_id, key, value) VALUES (?, ?, ?, ?)",
        [(app, user, key, value) for key, value in state],
    )
    if notice:
        add_notice(db, platform, puid, notice, now)
    return user


def add_notice(db: sqlite3.Connection, platform: str, puid: str, text: str, now: float) -> None:
    db.execute(
        "INSERT INTO notices (platform, platform_user_id, text, created_at) VALUES (?, ?, ?, ?)",
        (platform, puid, text, now),
    )


def notices(db: sqlite3.Connection, platform: str, puid: str) -> list[Notice]:
    rows = db.execute(
        "SELECT pk, text FROM notices WHERE platform = ? AND platform_user_id = ? ORDER BY pk",
        (platform, puid),
    ).fetchall()
    return [Notice(pk, text) for pk, text in rows]


def drop_notices(db: sqlite3.Connection, platform: str, puid: str, up_to: int) -> None:
    db.execute(
        "DELETE FROM notices WHERE platform = ? AND platform_user_id = ? AND pk <= ?",
        (platform, puid, up_to),
    )
