"""The SQLite session store (aiosqlite): the embedded default backend.

Layout: one group-committing writer connection (sqlite_conn), read connections beside it (WAL),
statements in sqlite_ops / sqlite_admin / sqlite_identity, schema and migrations in
sqlite_schema. This class only encodes arguments on the caller's side and routes each call to
the writer or a reader. URLs: `sqlite:///relative.db`, `sqlite:////abs/path.db`,
`sqlite:///:memory:` (one connection, nothing persisted).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite

from storage import sqlite_admin as admin
from storage import sqlite_identity as ident
from storage import sqlite_ops as ops
from storage import sqlite_schema as schema
from storage.sqlite_codec import CachingConnection, dumps, encode_delta, encode_event
from storage.sqlite_conn import GroupCommitWriter, Readers, close_quietly, map_error, run_on
from storage.types import (
    Event,
    InboxItem,
    InboxStatus,
    Session,
    SessionInfo,
    Stats,
    StoreError,
    UserInfo,
    new_id,
)

MEMORY = ":memory:"
# Answered inbox rows are kept this long to recognise redeliveries, then pruned at open.
INBOX_RETENTION_SECONDS = 30 * 24 * 3600
log = logging.getLogger(__name__)


def parse_url(url: str) -> str:
    """`sqlite:///x.db` -> 'x.db'; `sqlite:////abs/x.db` -> '/abs/x.db'; ':memory:' stays."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"expected sqlite:///relative.db or sqlite:////absolute.db, got {url!r}")
    if "?" in url:
        raise ValueError(f"SQLite URLs take no query parameters, got {url!r}")
    return url[len(prefix) :]


def _create_private_file(path: str) -> None:
    """Create the database file owner-only (0600) before SQLite does (it would use the umask);
    SQLite gives its -wal and -shm files the same mode as the database file."""
    parent = Path(path).parent
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _prepare(
    db: sqlite3.Connection, timeout_ms: int, synchronous: str, now: float
) -> tuple[int, str]:
    """Pragmas, migrations and housekeeping at open; returns (version found, audit salt)."""
    schema.configure_writer(db, timeout_ms, synchronous)
    found = schema.migrate(db)
    db.execute("BEGIN IMMEDIATE")
    try:
        ident.prune_inbox(db, now - INBOX_RETENTION_SECONDS)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return found, ident.audit_salt(db)


async def _connect(path: str, busy_timeout: float) -> aiosqlite.Connection:
    # isolation_level=None: no implicit transactions; we issue BEGIN [IMMEDIATE] ourselves.
    return await aiosqlite.connect(
        path, isolation_level=None, timeout=busy_timeout, factory=CachingConnection
    )


@dataclass
class _LockEntry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # holders + waiters


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it (bounded size)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, ...], _LockEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @contextlib.asynccontextmanager
    async def hold(self, key: tuple[str, ...]) -> AsyncIterator[None]:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _LockEntry()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]


