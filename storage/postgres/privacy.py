"""Privacy operations of the PostgreSQL backend: everything about a user exported (in one
snapshot) or erased (in one transaction). The document is storage.export's; the erase scrubs
audit details as storage.common says."""

from __future__ import annotations

from typing import Any

import asyncpg

from storage.common import DELETED_USER
from storage.export import ExportedSession, UserRows, export_document
from storage.jobs import add_to_export
from storage.postgres import schedules
from storage.postgres.codec import EVENT_COLUMNS, event_from_row, loads, loads_state
from storage.postgres.memories import user_memories
from storage.postgres.pool import db_errors
from storage.types import Event

_EXPORT_NOTICES = """
SELECT n.platform, n.platform_user_id, n.text, n.created_at FROM notices n
JOIN identities i USING (platform, platform_user_id) WHERE i.user_id = $1 ORDER BY n.seq
"""
_EXPORT_IDENTITIES = """
SELECT platform, platform_user_id, display_name, created_at, username FROM identities
WHERE user_id = $1 ORDER BY created_at
"""
_EXPORT_SESSIONS = """
SELECT sid, session_id, created_at, updated_at, state FROM sessions
WHERE app_name = $1 AND user_id = $2 ORDER BY created_at, sid
"""
_EXPORT_EVENTS = f"""
SELECT e.sid, {EVENT_COLUMNS} FROM events e WHERE e.sid = ANY($1::bigint[]) ORDER BY e.seq
"""
_EXPORT_INBOX = """
SELECT platform, message_id, payload, received_at, done_at FROM inbox
WHERE user_id = $1 ORDER BY received_at, seq
"""


class PostgresPrivacy:
    """Export and erase of PostgresStore, which sets the attributes declared here."""

    _pool: asyncpg.Pool

    async def export_user(self, app_name: str, user_id: str) -> dict[str, Any]:
        # One REPEATABLE READ snapshot: the export is consistent even while the user chats.
        async with (
            db_errors(),
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            idents = await conn.fetch(_EXPORT_IDENTITIES, user_id)
            user_state = await conn.fetchval(
                "SELECT state FROM user_state WHERE app_name = $1 AND user_id = $2",
                app_name,
                user_id,
            )
            sessions = await conn.fetch(_EXPORT_SESSIONS, app_name, user_id)
            events = await conn.fetch(_EXPORT_EVENTS, [row["sid"] for row in sessions])
            inbox = await conn.fetch(_EXPORT_INBOX, user_id)
            notices = await conn.fetch(_EXPORT_NOTICES, user_id)
            memories = await user_memories(conn, app_name, user_id)
            jobs = await schedules.user_jobs(conn, app_name, user_id)
            outbox = await schedules.user_outbox(conn, app_name, user_id)
        by_session: dict[int, list[Event]] = {}
        for row in events:
            by_session.setdefault(row["sid"], []).append(event_from_row(row[1:]))
        rows = UserRows(
            identities=[tuple(row) for row in idents],
            user_state=loads_state(user_state),
            sessions=[
                ExportedSession(
                    session_id=row["session_id"],
                    created_at=row["created_at"],
                    updated_at=row["updated_at"],
                    state=loads_state(row["state"]),
                    events=by_session.get(row["sid"], []),
                )
                for row in sessions
            ],
            messages=[
                (
                    r["platform"],
                    r["message_id"],
                    loads(r["payload"]),
                    r["received_at"],
                    r["done_at"],
                )
                for r in inbox
            ],
            notices=[tuple(row) for row in notices],
            memories=memories,
        )
        return add_to_export(export_document(app_name, user_id, rows), jobs, outbox)

    async def delete_user(self, app_name: str, user_id: str) -> None:
        """Every row about the user goes; audit details naming the user are scrubbed."""
        async with db_errors(), self._pool.acquire() as conn, conn.transaction():
            # Events go with their sessions (ON DELETE CASCADE).
            await conn.execute(
                "DELETE FROM sessions WHERE app_name = $1 AND user_id = $2", app_name, user_id
            )
            await conn.execute(
                "DELETE FROM memories WHERE app_name = $1 AND user_id = $2", app_name, user_id
            )
            await conn.execute(
                "DELETE FROM user_state WHERE app_name = $1 AND user_id = $2", app_name, user_id
            )
            await conn.execute(
                """DELETE FROM notices WHERE (platform, platform_user_id) IN
                   (SELECT platform, platform_user_id FROM identities WHERE user_id = $1)""",
                user_id,
            )
            for table in ("identities", "link_codes", "inbox"):
                await conn.execute(f"DELETE FROM {table} WHERE user_id = $1", user_id)
            await schedules.delete_user(conn, app_name, user_id)
            await conn.execute(
                """UPDATE audit SET detail = replace(detail, $1, $2)
                   WHERE strpos(detail, $1) > 0""",
                user_id,
                DELETED_USER,
            )
