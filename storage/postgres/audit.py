"""The audit log of the PostgreSQL backend: admin calls under a hashed actor
(storage.common.hash_actor, with the salt kept in the meta table)."""

from __future__ import annotations

import time

import asyncpg

from storage.common import hash_actor
from storage.postgres.pool import db_errors


class PostgresAudit:
    """The audit log of PostgresStore, which sets the attributes declared here."""

    _pool: asyncpg.Pool
    _salt: bytes

    async def audit(self, actor: str, command: str, detail: str = "") -> None:
        async with db_errors():
            await self._pool.execute(
                "INSERT INTO audit (at, actor, command, detail) VALUES ($1, $2, $3, $4)",
                time.time(),
                hash_actor(self._salt, actor),
                command,
                detail,
            )

    async def audit_count(self, actor: str, command: str, since: float) -> int:
        async with db_errors():
            return await self._pool.fetchval(
                "SELECT count(*) FROM audit WHERE actor = $1 AND command = $2 AND at >= $3",
                hash_actor(self._salt, actor),
                command,
                since,
            )
