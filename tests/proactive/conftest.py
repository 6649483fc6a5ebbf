"""Fixtures for the proactive-message tests (issue 15), core level: the real app (store on both
backends, offline model, core), the quotes emulator scripting prices, the real scheduler ticked
by the test on a hand-stepped clock, and a sender that records what it was given."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.app import App, open_app
from bot.messages import Outgoing, Reply, SendResult
from bot.scheduler import Scheduler
from testkit.emulators.quotes import QuotesEmulator
from testkit.helpers import Clock
from tests.core.conftest import incoming, make_settings

POLL = 60.0


class RecordingSender:
    """An OutgoingSender for a platform: records each message; `answer` decides the result
    (SENT by default)."""

    def __init__(self, name: str = "telegram") -> None:
        self.name = name
        self.sent: list[Outgoing] = []
        self.tried: list[Outgoing] = []
        self.answer: Callable[[Outgoing], SendResult] = lambda item: SendResult.SENT

    async def send_outgoing(self, item: Outgoing) -> SendResult:
        self.tried.append(item)
        result = self.answer(item)
        if result is SendResult.SENT:
            self.sent.append(item)
        return result

    @property
    def texts(self) -> list[str]:
        return [item.reply.text for item in self.sent]


@pytest.fixture
async def market() -> AsyncIterator[QuotesEmulator]:
    async with QuotesEmulator() as emulator:
        yield emulator


class TickingClock(Clock):
    """The hand-stepped clock, moving on by a millisecond at each reading, as a real one
    would: commands in a row get distinct creation times (what lists are ordered by)."""

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


@pytest.fixture
def clock() -> Clock:
    clock = TickingClock()
    clock.now = datetime(2026, 12, 1, 15, 0, tzinfo=ZoneInfo("UTC")).timestamp()  # a Tuesday
    return clock


OpenApp = Callable[..., contextlib.AbstractAsyncContextManager[App]]


@pytest.fixture
def open_proactive(any_db_url: str, market: QuotesEmulator, clock: Clock) -> OpenApp:
    """`async with open_proactive() as app:` — the real app on either backend, its clock the
    test's; reopen it to 'restart'."""

    def factory(url: str | None = None) -> contextlib.AbstractAsyncContextManager[App]:
        settings = make_settings(url or any_db_url, QUOTES_BASE_URL=market.base_url)
        return open_app(settings, clock=clock)

    return factory


def scheduler(app: App, clock: Clock, *senders: RecordingSender) -> Scheduler:
    """The real scheduler on the test's clock, without jitter, polling every POLL seconds."""
    assert app.quotes is not None
    app_name = app.settings.app_name
    return Scheduler(
        app.store, app_name, app.quotes, senders, poll_seconds=POLL, clock=clock, jitter=0
    )


async def say(app: App, text: str, **kwargs: object) -> list[Reply]:
    """The replies with content to one message (kwargs: tests.core.conftest.incoming's)."""
    message = incoming(text, **kwargs)  # type: ignore[arg-type]
    return [r async for r in app.core.handle(message) if not (r.partial or r.typing)]


async def text_of(app: App, text: str, **kwargs: object) -> str:
    return "\n".join(r.text for r in await say(app, text, **kwargs))
