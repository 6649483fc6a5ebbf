"""The audit log of the SQLite store: admin calls under a hashed actor (storage.common.
hash_actor, with the salt kept in the meta table). Run on a connection's thread."""

from __future__ import annotations

import sqlite3


def audit(db: sqlite3.Connection, actor_hash: str, command: str, detail: str, now: float) -> None:
    db.execute(
        "INSERT INTO audit (at, actor, command, detail) VALUES (?, ?, ?, ?)",
        (now, actor_hash, command, detail),
    )


def audit_count(db: sqlite3.Connection, actor_hash: str, command: str, since: float) -> int:
    return db.execute(
        "SELECT count(*) FROM audit WHERE actor = ? AND command = ? AND at >= ?",
        (actor_hash, command, since),
    ).fetchone()[0]


def audit_salt(db: sqlite3.Connection) -> str:
    return db.execute("SELECT value FROM meta WHERE key = 'audit_salt'").fetchone()[0]
