"""Persistent session store: sessions, scoped state, events, identities, inbox, audit.

Two backends implement the protocols of storage.protocols: storage.sqlite (embedded, the
default) and storage.postgres (several worker processes). storage.transfer copies an SQLite
store into PostgreSQL.
"""

from __future__ import annotations

from storage.common import DEFAULT_MEMORY_LIMIT
from storage.protocols import (
    AdminViews,
    AuditLog,
    IdentityStore,
    Inbox,
    MemoryStore,
    PrivacyStore,
    SessionStore,
    Store,
)
from storage.types import (
    Event,
    EventActions,
    EventNotFound,
    Identity,
    InboxItem,
    InboxStatus,
    Memory,
    MemoryChange,
    Notice,
    SchemaTooNew,
    Session,
    SessionInfo,
    SessionNotFound,
    Stats,
    StoreBusy,
    StoreError,
    TokenUsage,
)
from storage.urls import UrlError, check

DEFAULT_DATABASE_URL = "sqlite:///./multi_agent_data.db"


async def open_store(
    database_url: str = DEFAULT_DATABASE_URL, *, memory_limit: int = DEFAULT_MEMORY_LIMIT
) -> Store:
    """Open (creating and migrating as needed) the store a URL names.

    `sqlite:///relative/path`, `sqlite:////absolute/path`, `sqlite:///:memory:` or
    `postgresql://user@host:port/db` (storage.urls). Raises UrlError for a malformed URL,
    SchemaTooNew for a database of a newer release, StoreError when it cannot be opened.
    `memory_limit` bounds each user's memories (MEMORY_LIMIT).
    """
    check(database_url)
    if database_url.startswith("sqlite:"):
        from storage.sqlite import SqliteStore

        return await SqliteStore.open(database_url, memory_limit=memory_limit)
    from storage.postgres import PostgresStore

    return await PostgresStore.open(database_url, memory_limit=memory_limit)


__all__ = [
    "DEFAULT_DATABASE_URL",
    "AdminViews",
    "AuditLog",
    "Event",
    "EventActions",
    "EventNotFound",
    "Identity",
    "IdentityStore",
    "Inbox",
    "InboxItem",
    "InboxStatus",
    "Memory",
    "MemoryChange",
    "MemoryStore",
    "Notice",
    "PrivacyStore",
    "SchemaTooNew",
    "Session",
    "SessionInfo",
    "SessionNotFound",
    "SessionStore",
    "Stats",
    "Store",
    "StoreBusy",
    "StoreError",
    "TokenUsage",
    "UrlError",
    "open_store",
]
