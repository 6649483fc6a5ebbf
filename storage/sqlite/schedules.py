"""Jobs and the outbox of the SQLite store (docs/architecture.md, "Proactive messages").

The statements run on the writer's thread (changes, claims, outbox marks) or a reader's (the
reads). A claim is exactly-once because the single writer runs it: the compare-and-set on the
job's `version` and the outbox row commit together, so no two claims of one job both hold.
`SqliteSchedules` is the `ScheduleStore` part of SqliteStore.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from storage.jobs import (
    JOB_COLUMNS,
    JOB_DEFINITION,
    OUTBOX_COLUMNS,
    job_from_row,
    job_values,
    outbox_from_row,
    outbox_values,
)
from storage.types import Claim, Job, OutboxItem, ScheduleChange

T = TypeVar("T")
_ADD = (
    f"INSERT INTO jobs (app_name, {JOB_DEFINITION}) VALUES (?{', ?' * 14})"
    " ON CONFLICT (app_name, id) DO NOTHING"
)
# The next alert poll's time, per app, in `meta`: the worker that moves it on polls.
POLL_KEY = "alert_poll:"
_CLAIM_POLL = (
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
    " SET value = excluded.value WHERE CAST(meta.value AS REAL) <= ? RETURNING value"
)
_OUTBOX = (
    f"INSERT INTO outbox (app_name, {OUTBOX_COLUMNS}) VALUES (?{', ?' * 9})"
    " ON CONFLICT (app_name, id) DO NOTHING"
)


def apply_changes(
    db: sqlite3.Connection, app: str, user: str, changes: Sequence[ScheduleChange]
) -> None:
    """An event's schedule changes, inside its append (the caller's transaction)."""
    for change in changes:
        if change.job is not None:
            db.execute(_ADD, (app, *job_values(change.job, user)))
        else:
            db.execute(
                "DELETE FROM jobs WHERE app_name = ? AND user_id = ? AND id = ?",
                (app, user, change.job_id),
            )


def user_jobs(db: sqlite3.Connection, app: str, user: str) -> list[Job]:
    rows = db.execute(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE app_name = ? AND user_id = ?"
        " ORDER BY created_at, id",
        (app, user),
    ).fetchall()
    return [job_from_row(row) for row in rows]


def due_jobs(db: sqlite3.Connection, app: str, now: float, limit: int) -> list[Job]:
    rows = db.execute(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE app_name = ? AND due_at IS NOT NULL"
        " AND due_at <= ? ORDER BY due_at LIMIT ?",
        (app, now, limit),
    ).fetchall()
    return [job_from_row(row) for row in rows]


def alert_symbols(db: sqlite3.Connection, app: str) -> list[str]:
    rows = db.execute(
        "SELECT DISTINCT symbol FROM jobs WHERE app_name = ? AND kind = 'alert' ORDER BY symbol",
        (app,),
    ).fetchall()
    return [row[0] for row in rows]


def alerts_for(db: sqlite3.Connection, app: str, symbols: Sequence[str]) -> list[Job]:
    found: list[Job] = []
    for start in range(0, len(symbols), 500):  # SQLite's bound on variables per statement
        chunk = list(symbols[start : start + 500])
        marks = ", ".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE app_name = ? AND kind = 'alert'"
            f" AND symbol IN ({marks})",
            (app, *chunk),
        ).fetchall()
        found += [job_from_row(row) for row in rows]
    return found


def claim(
    db: sqlite3.Connection, app: str, claims: Sequence[Claim], now: float
) -> list[OutboxItem]:
    """Each claim holds only on the version it read; what holds writes its outbox row (or
    notice) in the same transaction. Returns the outbox rows written."""
    written: list[OutboxItem] = []
    for item in claims:
        if not _take(db, app, item):
            continue
        if item.outbox is not None and item.as_notice:
            db.execute(
                "INSERT INTO notices (platform, platform_user_id, text, created_at)"
                " VALUES (?, ?, ?, ?)",
                (item.outbox.platform, item.outbox.platform_user_id, item.outbox.text, now),
            )
        elif item.outbox is not None and _write_outbox(db, app, item.outbox):
            written.append(item.outbox)
    return written


def _write_outbox(db: sqlite3.Connection, app: str, item: OutboxItem) -> bool:
    return db.execute(_OUTBOX, (app, *outbox_values(item))).rowcount == 1


def _take(db: sqlite3.Connection, app: str, item: Claim) -> bool:
    if item.done:
        sql = "DELETE FROM jobs WHERE app_name = ? AND id = ? AND version = ?"
        return db.execute(sql, (app, item.job_id, item.version)).rowcount == 1
    cur = db.execute(
        "UPDATE jobs SET version = version + 1, due_at = ?, armed = ?, fired_day = ?"
        " WHERE app_name = ? AND id = ? AND version = ?",
        (item.next_due, int(item.armed), item.fired_day, app, item.job_id, item.version),
    )
    return cur.rowcount == 1


def pending_outbox(db: sqlite3.Connection, app: str, now: float, limit: int) -> list[OutboxItem]:
    rows = db.execute(
        f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE app_name = ? AND next_try <= ?"
        " ORDER BY created_at, id LIMIT ?",
        (app, now, limit),
    ).fetchall()
    return [outbox_from_row(row) for row in rows]


def lease_outbox(
    db: sqlite3.Connection,
    app: str,
    now: float,
    until: float,
    limit: int,
    platforms: Sequence[str],
) -> list[OutboxItem]:
    marks = ", ".join("?" * len(platforms))
    rows = db.execute(
        f"UPDATE outbox SET next_try = ? WHERE app_name = ? AND id IN (SELECT id FROM outbox"
        f" WHERE app_name = ? AND next_try <= ? AND platform IN ({marks})"
        " ORDER BY created_at, id LIMIT ?)"
        f" RETURNING {OUTBOX_COLUMNS}",
        (until, app, app, now, *platforms, limit),
    ).fetchall()
    return sorted((outbox_from_row(row) for row in rows), key=lambda o: (o.created_at, o.id))


def outbox_sent(db: sqlite3.Connection, app: str, outbox_id: str) -> None:
    db.execute("DELETE FROM outbox WHERE app_name = ? AND id = ?", (app, outbox_id))


def outbox_later(db: sqlite3.Connection, app: str, outbox_id: str, next_try: float) -> None:
    db.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_try = ? WHERE app_name = ? AND id = ?",
        (next_try, app, outbox_id),
    )


def outbox_redirect(db: sqlite3.Connection, app: str, item: OutboxItem) -> None:
    """Send it elsewhere (the chat is gone): the user's private chat, or another identity."""
    db.execute(
        "UPDATE outbox SET platform = ?, chat_id = ?, platform_user_id = ?, tried = ?,"
        " next_try = 0 WHERE app_name = ? AND id = ?",
        (item.platform, item.chat_id, item.platform_user_id, "\n".join(item.tried), app, item.id),
    )


