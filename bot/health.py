"""The operator's HTTP endpoints (docs/architecture.md, "Health and metrics"), on HEALTH_PORT
and, in Telegram webhook mode, on the webhook server (PORT) too:

- `GET /healthz` - the process is alive: answered by the event loop itself, so a blocked loop
  fails it (by the platform's timeout), with the loop's current lag in the body;
- `GET /readyz` - 200 when the database answers, every configured platform is connected and
  the inbox backlog is below its bound; else 503 with a JSON body naming what is not ready;
- `GET /metrics` - bot.metrics in Prometheus text format (the inbox gauges read at scrape).

`serving` runs them on an aiohttp server of their own; Telegram's webhook server (an aiohttp
server too, adapters/telegram/adapter.py) adds the same routes with `add_routes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bot.metrics import CONTENT_TYPE, Metrics
from storage.types import InboxItem

log = logging.getLogger(__name__)

# Messages waiting unanswered past which the process is not ready: the platform's balancer
# then sends new work elsewhere until the backlog is worked off.
BACKLOG_LIMIT = 1000
# A database that does not answer within this is not ready (a scrape must not hang either).
CHECK_TIMEOUT = 2.0
# Every interface: a platform's health checker comes from outside the container.
LISTEN = "0.0.0.0"


class Platform(Protocol):
    """An adapter as readiness sees it."""

    name: str

    @property
    def connected(self) -> bool: ...


class PendingInbox(Protocol):
    async def inbox_pending(
        self, platform: str | None = None, limit: int | None = None
    ) -> list[InboxItem]: ...


@dataclass(frozen=True, slots=True)
class InboxReading:
    backlog: int  # at most the limit + 1: enough to say "above the bound"
    oldest_age: float  # seconds; 0 when nothing waits


class Health:
    """The checks behind /readyz and the inbox gauges of /metrics."""

    def __init__(
        self,
        store: PendingInbox,
        platforms: Sequence[Platform],
        metrics: Metrics,
        *,
        backlog_limit: int = BACKLOG_LIMIT,
        timeout: float = CHECK_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._platforms = platforms
        self._metrics = metrics
        self._limit = backlog_limit
        self._timeout = timeout
        self._clock = clock

    async def inbox(self) -> InboxReading:
        """Raises when the database does not answer (within the timeout)."""
        async with asyncio.timeout(self._timeout):
            items = await self._store.inbox_pending(limit=self._limit + 1)
        oldest = min((i.received_at for i in items), default=None)
        age = 0.0 if oldest is None else max(self._clock() - oldest, 0.0)
        reading = InboxReading(len(items), age)
        self._metrics.inbox(reading.backlog, reading.oldest_age)
        return reading

    async def not_ready(self) -> dict[str, str]:
        """What is not ready, by name ("database", a platform, "inbox"); empty when ready."""
        problems: dict[str, str] = {}
        try:
            reading = await self.inbox()
        except Exception as exc:  # whatever the backend raises: the database is the problem
            # The type only: a driver's message may quote the URL.
            problems["database"] = f"not answering ({type(exc).__name__})"
        else:
            if reading.backlog > self._limit:
                problems["inbox"] = f"more than {self._limit} messages waiting"
        for platform in self._platforms:
            if not platform.connected:
                problems[platform.name] = "not connected"
        return problems

    def routes(self) -> web.Application:
        app = web.Application()
        self.add_routes(app.router)
        return app

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """/healthz /readyz /metrics on another server's router (the Telegram webhook's)."""
        router.add_get("/healthz", self._healthz)
        router.add_get("/readyz", self._readyz)
        router.add_get("/metrics", self._metrics_page)

    async def _healthz(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await asyncio.sleep(0)  # one trip round the loop: its lag now
        return web.json_response({"status": "alive", "loop_lag": loop.time() - asked})

    async def _readyz(self, request: web.Request) -> web.Response:
        problems = await self.not_ready()
        if problems:
            return web.json_response({"status": "not ready", "not_ready": problems}, status=503)
        return web.json_response({"status": "ready"})

    async def _metrics_page(self, request: web.Request) -> web.Response:
        with contextlib.suppress(Exception):  # a down database still gets its metrics scraped
            await self.inbox()
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})


@contextlib.asynccontextmanager
async def serving(health: Health, port: int, host: str = LISTEN) -> AsyncIterator[None]:
    """The endpoints on host:port for the duration of the block."""
    runner = web.AppRunner(health.routes(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()  # OSError: in use, or not allowed
        log.info("health endpoints on port %d: /healthz /readyz /metrics", port)
        yield
    finally:
        await runner.cleanup()
