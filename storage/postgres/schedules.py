"""Jobs and the outbox of the PostgreSQL backend (docs/architecture.md, "Proactive messages").

A claim locks the jobs it fires with `FOR UPDATE SKIP LOCKED` and holds only on the `version`
it read, in one transaction with the outbox rows: of two workers reading the same due job, one
claims it and the other skips it (locked, or changed by the time it gets there).
`PostgresSchedules` is the `ScheduleStore` part of PostgresStore.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from storage.jobs import (
    JOB_COLUMNS,
    JOB_DEFINITION,
    OUTBOX_COLUMNS,
    job_from_row,
    job_values,
    outbox_from_row,
    outbox_values,
)
from storage.postgres.codec import loads_state
from storage.postgres.pool import db_errors
from storage.types import Claim, Job, OutboxItem, ScheduleChange

_ADD = (
    f"INSERT INTO jobs (app_name, {JOB_DEFINITION})"
    f" VALUES ({', '.join(f'${n}' for n in range(1, 16))})"
    " ON CONFLICT (app_name, id) DO NOTHING"
)
# The next alert poll's time, per app, in `meta`: the worker that moves it on polls.
POLL_KEY = "alert_poll:"
_CLAIM_POLL = """INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE
                 SET value = EXCLUDED.value WHERE meta.value::float8 <= $3 RETURNING value"""
_LOCK = """SELECT id, version FROM jobs WHERE app_name = $1 AND id = ANY($2::text[])
           FOR UPDATE SKIP LOCKED"""

# Rows another worker is sending are locked or leased (next_try in the future): skipped.
_LEASE = f"""UPDATE outbox o SET next_try = $3 FROM (
                 SELECT id FROM outbox WHERE app_name = $1 AND next_try <= $2
                 AND platform = ANY($5::text[])
                 ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) t
             WHERE o.app_name = $1 AND o.id = t.id
             RETURNING {", ".join("o." + c.strip() for c in OUTBOX_COLUMNS.split(","))}"""


async def apply_changes(
    conn: asyncpg.Connection, app: str, user: str, changes: Sequence[ScheduleChange]
) -> None:
    """An event's schedule changes, inside its append's transaction."""
    for change in changes:
        if change.job is not None:
            await conn.execute(_ADD, app, *job_values(change.job, user))
        else:
            await conn.execute(
                "DELETE FROM jobs WHERE app_name = $1 AND user_id = $2 AND id = $3",
                app,
                user,
                change.job_id,
            )


async def user_jobs(conn: asyncpg.Connection, app: str, user: str) -> list[Job]:
    rows = await conn.fetch(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE app_name = $1 AND user_id = $2"
        " ORDER BY created_at, id",
        app,
        user,
    )
    return [job_from_row(tuple(row)) for row in rows]


async def user_outbox(conn: asyncpg.Connection, app: str, user: str) -> list[OutboxItem]:
    rows = await conn.fetch(
        f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE app_name = $1 AND user_id = $2"
        " ORDER BY created_at, id",
        app,
        user,
    )
    return [outbox_from_row(tuple(row)) for row in rows]


async def delete_user(conn: asyncpg.Connection, app: str, user: str) -> None:
    """Part of the erase (storage/postgres/privacy.py): jobs and unsent messages."""
    for table in ("jobs", "outbox"):
        await conn.execute(f"DELETE FROM {table} WHERE app_name = $1 AND user_id = $2", app, user)


async def merge_user(conn: asyncpg.Connection, old: str, target: str) -> None:
    """Part of a /link merge (storage/postgres/links.py): jobs and unsent messages move."""
    for table in ("jobs", "outbox"):
        await conn.execute(f"UPDATE {table} SET user_id = $2 WHERE user_id = $1", old, target)


async def _claim(
    conn: asyncpg.Connection, app: str, claims: Sequence[Claim], now: float
) -> list[OutboxItem]:
    """Set-based: one statement per kind of change for the whole batch (a poll may fire
    thousands of alerts; a round trip per claim took seconds)."""
    locked = await conn.fetch(_LOCK, app, [c.job_id for c in claims])
    versions = {row["id"]: row["version"] for row in locked}
    held: list[Claim] = []
    for item in claims:
        if versions.pop(item.job_id, None) == item.version:  # one claim per job and batch
            held.append(item)  # (else another worker holds it or has fired it)
    done = [c.job_id for c in held if c.done]
    kept = [c for c in held if not c.done]
    if done:
        await conn.execute(
            "DELETE FROM jobs WHERE app_name = $1 AND id = ANY($2::text[])", app, done
        )
    if kept:
        await conn.execute(
            _UPDATE,
            app,
            [c.job_id for c in kept],
            [c.next_due for c in kept],
            [c.armed for c in kept],
            [c.fired_day for c in kept],
        )
    notices = [c.outbox for c in held if c.outbox is not None and c.as_notice]
    if notices:
        await conn.executemany(
            "INSERT INTO notices (platform, platform_user_id, text, created_at)"
            " VALUES ($1, $2, $3, $4)",
            [(o.platform, o.platform_user_id, o.text, now) for o in notices],
        )
    outbox = [c.outbox for c in held if c.outbox is not None and not c.as_notice]
    return await _write_outbox(conn, app, outbox) if outbox else []


_UPDATE = """UPDATE jobs j SET version = j.version + 1, due_at = u.due_at, armed = u.armed,
                                fired_day = u.fired_day
             FROM unnest($2::text[], $3::float8[], $4::bool[], $5::text[])
                  AS u(id, due_at, armed, fired_day)
             WHERE j.app_name = $1 AND j.id = u.id"""
_INSERT_OUTBOX = f"""INSERT INTO outbox (app_name, {OUTBOX_COLUMNS})
    SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::text[], $8::float8[], $9::int[], $10::text[])
    ON CONFLICT (app_name, id) DO NOTHING RETURNING id"""


async def _write_outbox(
    conn: asyncpg.Connection, app: str, items: Sequence[OutboxItem]
) -> list[OutboxItem]:
    columns = [list(column) for column in zip(*(outbox_values(o) for o in items), strict=True)]
    written = {row["id"] for row in await conn.fetch(_INSERT_OUTBOX, app, *columns)}
    return [o for o in items if o.id in written]


class PostgresSchedules:
    """The ScheduleStore methods of PostgresStore, which sets the attributes declared here."""

    _pool: asyncpg.Pool

    async def jobs(self, app_name: str, user_id: str) -> list[Job]:
        async with db_errors(), self._pool.acquire() as conn:
            return await user_jobs(conn, app_name, user_id)

    async def due_jobs(self, app_name: str, now: float, limit: int = 500) -> list[Job]:
        async with db_errors(), self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE app_name = $1 AND due_at IS NOT NULL"
                " AND due_at <= $2 ORDER BY due_at LIMIT $3",
                app_name,
                now,
                limit,
            )
        return [job_from_row(tuple(row)) for row in rows]

    async def alert_symbols(self, app_name: str) -> list[str]:
        async with db_errors(), self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT DISTINCT symbol FROM jobs WHERE app_name = $1 AND kind = 'alert'"
                " ORDER BY symbol",
                app_name,
            )
        return [row[0] for row in rows]

    async def alerts_for(self, app_name: str, symbols: Sequence[str]) -> list[Job]:
        async with db_errors(), self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE app_name = $1 AND kind = 'alert'"
                " AND symbol = ANY($2::text[])",
                app_name,
                list(symbols),
            )
        return [job_from_row(tuple(row)) for row in rows]

    async def claim(self, app_name: str, claims: Sequence[Claim]) -> list[OutboxItem]:
        if not claims:
            return []
        async with db_errors(), self._pool.acquire() as conn, conn.transaction():
            return await _claim(conn, app_name, claims, time.time())

    async def pending_outbox(self, app_name: str, now: float, limit: int = 500) -> list[OutboxItem]:
        async with db_errors(), self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE app_name = $1 AND next_try <= $2"
                " ORDER BY created_at, id LIMIT $3",
                app_name,
                now,
                limit,
            )
        return [outbox_from_row(tuple(row)) for row in rows]

    async def lease_outbox(
        self,
        app_name: str,
        now: float,
        until: float,
        platforms: Sequence[str],
        limit: int = 500,
    ) -> list[OutboxItem]:
        async with db_errors(), self._pool.acquire() as conn:
            rows = await conn.fetch(_LEASE, app_name, now, until, limit, list(platforms))
        items = (outbox_from_row(tuple(row)) for row in rows)
        return sorted(items, key=lambda o: (o.created_at, o.id))

    async def outbox_sent(self, app_name: str, outbox_id: str) -> None:
        await self._execute(
            "DELETE FROM outbox WHERE app_name = $1 AND id = $2", app_name, outbox_id
        )

    async def outbox_later(self, app_name: str, outbox_id: str, next_try: float) -> None:
        await self._execute(
            "UPDATE outbox SET attempts = attempts + 1, next_try = $3"
            " WHERE app_name = $1 AND id = $2",
            app_name,
            outbox_id,
            next_try,
        )

    async def outbox_redirect(self, app_name: str, item: OutboxItem) -> None:
        await self._execute(
            "UPDATE outbox SET platform = $3, chat_id = $4, platform_user_id = $5, tried = $6,"
            " next_try = 0 WHERE app_name = $1 AND id = $2",
            app_name,
            item.id,
            item.platform,
            item.chat_id,
            item.platform_user_id,
            "\n".join(item.tried),
        )

    async def claim_poll(self, app_name: str, now: float, until: float) -> tuple[bool, float]:
        key = f"{POLL_KEY}{app_name}"
        async with db_errors(), self._pool.acquire() as conn:
            if await conn.fetchval(_CLAIM_POLL, key, repr(until), now) is not None:
                return True, until
            return False, float(await conn.fetchval("SELECT value FROM meta WHERE key = $1", key))

    async def delay_poll(self, app_name: str, until: float) -> None:
        key = f"{POLL_KEY}{app_name}"
        await self._execute("UPDATE meta SET value = $2 WHERE key = $1", key, repr(until))

    async def user_state(self, app_name: str, user_id: str) -> dict[str, Any]:
        async with db_errors(), self._pool.acquire() as conn:
            state = await conn.fetchval(
                "SELECT state FROM user_state WHERE app_name = $1 AND user_id = $2",
                app_name,
                user_id,
            )
        return loads_state(state)

    async def _execute(self, sql: str, *args: Any) -> None:
        async with db_errors(), self._pool.acquire() as conn:
            await conn.execute(sql, *args)