def user_outbox(db: sqlite3.Connection, app: str, user: str) -> list[OutboxItem]:
    rows = db.execute(
        f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE app_name = ? AND user_id = ?"
        " ORDER BY created_at, id",
        (app, user),
    ).fetchall()
    return [outbox_from_row(row) for row in rows]


def claim_poll(db: sqlite3.Connection, app: str, now: float, until: float) -> tuple[bool, float]:
    key = f"{POLL_KEY}{app}"
    taken = db.execute(_CLAIM_POLL, (key, repr(until), now)).fetchone()
    if taken is not None:
        return True, until
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return False, float(row[0])


def delay_poll(db: sqlite3.Connection, app: str, until: float) -> None:
    db.execute("UPDATE meta SET value = ? WHERE key = ?", (repr(until), f"{POLL_KEY}{app}"))


def user_state(db: sqlite3.Connection, app: str, user: str) -> dict[str, Any]:
    rows = db.execute(
        "SELECT key, value FROM user_state WHERE app_name = ? AND user_id = ?", (app, user)
    ).fetchall()
    return {key: json.loads(value) for key, value in rows}


def delete_user(db: sqlite3.Connection, app: str, user: str) -> None:
    """Part of the erase (storage/sqlite/privacy.py): the user's jobs and unsent messages."""
    db.execute("DELETE FROM jobs WHERE app_name = ? AND user_id = ?", (app, user))
    db.execute("DELETE FROM outbox WHERE app_name = ? AND user_id = ?", (app, user))


def merge_user(db: sqlite3.Connection, old: str, target: str) -> None:
    """Part of a /link merge (storage/sqlite/links.py): jobs and unsent messages move along."""
    db.execute("UPDATE jobs SET user_id = ? WHERE user_id = ?", (target, old))
    db.execute("UPDATE outbox SET user_id = ? WHERE user_id = ?", (target, old))


class SqliteSchedules:
    """The ScheduleStore methods of SqliteStore (which provides `_read` and `_write`)."""

    _read: Callable[..., Awaitable[Any]]
    _write: Callable[..., Awaitable[Any]]

    async def jobs(self, app_name: str, user_id: str) -> list[Job]:
        return await self._read(partial(user_jobs, app=app_name, user=user_id))

    async def due_jobs(self, app_name: str, now: float, limit: int = 500) -> list[Job]:
        return await self._read(partial(due_jobs, app=app_name, now=now, limit=limit))

    async def alert_symbols(self, app_name: str) -> list[str]:
        return await self._read(partial(alert_symbols, app=app_name))

    async def alerts_for(self, app_name: str, symbols: Sequence[str]) -> list[Job]:
        return await self._read(partial(alerts_for, app=app_name, symbols=list(symbols)))

    async def claim(self, app_name: str, claims: Sequence[Claim]) -> list[OutboxItem]:
        if not claims:
            return []
        fn = partial(claim, app=app_name, claims=list(claims), now=time.time())
        return await self._write(fn)

    async def pending_outbox(self, app_name: str, now: float, limit: int = 500) -> list[OutboxItem]:
        return await self._read(partial(pending_outbox, app=app_name, now=now, limit=limit))

    async def lease_outbox(
        self,
        app_name: str,
        now: float,
        until: float,
        platforms: Sequence[str],
        limit: int = 500,
    ) -> list[OutboxItem]:
        if not platforms:
            return []
        fn = partial(
            lease_outbox, app=app_name, now=now, until=until, limit=limit, platforms=platforms
        )
        return await self._write(fn)

    async def outbox_sent(self, app_name: str, outbox_id: str) -> None:
        await self._write(partial(outbox_sent, app=app_name, outbox_id=outbox_id))

    async def outbox_later(self, app_name: str, outbox_id: str, next_try: float) -> None:
        await self._write(
            partial(outbox_later, app=app_name, outbox_id=outbox_id, next_try=next_try)
        )

    async def outbox_redirect(self, app_name: str, item: OutboxItem) -> None:
        await self._write(partial(outbox_redirect, app=app_name, item=item))

    async def claim_poll(self, app_name: str, now: float, until: float) -> tuple[bool, float]:
        return await self._write(partial(claim_poll, app=app_name, now=now, until=until))

    async def delay_poll(self, app_name: str, until: float) -> None:
        await self._write(partial(delay_poll, app=app_name, until=until))

    async def user_state(self, app_name: str, user_id: str) -> dict[str, Any]:
        """The user's `user:` state (the digest reads the watchlist and time zone)."""
        return await self._read(partial(user_state, app=app_name, user=user_id))
