"""Identities and /link codes, the inbox and the audit log of the PostgreSQL backend."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from storage.postgres_codec import dumps, loads
from storage.postgres_pool import db_errors
from storage.types import InboxItem, InboxStatus

# No 0/O, 1/I/L: codes are read off one screen and typed on another.
LINK_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LINK_CODE_LENGTH = 8

# One round trip whether the identity is new or known; a new display name is remembered.
_RESOLVE = """
WITH ins AS (
    INSERT INTO identities AS i (platform, platform_user_id, user_id, display_name, created_at)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (platform, platform_user_id) DO UPDATE SET display_name = EXCLUDED.display_name
        WHERE EXCLUDED.display_name IS NOT NULL
          AND i.display_name IS DISTINCT FROM EXCLUDED.display_name
    RETURNING user_id
)
SELECT user_id FROM ins
UNION ALL
SELECT user_id FROM identities WHERE platform = $1 AND platform_user_id = $2
LIMIT 1
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


def hash_actor(actor: str) -> str:
    return hashlib.sha256(actor.encode()).hexdigest()[:16]


def new_user_id() -> str:
    return uuid.uuid4().hex[:12]


class IdentityInboxAudit:
    _pool: asyncpg.Pool

    # -- identities ----------------------------------------------------------------------------
    async def resolve_user(
        self, platform: str, platform_user_id: str, display_name: str | None = None
    ) -> str:
        async with db_errors():
            return await self._pool.fetchval(
                _RESOLVE, platform, platform_user_id, new_user_id(), display_name, time.time()
            )

    async def find_user(self, platform: str, platform_user_id: str) -> str | None:
        async with db_errors():
            return await self._pool.fetchval(
                "SELECT user_id FROM identities WHERE platform = $1 AND platform_user_id = $2",
                platform,
                platform_user_id,
            )

    async def create_link_code(self, user_id: str, ttl_seconds: float = 600) -> str:
        async with db_errors():
            while True:  # a collision among 31^8 codes is rare; just draw again
                code = "".join(secrets.choice(LINK_ALPHABET) for _ in range(LINK_CODE_LENGTH))
                inserted = await self._pool.fetchval(
                    """INSERT INTO link_codes (code, user_id, expires_at) VALUES ($1, $2, $3)
                       ON CONFLICT (code) DO NOTHING RETURNING 1""",
                    code,
                    user_id,
                    time.time() + ttl_seconds,
                )
                if inserted:
                    return code

    async def redeem_link_code(self, code: str, platform: str, platform_user_id: str) -> str | None:
        code = code.strip().upper()
        now = time.time()
        async with db_errors(), self._pool.acquire() as conn, conn.transaction():
            target = await conn.fetchval(
                """UPDATE link_codes SET used_at = $2
                   WHERE code = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id""",
                code,
                now,
            )
            if target is None:
                return None
            former = await conn.fetchval(
                """SELECT user_id FROM identities WHERE platform = $1 AND platform_user_id = $2
                   FOR UPDATE""",
                platform,
                platform_user_id,
            )
            if former is None:
                await conn.execute(
                    """INSERT INTO identities (platform, platform_user_id, user_id, created_at)
                       VALUES ($1, $2, $3, $4)""",
                    platform,
                    platform_user_id,
                    target,
                    now,
                )
            elif former != target:
                await _move_user(conn, former, target, platform, platform_user_id)
            return target

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
                """UPDATE inbox SET done_at = $3
                   WHERE platform = $1 AND message_id = $2 AND done_at IS NULL""",
                platform,
                message_id,
                time.time(),
            )

    async def inbox_pending(
        self, platform: str | None = None, limit: int = 1000
    ) -> list[InboxItem]:
        async with db_errors():
            rows = await self._pool.fetch(
                """SELECT platform, message_id, payload, received_at FROM inbox
                   WHERE done_at IS NULL AND ($1::text IS NULL OR platform = $1)
                   ORDER BY received_at, platform, message_id LIMIT $2""",
                platform,
                max(limit, 0),
            )
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
                hash_actor(actor),
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


async def _move_user(
    conn: asyncpg.Connection, former: str, target: str, platform: str, platform_user_id: str
) -> None:
    """Join `former` into `target`: the identity, user state where the target has no value,
    sessions (unless the target has one with the same id) and inbox rows."""
    await conn.execute(
        "UPDATE identities SET user_id = $1 WHERE platform = $2 AND platform_user_id = $3",
        target,
        platform,
        platform_user_id,
    )
    await conn.execute(
        """INSERT INTO user_state AS t (app_name, user_id, state)
           SELECT app_name, $2, state FROM user_state WHERE user_id = $1
           ON CONFLICT (app_name, user_id) DO UPDATE SET state = EXCLUDED.state || t.state""",
        former,
        target,
    )
    await conn.execute(
        """UPDATE sessions s SET user_id = $2 WHERE s.user_id = $1 AND NOT EXISTS (
               SELECT 1 FROM sessions t
               WHERE t.app_name = s.app_name AND t.user_id = $2 AND t.session_id = s.session_id)""",
        former,
        target,
    )
    await conn.execute("UPDATE inbox SET user_id = $2 WHERE user_id = $1", former, target)
