"""Identities of the PostgreSQL backend: (platform, platform_user_id) -> our user id.
Joining and detaching identities: storage.postgres.links."""

from __future__ import annotations

import time

import asyncpg

from storage.common import new_user_id
from storage.postgres.pool import db_errors

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


class PostgresIdentities:
    """Identities of PostgresStore, which sets the attributes declared here."""

    _pool: asyncpg.Pool

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
