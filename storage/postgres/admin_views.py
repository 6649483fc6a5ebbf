"""Admin views (paged, read-only) of the PostgreSQL backend.

Counts and token sums come from counters kept on the session rows by `append_event`, so no view
scans a whole history; `history` pages by event `seq` through the (sid, seq) index.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from storage.postgres.codec import EVENT_COLUMNS, event_from_row
from storage.postgres.pool import db_errors
from storage.types import Event, EventNotFound, SessionInfo, Stats

_HAS_EVENT = """
    SELECT EXISTS (
        SELECT 1 FROM events WHERE id = $4 AND sid IN (
            SELECT sid FROM sessions
            WHERE app_name = $1 AND user_id = $2 AND ($3::text IS NULL OR session_id = $3)))
"""


class PostgresAdminViews:
    """Admin views of PostgresStore, which sets the attributes declared here."""

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
        # An unknown cursor (not among these sessions) yields NULL: no rows, told apart below.
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
            # Only an empty page asks again: was nothing older, or no such event?
            if not rows and before is not None:
                known = await self._pool.fetchval(_HAS_EVENT, app_name, user_id, session_id, before)
                if not known:
                    raise EventNotFound(before)
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

    async def turns_per_day(self, app_name: str, since: float) -> list[tuple[int, int]]:
        async with db_errors():
            rows = await self._pool.fetch(
                """SELECT floor(e.ts / 86400)::bigint AS day, count(*) AS n FROM events e
                   JOIN sessions s ON s.sid = e.sid
                   WHERE e.author = 'user' AND e.ts >= $1 AND s.app_name = $2
                   GROUP BY day ORDER BY day""",
                since,
                app_name,
            )
        return [(int(row["day"]), int(row["n"])) for row in rows]


def _scope(app_name: str, user_id: str | None) -> tuple[str, list[Any]]:
    """WHERE clause and arguments for the app's sessions, or one user's. Two statements rather
    than `($2 IS NULL OR user_id = $2)`, whose generic plan could not use the user index."""
    if user_id is None:
        return "app_name = $1", [app_name]
    return "app_name = $1 AND user_id = $2", [app_name, user_id]
