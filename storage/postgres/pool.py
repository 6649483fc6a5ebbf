"""Connection pools, error translation and in-process keyed locks for the PostgreSQL backend."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg

from storage.types import StoreBusy, StoreError
from storage.urls import describe, hide_password, parse_postgres


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """Sizes and time limits. Every connection is a server process, so the pools stay small:
    35 per worker by default, so two workers fit PostgreSQL's default max_connections (100)."""

    # Statements outside turns (inbox, identities, new sessions, admin views).
    pool_size: int = 5
    # Turns in flight per process: each holds its session's lock connection, which also runs
    # its statements. More turns wait (up to lock_wait) for a free one.
    lock_connections: int = 30
    lock_wait: float = 60.0  # seconds a turn waits for another worker's lock -> StoreBusy
    statement_timeout: float = 30.0  # seconds -> StoreBusy
    connect_timeout: float = 10.0


def split_url(url: str, base: PoolSettings | None = None) -> tuple[str, PoolSettings]:
    """(URL for asyncpg, settings): the URL's pool options (storage.urls) override `base`.
    Raises storage.urls.UrlError for a URL the driver would misread."""
    parsed = parse_postgres(url)
    options: dict[str, Any] = dict(parsed.pool_options)  # names and types: storage.urls
    return parsed.dsn, replace(base or PoolSettings(), **options)


def _settings_from_url(url: str) -> set[str]:
    """Server settings the URL sets itself (query parameters); ours must not override them."""
    return set(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query))


async def create_pools(url: str, settings: PoolSettings) -> tuple[asyncpg.Pool, asyncpg.Pool]:
    """(data pool, lock pool). JIT is off: it only slows down short OLTP statements."""
    own = _settings_from_url(url)

    def server(**values: str) -> dict[str, str]:
        base = {"application_name": "switchboard", "jit": "off", **values}
        return {key: value for key, value in base.items() if key not in own}

    ms = lambda seconds: str(int(seconds * 1000))  # noqa: E731
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=1,
            max_size=settings.pool_size,
            timeout=settings.connect_timeout,
            reset=_keep_session,
            server_settings=server(statement_timeout=ms(settings.statement_timeout)),
        )
    except (
        OSError,
        ValueError,  # a URL parameter the driver refuses (e.g. ?sslmode=bogus)
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        TimeoutError,
    ) as exc:
        reason = hide_password(str(exc), url)
        raise StoreError(f"cannot open PostgreSQL at {describe(url)}: {reason}") from exc
    try:
        # Lock connections wait on advisory locks (lock_timeout bounds that wait), then run the
        # turn's statements (TurnConnections): those get the larger of the two limits.
        turn_limit = max(settings.statement_timeout, settings.lock_wait)
        lock_pool = await asyncpg.create_pool(
            url,
            min_size=0,
            max_size=settings.lock_connections,
            timeout=settings.connect_timeout,
            server_settings=server(
                lock_timeout=ms(settings.lock_wait), statement_timeout=ms(turn_limit)
            ),
        )
    except BaseException:
        await pool.close()
        raise
    return pool, lock_pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without the default reset query (a round trip after EVERY pool call): data
    connections never leave session state behind - no SET, LISTEN, cursor or advisory lock
    outlives a call (locks live on the lock pool, which keeps the default reset). asyncpg
    itself still rolls back a transaction left open before calling this."""


@asynccontextmanager
async def db_errors() -> AsyncIterator[None]:
    """Translate driver errors into the store's: StoreBusy for time limits, StoreError for a
    lost or unreachable server. Programming errors (bad SQL) propagate unchanged."""
    try:
        yield
    except (
        asyncpg.exceptions.QueryCanceledError,  # statement_timeout
        asyncpg.exceptions.LockNotAvailableError,  # lock_timeout
        asyncpg.exceptions.DeadlockDetectedError,
        asyncpg.exceptions.SerializationError,
        asyncpg.exceptions.TooManyConnectionsError,
        TimeoutError,  # pool.acquire(timeout=...)
    ) as exc:
        raise StoreBusy(f"database busy: {type(exc).__name__}") from exc
    except (
        OSError,
        asyncpg.exceptions.PostgresConnectionError,
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.AdminShutdownError,
    ) as exc:
        raise StoreError(f"database unavailable: {type(exc).__name__}") from exc
    except asyncpg.exceptions.InternalClientError as exc:
        # What asyncpg raises when the server dropped the connection under a statement that
        # had not started yet (e.g. a terminated backend): the connection is gone.
        raise StoreError(f"database connection lost: {exc}") from exc
    except asyncpg.exceptions.InterfaceError as exc:
        # asyncpg has no subclass for "pool is closed/closing"; other interface errors are bugs.
        if "pool is clos" in str(exc):
            raise StoreError("the store is closed") from exc
        if "released back to the pool" in str(exc):  # the pool took back a dead connection
            raise StoreError("database connection lost") from exc
        raise


def _alive(conn: asyncpg.Connection) -> bool:
    try:
        return not conn.is_closed()
    except asyncpg.exceptions.InterfaceError:  # the pool already took back a dead connection
        return False


@dataclass(eq=False)
class _Turn:
    key: tuple[str, str, str]
    conn: asyncpg.Connection
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)
    open: bool = True


class TurnConnections:
    """The connection holding a session's advisory lock also runs that turn's statements.

    One server process per turn instead of two (fewer round trips through the scheduler, half
    the connections), and a turn whose lock connection died cannot keep writing as if it still
    held the lock: its statements fail with it. Statements of other sessions, concurrent ones
    of the same turn (a task it spawned) and those after the turn use the data pool.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._current: ContextVar[_Turn | None] = ContextVar(f"pg-turn-{id(self)}", default=None)

    @asynccontextmanager
    async def bind(
        self, key: tuple[str, str, str], conn: asyncpg.Connection
    ) -> AsyncIterator[None]:
        turn = _Turn(key, conn)
        token = self._current.set(turn)
        try:
            yield
        finally:
            turn.open = False  # copies of the context (spawned tasks) fall back to the pool
            with contextlib.suppress(ValueError):  # exited in another context: an async
                self._current.reset(token)  # generator holding the lock, closed elsewhere
            async with turn.busy:  # a statement still running on it finishes first
                pass

    @asynccontextmanager
    async def connection(self, key: tuple[str, str, str]) -> AsyncIterator[asyncpg.Connection]:
        turn = self._current.get()
        if turn is not None and turn.open and turn.key == key and not turn.busy.locked():
            if not _alive(turn.conn):
                raise StoreError("the session lock was lost with its database connection")
            async with turn.busy:
                yield turn.conn
            return
        async with self._pool.acquire() as conn:
            yield conn
