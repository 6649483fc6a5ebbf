"""Connection pools, error translation and in-process keyed locks for the PostgreSQL backend."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import asyncpg

from storage.types import StoreBusy, StoreError


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """Sizes and time limits. Every connection is a server process, so the pools stay small."""

    pool_size: int = 10  # data connections per process (one statement per append)
    lock_connections: int = 20  # sessions one process can hold locked at once
    lock_wait: float = 60.0  # seconds a turn waits for another worker's lock -> StoreBusy
    statement_timeout: float = 30.0  # seconds -> StoreBusy
    connect_timeout: float = 10.0


# DATABASE_URL query parameters that size the pools (taken out before asyncpg sees the URL,
# which would pass them to the server as settings): ?pool_size=20&lock_connections=40.
_OURS = {"pool_size": int, "lock_connections": int, "lock_wait": float}


def split_url(url: str, base: PoolSettings | None = None) -> tuple[str, PoolSettings]:
    """(URL for asyncpg, settings): our query parameters override `base`."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ours = {key: value for key, value in query if key in _OURS}
    try:
        values = {key: _OURS[key](value) for key, value in ours.items()}
    except ValueError as exc:
        raise ValueError(f"bad pool setting in DATABASE_URL: {exc}") from exc
    settings = replace(base or PoolSettings(), **values)
    rest = urllib.parse.urlencode([(key, value) for key, value in query if key not in _OURS])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), settings


def _settings_from_url(url: str) -> set[str]:
    """Server settings the URL sets itself (query parameters); ours must not override them."""
    return set(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query))


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


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
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise StoreError(f"cannot open PostgreSQL at {redact(url)}: {exc}") from exc
    try:
        # Lock connections only wait on advisory locks: lock_timeout bounds that wait.
        lock_pool = await asyncpg.create_pool(
            url,
            min_size=0,
            max_size=settings.lock_connections,
            timeout=settings.connect_timeout,
            server_settings=server(lock_timeout=ms(settings.lock_wait), statement_timeout="0"),
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
    except asyncpg.exceptions.InterfaceError as exc:
        # asyncpg has no subclass for "pool is closed/closing"; other interface errors are bugs.
        if "pool is clos" in str(exc):
            raise StoreError("the store is closed") from exc
        raise


class KeyedLocks:
    """One asyncio.Lock per key, created on demand and dropped when nobody holds or awaits it
    (so the table does not grow with the number of sessions ever seen)."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
