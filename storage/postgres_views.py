"""Admin views (paged, read-only) and the privacy operations of the PostgreSQL backend.

Counts and token sums come from counters kept on the session rows by `append_event`, so no view
scans a whole history; `history` pages by event `seq` through the (sid, seq) index.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from storage.export_format import event_to_dict
from storage.postgres_codec import EVENT_COLUMNS, event_from_row, loads, loads_state
from storage.postgres_pool import db_errors
from storage.types import Event, SessionInfo, Stats, UserInfo


class AdminAndPrivacy:
    _pool: asyncpg.Pool

    async def history(
        self,
        app_name: str,
        user_id: str,
        session_id: str | None = None,
        *,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Event]:
        if limit <= 0:
            return []
        # $1 app, $2 user, $3 session or NULL (all the user's sessions), $4 cursor or NULL.
        # An unknown cursor (not among these sessions) yields NULL: no rows, as in SQLite.
        query = f"""
            WITH mine AS (
                SELECT sid FROM sessions
                WHERE app_name = $1 AND user_id = $2 AND ($3::text IS NULL OR session_id = $3)
            ), cursor AS (
                SELECT CASE WHEN $4::text IS NULL THEN 9223372036854775807
                       ELSE (SELECT min(seq) FROM events
                             WHERE id = $4 AND sid IN (SELECT sid FROM mine))
                       END AS seq
            )
            SELECT * FROM (
                SELECT page.* FROM mine CROSS JOIN LATERAL (
                    -- each session's newest `limit` before the cursor: an index range each
                    SELECT {EVENT_COLUMNS}, e.seq FROM events e
                    WHERE e.sid = mine.sid AND e.seq < (SELECT seq FROM cursor)
                    ORDER BY e.seq DESC LIMIT $5
                ) page
                ORDER BY page.seq DESC LIMIT $5
            ) newest ORDER BY seq
        """
        async with db_errors():
            rows = await self._pool.fetch(query, app_name, user_id, session_id, before, limit)
        return [event_from_row(row) for row in rows]

    async def list_sessions(
        self, app_name: str, user_id: str | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[SessionInfo]:
        where, args = _scope(app_name, user_id)
        query = f"""
            SELECT app_name, user_id, session_id, created_at, updated_at, turns, events
            FROM sessions WHERE {where}
            ORDER BY updated_at DESC, sid DESC LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}
        """
        async with db_errors():
            rows = await self._pool.fetch(query, *args, max(limit, 0), max(offset, 0))
        return [SessionInfo(**dict(row)) for row in rows]

    async def list_users(
        self, app_name: str, *, limit: int = 50, offset: int = 0
    ) -> list[UserInfo]:
        query = """
            SELECT user_id, count(*) AS sessions, sum(turns) AS turns,
                   max(updated_at) AS last_active
            FROM sessions WHERE app_name = $1
            GROUP BY user_id ORDER BY last_active DESC, user_id LIMIT $2 OFFSET $3
        """
        async with db_errors(), self._pool.acquire() as conn:
            rows = await conn.fetch(query, app_name, max(limit, 0), max(offset, 0))
            ids = await conn.fetch(
                """SELECT user_id, platform, platform_user_id, display_name FROM identities
                   WHERE user_id = ANY($1::text[]) ORDER BY created_at DESC, platform""",
                [row["user_id"] for row in rows],
            )
        by_user: dict[str, list[Any]] = {}
        for ident in ids:
            by_user.setdefault(ident["user_id"], []).append(ident)
        users = []
        for row in rows:
            idents = by_user.get(row["user_id"], [])
            names = [i["display_name"] for i in idents if i["display_name"]]
            users.append(
                UserInfo(
                    user_id=row["user_id"],
                    sessions=row["sessions"],
                    turns=int(row["turns"] or 0),
                    last_active=row["last_active"],
                    identities=tuple((i["platform"], i["platform_user_id"]) for i in idents),
                    display_name=names[0] if names else None,  # the newest identity's
                )
            )
        return users

    async def stats(self, app_name: str, user_id: str | None = None) -> Stats:
        where, args = _scope(app_name, user_id)
        async with db_errors(), self._pool.acquire() as conn:
            totals = await conn.fetchrow(
                f"""SELECT count(DISTINCT user_id) AS users, count(*) AS sessions,
                          coalesce(sum(turns), 0) AS turns, coalesce(sum(events), 0) AS events,
                          coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
                          coalesce(sum(completion_tokens), 0) AS completion_tokens
                   FROM sessions WHERE {where}""",
                *args,
            )
            transfers = await conn.fetch(
                f"""SELECT e.transfer_to_agent AS agent, count(*) AS n
                   FROM events e WHERE e.transfer_to_agent IS NOT NULL
                     AND e.sid IN (SELECT sid FROM sessions WHERE {where})
                   GROUP BY e.transfer_to_agent ORDER BY e.transfer_to_agent""",
                *args,
            )
        return Stats(
            users=totals["users"],
            sessions=totals["sessions"],
            turns=int(totals["turns"]),
            events=int(totals["events"]),
            delegations={row["agent"]: row["n"] for row in transfers},
            prompt_tokens=int(totals["prompt_tokens"]),
            completion_tokens=int(totals["completion_tokens"]),
        )

    # -- privacy -------------------------------------------------------------------------------
    async def export_user(self, app_name: str, user_id: str) -> dict[str, Any]:
        """The same document as the SQLite backend's export."""
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
        by_session: dict[int, list[dict[str, Any]]] = {}
        for row in events:
            by_session.setdefault(row["sid"], []).append(event_to_dict(event_from_row(row[1:])))
        return {
            "app_name": app_name,
            "user_id": user_id,
            "exported_at": time.time(),
            "identities": [dict(row) for row in idents],
            "user_state": loads_state(user_state),
            "sessions": [
                {
                    "session_id": row["session_id"],
                    "created_at": row["created_at"],
                    "updated_at": row["updated_at"],
                    "state": loads_state(row["state"]),
                    "events": by_session.get(row["sid"], []),
                }
                for row in sessions
            ],
            "messages": [
                {
                    "platform": row["platform"],
                    "message_id": row["message_id"],
                    "payload": loads(row["payload"]),
                    "received_at": row["received_at"],
                    "answered": row["done_at"] is not None,
                }
                for row in inbox
            ],
            "notices": [dict(row) for row in notices],
        }

    async def delete_user(self, app_name: str, user_id: str) -> None:
        """Every row about the user goes; audit details naming the user are scrubbed."""
        async with db_errors(), self._pool.acquire() as conn, conn.transaction():
            # Events go with their sessions (ON DELETE CASCADE).
            await conn.execute(
                "DELETE FROM sessions WHERE app_name = $1 AND user_id = $2", app_name, user_id
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
            await conn.execute(
                """UPDATE audit SET detail = replace(detail, $1, $2)
                   WHERE strpos(detail, $1) > 0""",
                user_id,
                DELETED_USER,
            )


DELETED_USER = "<deleted user>"


def _scope(app_name: str, user_id: str | None) -> tuple[str, list[Any]]:
    """WHERE clause and arguments for the app's sessions, or one user's. Two statements rather
    than `($2 IS NULL OR user_id = $2)`, whose generic plan could not use the user index."""
    if user_id is None:
        return "app_name = $1", [app_name]
    return "app_name = $1 AND user_id = $2", [app_name, user_id]


_EXPORT_NOTICES = """
SELECT n.platform, n.platform_user_id, n.text, n.created_at FROM notices n
JOIN identities i USING (platform, platform_user_id) WHERE i.user_id = $1 ORDER BY n.seq
"""
_EXPORT_IDENTITIES = """
SELECT platform, platform_user_id, display_name, created_at FROM identities
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
