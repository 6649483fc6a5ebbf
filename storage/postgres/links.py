"""/link and /unlink of the PostgreSQL backend: link codes, joining two users, detaching an
identity, and the notices left for identities. Same rules as the SQLite backend; the codes
themselves (alphabet, length, normalising) are storage.common's."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import asyncpg

from storage.common import new_link_code, new_user_id, normalize_code
from storage.postgres import memories, schedules
from storage.postgres.codec import dumps_state
from storage.postgres.pool import db_errors
from storage.types import Identity, Notice, split_delta

_IDENTITIES = """
SELECT platform, platform_user_id, display_name FROM identities WHERE user_id = $1
ORDER BY created_at, platform, platform_user_id
"""

_NOTIFY_OTHERS = """
INSERT INTO notices (platform, platform_user_id, text, created_at)
SELECT platform, platform_user_id, $1, $2 FROM identities
WHERE user_id = $3 AND NOT (platform = $4 AND platform_user_id = $5) ORDER BY created_at
"""

_NOTIFY = """
INSERT INTO notices (platform, platform_user_id, text, created_at) VALUES ($1, $2, $3, $4)
"""


class PostgresLinks:
    """/link and /unlink of PostgresStore, which sets the attributes declared here."""

    _pool: asyncpg.Pool
    memory_limit: int

    async def identities(self, user_id: str) -> list[Identity]:
        async with db_errors():
            rows = await self._pool.fetch(_IDENTITIES, user_id)
        return [
            Identity(r["platform"], r["platform_user_id"], user_id, r["display_name"]) for r in rows
        ]

    async def create_link_code(self, user_id: str, ttl_seconds: float = 600) -> str:
        now = time.time()
        async with db_errors(), self._pool.acquire() as conn:
            await conn.execute("DELETE FROM link_codes WHERE expires_at < $1", now)  # housekeeping
            while True:  # a collision is rare (storage.common): just draw again
                code = new_link_code()
                inserted = await conn.fetchval(
                    """INSERT INTO link_codes (code, user_id, expires_at) VALUES ($1, $2, $3)
                       ON CONFLICT (code) DO NOTHING RETURNING 1""",
                    code,
                    user_id,
                    now + ttl_seconds,
                )
                if inserted:
                    return code

    async def peek_link_code(self, code: str) -> str | None:
        async with db_errors():
            return await self._pool.fetchval(
                "SELECT user_id FROM link_codes WHERE code = $1 AND expires_at >= $2",
                normalize_code(code),
                time.time(),
            )

    async def redeem_link_code(
        self, code: str, platform: str, platform_user_id: str, notice: str = ""
    ) -> str | None:
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
            if former != target:
                if former is not None:
                    await _merge_user(conn, former, target, self.memory_limit)
                if notice:
                    await conn.execute(
                        _NOTIFY_OTHERS, notice, now, target, platform, platform_user_id
                    )
            return target

    async def detach_identity(
        self,
        app_name: str,
        platform: str,
        platform_user_id: str,
        state: Mapping[str, Any],
        notice: str = "",
    ) -> str | None:
        _, user_part, _ = split_delta(state)
        copied = dumps_state({k: v for k, v in user_part.items() if v is not None})
        async with db_errors(), self._pool.acquire() as conn, conn.transaction():
            former = await conn.fetchval(
                """SELECT user_id FROM identities WHERE platform = $1 AND platform_user_id = $2
                   FOR UPDATE""",
                platform,
                platform_user_id,
            )
            others = await conn.fetchval(
                "SELECT count(*) FROM identities WHERE user_id = $1", former
            )
            if former is None or others < 2:
                return None
            user = new_user_id()
            await conn.execute(
                """UPDATE identities SET user_id = $3
                   WHERE platform = $1 AND platform_user_id = $2""",
                platform,
                platform_user_id,
                user,
            )
            await conn.execute(
                "INSERT INTO user_state (app_name, user_id, state) VALUES ($1, $2, $3::jsonb)",
                app_name,
                user,
                copied,
            )
            if notice:
                await conn.execute(_NOTIFY, platform, platform_user_id, notice, time.time())
            return user

    async def notices(self, platform: str, platform_user_id: str) -> list[Notice]:
        async with db_errors():
            rows = await self._pool.fetch(
                """SELECT seq, text FROM notices WHERE platform = $1 AND platform_user_id = $2
                   ORDER BY seq""",
                platform,
                platform_user_id,
            )
        return [Notice(row["seq"], row["text"]) for row in rows]

    async def drop_notices(self, platform: str, platform_user_id: str, up_to: int) -> None:
        async with db_errors():
            await self._pool.execute(
                """DELETE FROM notices
                   WHERE platform = $1 AND platform_user_id = $2 AND seq <= $3""",
                platform,
                platform_user_id,
                up_to,
            )


async def _merge_user(conn: asyncpg.Connection, old: str, target: str, memory_limit: int) -> None:
    """Fold `old` into `target`: every identity of `old` moves (none is left on an emptied
    user, out of reach of its /forgetme), its `user:` values fill the target's gaps, its
    sessions move (renamed `<id>~<old>` when the target has a session of the same id), its
    inbox rows and link codes follow, its memories join the target's (plan_merge)."""
    await conn.execute("UPDATE identities SET user_id = $2 WHERE user_id = $1", old, target)
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
    await schedules.merge_user(conn, old, target)
    await memories.merge_user(conn, old, target, memory_limit)
