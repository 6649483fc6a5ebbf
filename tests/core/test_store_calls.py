"""What one message costs the store: calls by method and SQLite writer jobs, counted by a proxy
over the real store (docs/architecture.md, "How one message travels").

Per message the core looks the identity up once, writes the inbox row once on receipt and once
when answered (a replay only reads it), and reads the session once per turn (the runner's tools
read the `user:` state again before they run: another chat may have changed it meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import agents
from agents.runner import Runner
from bot.conversation import Conversation
from bot.messages import Incoming
from storage import Store, open_store

from .conftest import NO_NETWORK, incoming

APP = "store-calls"
_CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="?")


class CountingStore:
    """The real store, counting each public method call and, on SQLite, the writer jobs each
    method submits (GroupCommitWriter.submit: one job is one write in a group commit)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()
        self.jobs: Counter[str] = Counter()
        writer = getattr(store, "writer", None)  # SQLite's; PostgreSQL has no single writer
        self.counts_jobs = writer is not None
        if writer is not None:
            writer.submit = self._counting_jobs(writer.submit)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            result = attr(*args, **kwargs)
            return _as_caller(name, result) if inspect.isawaitable(result) else result

        return counted

    def _counting_jobs(self, submit: Callable[..., Any]) -> Callable[..., Any]:
        def counted(fn: Any) -> Any:
            self.jobs[_CALLER.get()] += 1
            return submit(fn)

        return counted

    def reset(self) -> None:
        self.calls.clear()
        self.jobs.clear()


async def _as_caller(name: str, awaitable: Awaitable[Any]) -> Any:
    """Awaits the store's coroutine with `name` as the caller its writer jobs are counted for."""
    token = _CALLER.set(name)
    try:
        return await awaitable
    finally:
        _CALLER.reset(token)


@pytest.fixture
async def counted(any_db_url: str) -> AsyncIterator[tuple[CountingStore, Conversation]]:
    async with opened_core(any_db_url) as parts:
        yield parts


@contextlib.asynccontextmanager
async def opened_core(url: str) -> AsyncIterator[tuple[CountingStore, Conversation]]:
    """The composition root's parts (bot.app.open_app) with the store behind the proxy."""
    store = await open_store(url)
    async with store, agents.QuoteProvider(NO_NETWORK) as quotes:
        model = agents.make_model(None, NO_NETWORK, "offline", 5, 0)
        proxy = CountingStore(store)
        runner = Runner(proxy, agents.build_team(model, quotes), app_name=APP)  # type: ignore[arg-type]
        core = Conversation(proxy, runner, app_name=APP)  # type: ignore[arg-type]
        try:
            yield proxy, core
        finally:
            await model.aclose()


async def _received_and_answered(core: Conversation, message: Incoming) -> int:
    """As the Telegram and Discord adapters do: record on receipt, then the turn."""
    await core.accept(message)
    return await _answered(core, message)


async def _answered(core: Conversation, message: Incoming) -> int:
    return len([r async for r in core.handle(message) if not (r.partial or r.typing)])


async def _warm(proxy: CountingStore, core: Conversation) -> None:
    """The user and the chat's session exist (the steady state of a conversation)."""
    assert await _received_and_answered(core, incoming("hello"))
    proxy.reset()


# Every message: one identity lookup and the inbox row written on receipt; under the session
# lock the order check, the inbox row read again (another worker may have answered it), the
# session read once (as a turn loads it: get_context), the notices; the row marked done at the
# end.
PER_MESSAGE = {
    "resolve_user": 1,
    "inbox_put": 1,
    "session_lock": 1,
    "inbox_earlier_pending": 1,
    "inbox_status": 1,
    "get_context": 1,
    "notices": 1,
    "inbox_done": 1,
}
# A joke turn: the user's message, the manager's handover call and its result, the funny
# nerd's tell_joke call and its result, the answer; tell_joke reads the user's state afresh;
# one recall of the user's memories for the turn's memory block.
JOKE = {**PER_MESSAGE, "append_event": 6, "get_session": 1, "recall": 1}
# /watchlist add: one event carrying the state change.
COMMAND = {**PER_MESSAGE, "append_event": 1}


def _writes(calls: dict[str, int]) -> dict[str, int]:
    """SQLite writer jobs: one per write call."""
    return {k: n for k, n in calls.items() if k in ("append_event", "inbox_put", "inbox_done")}


def _check(proxy: CountingStore, calls: dict[str, int]) -> None:
    assert dict(proxy.calls) == calls
    if proxy.counts_jobs:
        assert dict(proxy.jobs) == _writes(calls)


async def test_a_joke_turn(counted: tuple[CountingStore, Conversation]) -> None:
    proxy, core = counted
    await _warm(proxy, core)
    assert await _received_and_answered(core, incoming("Tell me a joke about Python")) == 1
    _check(proxy, JOKE)  # before: 18 calls (10 writer jobs): 2 lookups, 3 inbox puts, 3 reads


async def test_a_command(counted: tuple[CountingStore, Conversation]) -> None:
    proxy, core = counted
    await _warm(proxy, core)
    assert await _received_and_answered(core, incoming("/watchlist add AAPL")) == 1
    _check(proxy, COMMAND)  # before: 13 calls (5 writer jobs)


async def test_a_message_handled_without_accept(
    counted: tuple[CountingStore, Conversation],
) -> None:
    """The console (and a redelivery after accept's receipt was used) records it in handle."""
    proxy, core = counted
    await _warm(proxy, core)
    assert await _answered(core, incoming("Tell me a joke about Python")) == 1
    _check(proxy, JOKE)  # before: 16 calls (9 writer jobs)


async def test_a_message_recorded_beside_its_turn(
    counted: tuple[CountingStore, Conversation],
) -> None:
    """Discord records a message in a task started just before its turn's: the turn waits for
    that record instead of looking the user up and writing the row itself."""
    proxy, core = counted
    await _warm(proxy, core)
    message = incoming("Tell me a joke about Python")
    accepted = asyncio.create_task(core.accept(message))
    answered = asyncio.create_task(_answered(core, message))
    assert await asyncio.gather(accepted, answered) == [None, 1]
    _check(proxy, JOKE)


async def test_a_replayed_message_reads_its_inbox_row_only(any_db_url: str) -> None:
    """Left unanswered by a crash: at the next start its row is there, so it is read (under the
    lock), not written again, before it is marked done."""
    message = incoming("Tell me a joke about Python")
    async with opened_core(any_db_url) as (proxy, core):
        await _warm(proxy, core)
        await core.accept(message)  # recorded, then the process "dies"
    async with opened_core(any_db_url) as (proxy, core):
        [replay] = await core.pending("telegram")
        proxy.reset()
        assert await _answered(core, replay) == 1
        _check(proxy, _without(JOKE, "inbox_put"))


def _without(calls: dict[str, int], name: str) -> dict[str, int]:
    return {k: n for k, n in calls.items() if k != name}
