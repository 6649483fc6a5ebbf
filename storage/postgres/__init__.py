"""The PostgreSQL backend (asyncpg): several worker processes share one database.

store (the Store class and its lifetime), pool (pools, error translation, the turn's own
connection), schema (migrations), codec (JSON <-> JSONB, rows <-> values), one module per
concept: sessions (with the cross-process session lock), identities, links, inbox, audit,
admin_views, privacy; transfer holds the bulk writes of storage.transfer.
"""

from __future__ import annotations

from storage.postgres.pool import PoolSettings
from storage.postgres.store import PostgresStore

__all__ = ["PoolSettings", "PostgresStore"]
