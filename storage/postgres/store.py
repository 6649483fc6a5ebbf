"""The PostgreSQL store: the pools, the schema at open, and one mixin per concept.

Same protocol and semantics as the SQLite backend; how each part is achieved is told in its
module (sessions, identities, links, inbox, audit, admin_views, privacy).
"""

from __future__ import annotations

import asyncpg

from storage.common import DEFAULT_MEMORY_LIMIT
from storage.locks import KeyedLocks
from storage.postgres.admin_views import PostgresAdminViews
from storage.postgres.audit import PostgresAudit
from storage.postgres.identities import PostgresIdentities
from storage.postgres.inbox import PostgresInbox
from storage.postgres.links import PostgresLinks
from storage.postgres.memories import PostgresMemories
from storage.postgres.pool import PoolSettings, TurnConnections, create_pools, db_errors, split_url
from storage.postgres.privacy import PostgresPrivacy
from storage.postgres.schedules import PostgresSchedules
from storage.postgres.schema import migrate
from storage.postgres.sessions import PostgresSessions


class PostgresStore(
    PostgresSessions,
    PostgresAdminViews,
    PostgresPrivacy,
    PostgresIdentities,
    PostgresLinks,
    PostgresInbox,
    PostgresMemories,
    PostgresSchedules,
    PostgresAudit,
):
    """Implements storage.protocols.Store on PostgreSQL. Open with
    `await PostgresStore.open(url)`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        lock_pool: asyncpg.Pool,
        settings: PoolSettings,
        salt: str,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        self.memory_limit = memory_limit
        self._pool = pool
        self._lock_pool = lock_pool
        self._settings = settings
        self._salt = salt.encode()
        self._local_locks = KeyedLocks()
        self._turns = TurnConnections(pool)

    @classmethod
    async def open(
        cls,
        url: str,
        settings: PoolSettings | None = None,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
    ) -> PostgresStore:
        """Connect, create or upgrade the schema. Pool sizes come from `settings`, overridden
        by the URL's `pool_size`, `lock_connections` and `lock_wait` query parameters."""
        url, settings = split_url(url, settings)
        pool, lock_pool = await create_pools(url, settings)
        try:
            async with db_errors(), pool.acquire() as conn:
                await migrate(conn)
                salt = await conn.fetchval("SELECT value FROM meta WHERE key = 'audit_salt'")
        except BaseException:
            await pool.close()
            await lock_pool.close()
            raise
        return cls(pool, lock_pool, settings, salt, memory_limit)

    @property
    def pool(self) -> asyncpg.Pool:
        """The data pool, for bulk tools in this package (storage.transfer)."""
        return self._pool

    async def close(self) -> None:
        await self._lock_pool.close()
        await self._pool.close()

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
