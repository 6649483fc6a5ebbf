"""The SQLite session store (aiosqlite): the embedded default backend.

Layout: one group-committing writer connection and read connections beside it, under WAL
(connection), opened by opening; statements in one module per concept (sessions, identities,
links, inbox, audit, admin_views, privacy); schema and migrations in schema. This class only
encodes arguments on the caller's side (bad values fail there, early) and routes each call to
the writer or a reader.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any, TypeVar

import aiosqlite

from storage.common import DEFAULT_MEMORY_LIMIT, dumps, hash_actor, normalize_username
from storage.locks import KeyedLocks
from storage.sqlite import (
    admin_views,
    audit,
    identities,
    inbox,
    links,
    memories,
    privacy,
    schema,
    sessions,
)
from storage.sqlite.codec import encode_delta, encode_event
from storage.sqlite.connection import GroupCommitWriter, Readers, close_quietly, run_on
from storage.sqlite.opening import open_connections
from storage.sqlite.schedules import SqliteSchedules
from storage.types import (
    Event,
    Identity,
    InboxItem,
    InboxStatus,
    Memory,
    Notice,
    Session,
    SessionInfo,
    Stats,
    StoreError,
    new_id,
)
from storage.urls import sqlite_path

log = logging.getLogger(__name__)
T = TypeVar("T")


class SqliteStore(SqliteSchedules):
    """Implements storage.protocols.Store on one SQLite file."""

    def __init__(
        self,
        writer_conn: aiosqlite.Connection,
        reader_conns: Sequence[aiosqlite.Connection],
        salt: str,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        self.memory_limit = memory_limit
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
        synchronous: str = "FULL",
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
    ) -> SqliteStore:
        """Open (creating, 0600, and migrating as needed) the database a URL names."""
        path = sqlite_path(url)
        writer, reader_conns, found, salt = await open_connections(
            path, busy_timeout=busy_timeout, synchronous=synchronous
        )
        store = cls(writer, reader_conns, salt, memory_limit)
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

    async def _read(
        self, fn: Callable[[sqlite3.Connection], T], *, snapshot: bool = True, admin: bool = False
    ) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        return await self._readers.run(fn, snapshot=snapshot, admin=admin)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
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
                sessions.create_session,
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
        # No read transaction around the three SELECTs (two statements less per turn): the
        # caller holds the session lock, so this session's rows can't change in between, and
        # the merged state is one statement, so it is one snapshot of all three scopes.
        return await self._read(
            partial(
                sessions.load_session,
                app=app_name,
                user=user_id,
                sid=session_id,
                recent=max(recent_events, 0),
            ),
            snapshot=False,
        )

    async def get_context(
        self, app_name: str, user_id: str, session_id: str, *, max_events: int
    ) -> Session | None:
        # No read transaction, as in get_session: the caller holds the session lock.
        return await self._read(
            partial(
                sessions.load_context,
                app=app_name,
                user=user_id,
                sid=session_id,
                cap=max(max_events, 0),
            ),
            snapshot=False,
        )

    async def append_event(self, session: Session, event: Event) -> bool:
        encoded = encode_event(event)  # fails here, early, for partial events or bad JSON
        return await self._write(
            partial(
                sessions.append_event,
                app=session.app_name,
                user=session.user_id,
                sid=session.session_id,
                event=encoded,
                memory_limit=self.memory_limit,
            )
        )

    def session_lock(
        self, app_name: str, user_id: str, session_id: str
    ) -> AbstractAsyncContextManager[None]:
        # In-process: the SQLite store is single-process (one writer connection).
        return self.locks.hold((app_name, user_id, session_id))

    # -- memories ---------------------------------------------------------------------------
    async def memories(self, app_name: str, user_id: str) -> list[Memory]:
        return await self._read(partial(memories.user_memories, app=app_name, user=user_id))

    async def recall(
        self, app_name: str, user_id: str, query: str, *, relevant: int = 8, recent: int = 4
    ) -> list[Memory]:
        # No read transaction around the two SELECTs: a memory changing in between can only
        # shift which recent ones fill the rest.
        return await self._read(
            partial(
                memories.recall,
                app=app_name,
                user=user_id,
                query=query,
                relevant=relevant,
                recent=recent,
            ),
            snapshot=False,
        )

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
                admin_views.history,
                app=app_name,
                user=user_id,
                sid=session_id,
                before=before,
                limit=limit,
            ),
            admin=True,
        )

    async def list_sessions(
        self, app_name: str, user_id: str | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[SessionInfo]:
        return await self._read(
            partial(
                admin_views.list_sessions, app=app_name, user=user_id, limit=limit, offset=offset
            ),
            admin=True,
        )

    async def stats(self, app_name: str, user_id: str | None = None) -> Stats:
        return await self._read(partial(admin_views.stats, app=app_name, user=user_id), admin=True)

    async def turns_per_day(self, app_name: str, since: float) -> list[tuple[int, int]]:
        read = partial(admin_views.turns_per_day, app=app_name, since=since)
        return await self._read(read, admin=True)

    # -- privacy ----------------------------------------------------------------------------
    async def export_user(self, app_name: str, user_id: str) -> dict[str, Any]:
        return await self._read(
            partial(privacy.export_user, app=app_name, user=user_id), admin=True
        )

    async def delete_user(self, app_name: str, user_id: str) -> None:
        await self._write(partial(privacy.delete_user, app=app_name, user=user_id))
        await self._scrub_wal()

    async def _scrub_wal(self) -> None:
        """After an erase: the WAL still holds the erased rows' old page images until a
        checkpoint, however long the bot runs. TRUNCATE copies the zeroed pages (secure_delete)
        into the database file and empties the WAL. Outside any transaction, between batches."""
        if self._closed:
            return
        busy = await run_on(self._writer_conn, schema.checkpoint_truncate)
        if busy:
            log.warning("checkpoint after an erase could not finish (a long read was open)")

    # -- identities -------------------------------------------------------------------------
    async def resolve_user(
        self,
        platform: str,
        platform_user_id: str,
        display_name: str | None = None,
        username: str | None = None,
    ) -> str:
        # Most messages come from known users: answer from a reader, write only when needed.
        found = await self._read(
            partial(identities.find_user, platform=platform, puid=platform_user_id)
        )
        name = normalize_username(username)
        if found is not None and display_name in (None, found[1]) and name in (None, found[2]):
            return found[0]
        return await self._write(
            partial(
                identities.resolve_user,
                platform=platform,
                puid=platform_user_id,
                display_name=display_name,
                username=name,
                now=time.time(),
            )
        )

    async def find_by_username(self, username: str) -> list[Identity]:
        name = normalize_username(username)
        if name is None:
            return []
        return await self._read(partial(identities.find_by_username, username=name))

    async def find_user(self, platform: str, platform_user_id: str) -> str | None:
        found = await self._read(
            partial(identities.find_user, platform=platform, puid=platform_user_id)
        )
        return None if found is None else found[0]

    async def create_link_code(self, user_id: str, ttl_seconds: float = 600) -> str:
        now = time.time()
        return await self._write(
            partial(links.create_link_code, user_id=user_id, expires_at=now + ttl_seconds, now=now)
        )

    async def identities(self, user_id: str) -> list[Identity]:
        return await self._read(partial(links.identities, user_id=user_id))

    async def peek_link_code(self, code: str) -> str | None:
        return await self._read(partial(links.peek_link_code, code=code, now=time.time()))

    async def redeem_link_code(
        self, code: str, platform: str, platform_user_id: str, notice: str = ""
    ) -> str | None:
        return await self._write(
            partial(
                links.redeem_link_code,
                code=code,
                platform=platform,
                puid=platform_user_id,
                notice=notice,
                now=time.time(),
                memory_limit=self.memory_limit,
            )
        )

    async def detach_identity(
        self,
        app_name: str,
        platform: str,
        platform_user_id: str,
        state: Mapping[str, Any],
        notice: str = "",
    ) -> str | None:
        # Only `user:` keys (None = no value); fails here, early, on a value JSON cannot hold.
        encoded = [(k, v) for k, v in encode_delta(state).user if v is not None]
        return await self._write(
            partial(
                links.detach_identity,
                app=app_name,
                platform=platform,
                puid=platform_user_id,
                state=encoded,
                notice=notice,
                now=time.time(),
            )
        )

    async def notices(self, platform: str, platform_user_id: str) -> list[Notice]:
        return await self._read(
            partial(links.notices, platform=platform, puid=platform_user_id), snapshot=False
        )

    async def drop_notices(self, platform: str, platform_user_id: str, up_to: int) -> None:
        await self._write(
            partial(links.drop_notices, platform=platform, puid=platform_user_id, up_to=up_to)
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
                inbox.inbox_put,
                platform=platform,
                message_id=message_id,
                payload=encoded,
                user_id=user_id,
                now=time.time(),
            )
        )

    async def inbox_done(self, platform: str, message_id: str) -> None:
        await self._write(
            partial(inbox.inbox_done, platform=platform, message_id=message_id, now=time.time())
        )

    async def inbox_pending(
        self, platform: str | None = None, limit: int | None = None
    ) -> list[InboxItem]:
        return await self._read(partial(inbox.inbox_pending, platform=platform, limit=limit))

    async def inbox_status(self, platform: str, message_id: str) -> InboxStatus | None:
        return await self._read(
            partial(inbox.inbox_status, platform=platform, message_id=message_id),
            snapshot=False,
        )

    async def inbox_earlier_pending(
        self, platform: str, message_id: str, user_id: str, since: float | None = None
    ) -> bool:
        return await self._read(
            partial(
                inbox.inbox_earlier_pending,
                platform=platform,
                message_id=message_id,
                user_id=user_id,
                since=since,
            ),
            snapshot=False,
        )

    # -- audit ------------------------------------------------------------------------------
    async def audit(self, actor: str, command: str, detail: str = "") -> None:
        await self._write(
            partial(
                audit.audit,
                actor_hash=hash_actor(self._salt, actor),
                command=command,
                detail=detail,
                now=time.time(),
            )
        )

    async def audit_count(self, actor: str, command: str, since: float) -> int:
        return await self._read(
            partial(
                audit.audit_count,
                actor_hash=hash_actor(self._salt, actor),
                command=command,
                since=since,
            )
        )
