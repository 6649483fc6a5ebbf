"""Identities of the PostgreSQL backend: (platform, platform_user_id) -> our user id.
Joining and detaching identities: storage.postgres.links."""

from __future__ import annotations

import time

import asyncpg

from storage.common import new_user_id, normalize_username
from storage.postgres.pool import db_errors
from storage.types import Identity

_FIND = """
SELECT user_id, display_name, username FROM identities WHERE platform = $1 AND platform_user_id = $2
"""

# First sight, a new display name or username. The update always happens, so RETURNING always
# has the row, even when another worker inserted it after this statement's snapshot was taken.
# A username moved to this account is taken from its old holder in the same statement.
_RESOLVE = """
WITH moved AS (
    UPDATE identities SET username = NULL
    WHERE $5::text IS NOT NULL AND username = $5 AND platform = $1 AND platform_user_id <> $2
)
INSERT INTO identities AS i
    (platform, platform_user_id, user_id, display_name, username, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (platform, platform_user_id)
DO UPDATE SET display_name = coalesce(EXCLUDED.display_name, i.display_name),
              username = coalesce(EXCLUDED.username, i.username)
RETURNING user_id
"""

_BY_USERNAME = """
SELECT platform, platform_user_id, user_id, display_name, username FROM identities
WHERE username = $1 ORDER BY platform, platform_user_id
"""


class PostgresIdentities:
    """Identities of PostgresStore, which sets the attributes declared here."""

    _pool: asyncpg.Pool

    async def resolve_user(
        self,
        platform: str,
        platform_user_id: str,
        display_name: str | None = None,
        username: str | None = None,
    ) -> str:
        name = normalize_username(username)
        async with db_errors():
            # Most messages come from known users: a read, and a write only when needed.
            found = await self._pool.fetchrow(_FIND, platform, platform_user_id)
            if (
                found is not None
                and display_name in (None, found["display_name"])
                and name in (None, found["username"])
            ):
                return found["user_id"]
            return await self._pool.fetchval(
                _RESOLVE, platform, platform_user_id, new_user_id(), display_name, name, time.time()
            )

    async def find_by_username(self, username: str) -> list[Identity]:
        name = normalize_username(username)
        if name is None:
            return []
        async with db_errors():
            rows = await self._pool.fetch(_BY_USERNAME, name)
        return [Identity(*row) for row in rows]

    async def find_user(self, platform: str, platform_user_id: str) -> str | None:
        async with db_errors():
            found = await self._pool.fetchrow(_FIND, platform, platform_user_id)
        return None if found is None else found["user_id"]