class SqliteStore:
    """Implements storage.base.Store on one SQLite file."""

    def __init__(
        self,
        writer_conn: aiosqlite.Connection,
        reader_conns: Sequence[aiosqlite.Connection],
        salt: str,
    ) -> None:
        self._writer_conn = writer_conn
        self._reader_conns = tuple(c for c in reader_conns if c is not writer_conn)
        self.writer = GroupCommitWriter(writer_conn)
        self._readers = Readers(reader_conns)
        self._salt = salt.encode()
        self.locks = KeyedLocks()
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        busy_timeout: float = 5.0,
        readers: int = 2,
        synchronous: str = "FULL",
    ) -> SqliteStore:
        """Open (creating, 0600, and migrating as needed) the database a URL names."""
        path = parse_url(url)
        if path != MEMORY:
            _create_private_file(path)
        timeout_ms = int(busy_timeout * 1000)
        writer = await _connect(path, busy_timeout)
        conns = [writer]
        try:
            found, salt = await run_on(
                writer, lambda db: _prepare(db, timeout_ms, synchronous, time.time())
            )
            if path == MEMORY:  # a second connection would see another, empty database
                reader_conns = [writer]
            else:
                reader_conns = []
                for _ in range(max(readers, 1)):
                    conn = await _connect(path, busy_timeout)
                    conns.append(conn)
                    await run_on(conn, lambda db: schema.configure_reader(db, timeout_ms))
                    reader_conns.append(conn)
        except sqlite3.Error as exc:
            for conn in conns:
                await close_quietly(conn)
            raise map_error(exc) from exc
        except BaseException:
            for conn in conns:
                await close_quietly(conn)
            raise
        store = cls(writer, reader_conns, salt)
        store.writer.start()
        upgraded = f", upgraded from v{found}" if 0 < found < schema.LATEST else ""
        log.info("SQLite store %s open (schema v%d%s)", path, schema.LATEST, upgraded)
        return store

    async def close(self) -> None:
        """Finish queued writes, then close every connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await self.writer.close()
        for conn in self._reader_conns:
            await close_quietly(conn)
        await close_quietly(self._writer_conn)

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read(self, fn: Any) -> Any:
        if self._closed:
            raise StoreError("the store is closed")
        return await self._readers.run(fn)

    async def _write(self, fn: Any) -> Any:
        return await self.writer.submit(fn)

    # -- sessions ---------------------------------------------------------------------------
    async def create_session(
        self,
        app_name: str,
        user_id: str,
        session_id: str | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> Session:
        delta = encode_delta(state or {})
        sid = session_id or new_id()
        return await self._write(
            partial(
                ops.create_session,
                app=app_name,
                user=user_id,
                sid=sid,
                delta=delta,
                now=time.time(),
            )
        )

    async def get_session(
        self, app_name: str, user_id: str, session_id: str, *, recent_events: int = 20
    ) -> Session | None:
        return await self._read(
            partial(
                ops.load_session,
                app=app_name,
                user=user_id,
                sid=session_id,
                recent=max(recent_events, 0),
            )
        )

    async def append_event(self, session: Session, event: Event) -> bool:
        encoded = encode_event(event)  # fails here, early, for partial events or bad JSON
        return await self._write(
            partial(
                ops.append_event,
                app=session.app_name,
                user=session.user_id,
                sid=session.session_id,
                event=encoded,
            )
        )

    async def bulk_append(self, session: Session, events: Sequence[Event]) -> int:
        """Append many events in one transaction (imports, benchmarks); returns how many were
        new. Same result as appending them one by one."""
        encoded = [encode_event(event) for event in events]
        return await self._write(
            partial(
                ops.bulk_append,
                app=session.app_name,
                user=session.user_id,
                sid=session.session_id,
                events=encoded,
            )
        )

    async def delete_session(self, app_name: str, user_id: str, session_id: str) -> None:
        await self._write(partial(ops.delete_session, app=app_name, user=user_id, sid=session_id))

    def session_lock(
        self, app_name: str, user_id: str, session_id: str
    ) -> AbstractAsyncContextManager[None]:
        # In-process: the SQLite store is single-process (one writer connection).
        return self.locks.hold((app_name, user_id, session_id))

    # -- admin views ------------------------------------------------------------------------
    async def history(
        self,
        app_name: str,
        user_id: str,
        session_id: str | None = None,
        *,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Event]:
        return await self._read(
            partial(
                admin.history,
                app=app_name,
                user=user_id,
                sid=session_id,
                before=before,
                limit=limit,
            )
        )

    async def list_sessions(
        self, app_name: str, user_id: str | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[SessionInfo]:
        return await self._read(
            partial(admin.list_sessions, app=app_name, user=user_id, limit=limit, offset=offset)
        )

    async def list_users(
        self, app_name: str, *, limit: int = 50, offset: int = 0
    ) -> list[UserInfo]:
        return await self._read(partial(admin.list_users, app=app_name, limit=limit, offset=offset))

    async def stats(self, app_name: str, user_id: str | None = None) -> Stats:
        return await self._read(partial(admin.stats, app=app_name, user=user_id))

    # -- privacy ----------------------------------------------------------------------------
    async def export_user(self, app_name: str, user_id: str) -> dict[str, Any]:
        return await self._read(partial(admin.export_user, app=app_name, user=user_id))

    async def delete_user(self, app_name: str, user_id: str) -> None:
        await self._write(partial(admin.delete_user, app=app_name, user=user_id))

    # -- identities -------------------------------------------------------------------------
    async def resolve_user(
        self, platform: str, platform_user_id: str, display_name: str | None = None
    ) -> str:
        # Most messages come from known users: answer from a reader, write only when needed.
        found = await self._read(partial(ident.find_user, platform=platform, puid=platform_user_id))
        if found is not None and (display_name is None or display_name == found[1]):
            return found[0]
        return await self._write(
            partial(
                ident.resolve_user,
                platform=platform,
                puid=platform_user_id,
                display_name=display_name,
                now=time.time(),
            )
        )

    async def find_user(self, platform: str, platform_user_id: str) -> str | None:
        found = await self._read(partial(ident.find_user, platform=platform, puid=platform_user_id))
        return None if found is None else found[0]

    async def create_link_code(self, user_id: str, ttl_seconds: float = 600) -> str:
        now = time.time()
        return await self._write(
            partial(ident.create_link_code, user_id=user_id, expires_at=now + ttl_seconds, now=now)
        )

    async def redeem_link_code(self, code: str, platform: str, platform_user_id: str) -> str | None:
        return await self._write(
            partial(
                ident.redeem_link_code,
                code=code,
                platform=platform,
                puid=platform_user_id,
                now=time.time(),
            )
        )

    # -- inbox ------------------------------------------------------------------------------
    async def inbox_put(
        self,
        platform: str,
        message_id: str,
        payload: Mapping[str, Any],
        user_id: str | None = None,
    ) -> InboxStatus:
        encoded = dumps(dict(payload))
        return await self._write(
            partial(
                ident.inbox_put,
                platform=platform,
                message_id=message_id,
                payload=encoded,
                user_id=user_id,
                now=time.time(),
            )
        )

    async def inbox_done(self, platform: str, message_id: str) -> None:
        await self._write(
            partial(ident.inbox_done, platform=platform, message_id=message_id, now=time.time())
        )

    async def inbox_pending(
        self, platform: str | None = None, limit: int = 1000
    ) -> list[InboxItem]:
        return await self._read(partial(ident.inbox_pending, platform=platform, limit=limit))

    # -- audit ------------------------------------------------------------------------------
    def _hash_actor(self, actor: str) -> str:
        # Keyed with a per-database salt so a small id space (chat ids) can't be looked up.
        return hmac.new(self._salt, actor.encode(), hashlib.sha256).hexdigest()[:16]

    async def audit(self, actor: str, command: str, detail: str = "") -> None:
        await self._write(
            partial(
                ident.audit,
                actor_hash=self._hash_actor(actor),
                command=command,
                detail=detail,
                now=time.time(),
            )
        )

    async def audit_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        return await self._read(partial(ident.audit_entries, limit=limit))
