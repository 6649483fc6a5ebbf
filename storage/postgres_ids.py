"""Identities and /link codes, the inbox and the audit log of the PostgreSQL backend."""

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

# No 0/O, 1/I/L: codes are read off one screen and typed on another.
LINK_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LINK_CODE_LENGTH = 8

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


def normalize_code(code: str) -> str:
    """Codes are typed by people: case, spaces and dashes do not matter."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


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

    async def create_link_code(self, user_id: str, ttl_seconds: float = 600) -> str:
        now = time.time()
        async with db_errors(), self._pool.acquire() as conn:
            await conn.execute("DELETE FROM link_codes WHERE expires_at < $1", now)  # housekeeping
            while True:  # a collision among 31^8 codes is rare; just draw again
                code = "".join(secrets.choice(LINK_ALPHABET) for _ in range(LINK_CODE_LENGTH))
                inserted = await conn.fetchval(
                    """INSERT INTO link_codes (code, user_id, expires_at) VALUES ($1, $2, $3)
                       ON CONFLICT (code) DO NOTHING RETURNING 1""",
                    code,
                    user_id,
                    now + ttl_seconds,
                )
                if inserted:
                    return code

    async def redeem_link_code(self, code: str, platform: str, platform_user_id: str) -> str | None:
        now = time.time()
        async with db_errors(), self._pool.acquire() as conn, conn.transaction():
            # One-time: the code is consumed even when it turns out to be expired.
            row = await conn.fetchrow(
                "DELETE FROM link_codes WHERE code = $1 RETURNING user_id, expires_at",
                normalize_code(code),
            )
            if row is None or row["expires_at"] < now:
                return None
            target = row["user_id"]
            former = await conn.fetchval(
                """SELECT user_id FROM identities WHERE platform = $1 AND platform_user_id = $2
                   FOR UPDATE""",
                platform,
                platform_user_id,
            )
            await conn.execute(
                """INSERT INTO identities (platform, platform_user_id, user_id, created_at)
                   VALUES ($1, $2, $3, $4) ON CONFLICT (platform, platform_user_id)
                   DO UPDATE SET user_id = EXCLUDED.user_id""",
                platform,
                platform_user_id,
                target,
                now,
            )
            if former is not None and former != target:
                await _merge_user(conn, former, target)
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


async def _merge_user(conn: asyncpg.Connection, old: str, target: str) -> None:
    """Fold `old` into `target`: its `user:` values fill the target's gaps, its sessions move
    (renamed `<id>~<old>` when the target has a session of the same id), its inbox rows and
    link codes follow. Same rules as the SQLite backend."""
    await conn.execute(
        """INSERT INTO user_state AS t (app_name, user_id, state)
           SELECT app_name, $2, state FROM user_state WHERE user_id = $1
           ON CONFLICT (app_name, user_id) DO UPDATE SET state = EXCLUDED.state || t.state""",
        old,
        target,
    )
    await conn.execute("DELETE FROM user_state WHERE user_id = $1", old)
    await conn.execute(
        """UPDATE sessions s SET user_id = $2 WHERE s.user_id = $1 AND NOT EXISTS (
               SELECT 1 FROM sessions t
               WHERE t.app_name = s.app_name AND t.user_id = $2 AND t.session_id = s.session_id)""",
        old,
        target,
    )
    await conn.execute(
        "UPDATE sessions SET user_id = $2, session_id = session_id || '~' || $1 WHERE user_id = $1",
        old,
        target,
    )
    for table in ("inbox", "link_codes"):
        await conn.execute(f"UPDATE {table} SET user_id = $2 WHERE user_id = $1", old, target)
