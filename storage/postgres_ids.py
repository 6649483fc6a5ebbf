"""Identities, the inbox and the audit log of the PostgreSQL backend (/link: postgres_links)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any

import asyncpg

from storage.postgres_codec import dumps, loads
from storage.postgres_pool import db_errors
from storage.types import InboxItem, InboxStatus

_FIND = "SELECT user_id, display_name FROM identities WHERE platform = $1 AND platform_user_id = $2"

# First sight or a new display name. The update always happens, so RETURNING always has the row,
# even when another worker inserted it after this statement's snapshot was taken.
_RESOLVE = """
INSERT INTO identities AS i (platform, platform_user_id, user_id, display_name, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (platform, platform_user_id)
DO UPDATE SET display_name = coalesce(EXCLUDED.display_name, i.display_name)
RETURNING user_id
"""

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


def hash_actor(salt: bytes, actor: str) -> str:
    """Keyed with the database's salt (meta.audit_salt) so a small id space (chat ids) cannot
    be looked up; the same function as the SQLite backend's, so copied rows stay comparable."""
    return hmac.new(salt, actor.encode(), hashlib.sha256).hexdigest()[:16]


def new_user_id() -> str:
    return secrets.token_hex(6)


class IdentityInboxAudit:
    _pool: asyncpg.Pool
    _salt: bytes

    # -- identities ----------------------------------------------------------------------------
    async def resolve_user(
        self, platform: str, platform_user_id: str, display_name: str | None = None
    ) -> str:
        async with db_errors():
            # Most messages come from known users: a read, and a write only when needed.
            found = await self._pool.fetchrow(_FIND, platform, platform_user_id)
            if found is not None and display_name in (None, found["display_name"]):
                return found["user_id"]
            return await self._pool.fetchval(
                _RESOLVE, platform, platform_user_id, new_user_id(), display_name, time.time()
            )

    async def find_user(self, platform: str, platform_user_id: str) -> str | None:
        async with db_errors():
            found = await self._pool.fetchrow(_FIND, platform, platform_user_id)
        return None if found is None else found["user_id"]

    # -- inbox ---------------------------------------------------------------------------------
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

    # -- audit ---------------------------------------------------------------------------------
    async def audit(self, actor: str, command: str, detail: str = "") -> None:
        async with db_errors():
            await self._pool.execute(
                "INSERT INTO audit (at, actor, command, detail) VALUES ($1, $2, $3, $4)",
                time.time(),
                hash_actor(self._salt, actor),
                command,
                detail,
            )

    async def audit_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        async with db_errors():
            rows = await self._pool.fetch(
                "SELECT at, actor, command, detail FROM audit ORDER BY seq DESC LIMIT $1",
                max(limit, 0),
            )
        return [dict(row) for row in rows]

    async def audit_count(self, actor: str, command: str, since: float) -> int:
        async with db_errors():
            return await self._pool.fetchval(
                "SELECT count(*) FROM audit WHERE actor = $1 AND command = $2 AND at >= $3",
                hash_actor(self._salt, actor),
                command,
                since,
            )
