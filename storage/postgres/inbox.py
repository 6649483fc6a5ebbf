"""The inbox of the PostgreSQL backend: every incoming platform message recorded once, keyed by
(platform, message_id), until it is answered."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import asyncpg

from storage.postgres.codec import dumps, loads
from storage.postgres.pool import db_errors
from storage.types import InboxItem, InboxStatus

_INBOX_PUT = """
WITH ins AS (
    INSERT INTO inbox (platform, message_id, payload, user_id, received_at)
    VALUES ($1, $2, $3::jsonb, $4, $5)
    ON CONFLICT (platform, message_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS inserted,
       (SELECT done_at FROM inbox WHERE platform = $1 AND message_id = $2) AS done_at
"""

# `seq` orders rows across workers: a row inserted after another one committed has a larger one.
_EARLIER_PENDING = """
SELECT EXISTS (
    SELECT 1 FROM inbox o
    WHERE o.done_at IS NULL AND o.platform = $1 AND o.user_id = $3
      AND o.seq < (SELECT seq FROM inbox WHERE platform = $1 AND message_id = $2)
      AND ($4::double precision IS NULL OR o.received_at >= $4)
)
"""

# Round-robin over users: each row's rank among its user's unanswered rows (oldest first), then
# rows by rank, so every user's oldest comes before anyone's second. Rows without a user (group
# chatter recorded before it was read) form one group of their own.
_PENDING = """
SELECT platform, message_id, payload, received_at FROM (
    SELECT platform, message_id, payload, received_at, seq,
           row_number() OVER (PARTITION BY user_id ORDER BY received_at, seq) AS turn
    FROM inbox WHERE done_at IS NULL AND ($1::text IS NULL OR platform = $1)
) AS p ORDER BY turn, received_at, seq LIMIT $2
"""


class PostgresInbox:
    """The inbox of PostgresStore, which sets the attributes declared here."""

    _pool: asyncpg.Pool

    async def inbox_put(
        self,
        platform: str,
        message_id: str,
        payload: Mapping[str, Any],
        user_id: str | None = None,
    ) -> InboxStatus:
        async with db_errors():
            row = await self._pool.fetchrow(
                _INBOX_PUT, platform, message_id, dumps(dict(payload)), user_id, time.time()
            )
        if row["inserted"]:
            return InboxStatus.NEW
        return InboxStatus.DONE if row["done_at"] is not None else InboxStatus.PENDING

    async def inbox_done(self, platform: str, message_id: str) -> None:
        async with db_errors():
            await self._pool.execute(
                # The payload only serves a replay; once answered the row just dedupes (and an
                # admin's "/forget <user>" must not outlive that user).
                """UPDATE inbox SET done_at = $3, payload = '{}'::jsonb
                   WHERE platform = $1 AND message_id = $2 AND done_at IS NULL""",
                platform,
                message_id,
                time.time(),
            )

    async def inbox_status(self, platform: str, message_id: str) -> InboxStatus | None:
        async with db_errors():
            row = await self._pool.fetchrow(
                "SELECT done_at FROM inbox WHERE platform = $1 AND message_id = $2",
                platform,
                message_id,
            )
        if row is None:
            return None
        return InboxStatus.DONE if row["done_at"] is not None else InboxStatus.PENDING

    async def inbox_earlier_pending(
        self, platform: str, message_id: str, user_id: str, since: float | None = None
    ) -> bool:
        async with db_errors():
            return bool(
                await self._pool.fetchval(_EARLIER_PENDING, platform, message_id, user_id, since)
            )

    async def inbox_pending(
        self, platform: str | None = None, limit: int | None = None
    ) -> list[InboxItem]:
        async with db_errors():
            # LIMIT NULL: no limit.
            cap = None if limit is None else max(limit, 0)
            rows = await self._pool.fetch(_PENDING, platform, cap)
        return [
            InboxItem(
                platform=row["platform"],
                message_id=row["message_id"],
                payload=loads(row["payload"]),
                received_at=row["received_at"],
            )
            for row in rows
        ]
