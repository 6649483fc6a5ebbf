"""Per-user fairness in the core (no platform): rate and queue limits, the slow-down notice, the
typing signal, replays, and the order wait's bound. The real store, runner and offline model;
time is a hand-stepped clock, never a sleep."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from bot.app import App
from bot.conversation import ORDER_AGE, SLOW_DOWN, Conversation
from bot.fairness import FairnessGate, Verdict
from bot.messages import Incoming, Reply
from bot.settings import RateLimit
from testkit.helpers import Clock, wait_until

from .conftest import ADMIN, AppFactory, incoming


def core_of(
    app: App,
    *,
    rate: RateLimit | None = None,
    queue: int | None = None,
    typing_after: float | None = None,
    order_wait: float = 3.0,
    clock: Clock | None = None,
) -> Conversation:
    """A core on the app's store and runner with the limits under test."""
    return Conversation(
        app.store,
        app.runner,
        app_name=app.settings.app_name,
        admin_ids=app.settings.admin_ids,
        rate_limit=rate,
        queue_limit=queue,
        typing_after=typing_after,
        order_wait=order_wait,
        clock=clock or wall_clock(),
    )


def wall_clock() -> Clock:
    """A stepped clock that starts at the wall time the inbox records."""
    clock = Clock()
    clock.now = time.time()
    return clock


async def texts(core: Conversation, message: Incoming) -> list[str]:
    return [r.text async for r in core.handle(message) if not (r.partial or r.typing)]


async def all_replies(core: Conversation, message: Incoming) -> list[Reply]:
    return [r async for r in core.handle(message) if not r.partial]


@pytest.fixture
async def held(app: App) -> AsyncIterator[asyncio.Event]:
    """User 7's session is busy (a long turn) until the test sets the event."""
    await texts(core_of(app), incoming("hello", user="7"))
    user_id = await app.store.find_user("telegram", "7")
    assert user_id is not None
    release = asyncio.Event()
    locked = asyncio.Event()

    async def hold() -> None:
        async with app.store.session_lock(app.settings.app_name, user_id, "telegram:7"):
            locked.set()
            await release.wait()

    task = asyncio.create_task(hold())
    await locked.wait()
    yield release
    release.set()
    await task


async def test_a_flood_queues_five_refuses_the_rest_once_told_and_others_pass(
    app: App, held: asyncio.Event, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.conversation")
    core = core_of(app, queue=5)
    flood = [incoming(f"Tell me a joke {i}", user="7") for i in range(50)]
    tasks = [asyncio.create_task(texts(core, m)) for m in flood]  # arrival order 0..49
    refused = await asyncio.wait_for(asyncio.gather(*tasks[5:]), 30)
    # Refused at once while the first five wait for the busy session: one notice in all.
    assert [t for t in refused if t] == [[SLOW_DOWN]]
    assert refused[0] == [SLOW_DOWN]
    assert not any(t.done() for t in tasks[:5])
    # Meanwhile another user is answered.
    assert await asyncio.wait_for(texts(core, incoming("Tell me a joke", user="8")), 30)
    held.set()
    accepted = await asyncio.wait_for(asyncio.gather(*tasks[:5]), 30)
    assert all(len(t) == 1 and t[0] != SLOW_DOWN for t in accepted)
    # Nothing left to replay: the accepted ones answered, the refused ones closed and logged.
    assert await core.pending("telegram") == []
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 45


async def test_rate_limit_refills_over_time_and_tells_once_per_burst(app: App) -> None:
    clock = wall_clock()
    core = core_of(app, rate=RateLimit(3, 60.0), clock=clock)

    async def say(text: str) -> list[str]:
        return await texts(core, incoming(text, user="9"))

    for i in range(3):
        assert (await say(f"Tell me a fact {i}"))[0] != SLOW_DOWN
    assert await say("one more") == [SLOW_DOWN]
    assert await say("and another") == []  # same burst: not told again
    clock.now += 20  # a third of the window: one message's worth
    assert (await say("Tell me a joke"))[0] != SLOW_DOWN
    assert await say("too soon") == []
    clock.now += 120  # quiet for longer than a burst: full bucket, and told again next time
    for i in range(3):
        assert (await say(f"Tell me a joke {i}"))[0] != SLOW_DOWN
    assert await say("over again") == [SLOW_DOWN]
    assert await core.pending("telegram") == []


async def test_admins_are_not_limited(app: App) -> None:
    core = core_of(app, rate=RateLimit(1, 3600.0), queue=1)
    for i in range(5):
        got = await texts(core, incoming("/stats", user=ADMIN[1], message_id=f"a{i}"))
        assert got and got[0] != SLOW_DOWN


async def test_replayed_messages_are_never_refused(app_factory: AppFactory) -> None:
    backlog = [incoming(f"Tell me a joke {i}", user="11") for i in range(12)]
    async with app_factory() as app:
        for message in backlog:
            await app.core.accept(message)  # recorded, then the process "dies"
    async with app_factory() as app:
        core = core_of(app, rate=RateLimit(2, 3600.0), queue=2)
        pending = await core.pending("telegram")
        assert [m.message_id for m in pending] == [m.message_id for m in backlog]
        answers = await asyncio.wait_for(asyncio.gather(*(texts(core, m) for m in pending)), 60)
        assert all(len(a) == 1 and a[0] != SLOW_DOWN for a in answers)
        # New messages still count against the limits.
        got = [await texts(core, incoming(f"new {i}", user="11")) for i in range(3)]
        assert got[2] == [SLOW_DOWN]


async def test_typing_is_signalled_once_the_turn_holds_its_lock(
    app: App, held: asyncio.Event
) -> None:
    core = core_of(app, typing_after=0.0)
    seen: list[Reply] = []

    async def collect() -> None:
        async for reply in core.handle(incoming("Tell me a joke", user="7", message_id="t1")):
            seen.append(reply)

    task = asyncio.create_task(collect())
    await wait_until(lambda: recorded(app, "t1"))
    assert seen == []  # waiting behind the busy session: no typing yet
    held.set()
    await asyncio.wait_for(task, 30)
    assert seen[0].typing and seen[0].text == "" and not seen[0].private
    assert sum(r.typing for r in seen) == 1
    assert seen[-1].text and not seen[-1].typing


async def test_a_quick_answer_comes_without_typing(app: App) -> None:
    core = core_of(app, typing_after=30.0)
    got = await all_replies(core, incoming("Tell me a joke", user="12"))
    assert len(got) == 1 and not got[0].typing and got[0].text


async def test_a_refused_slash_command_is_always_answered(app: App) -> None:
    core = core_of(app, rate=RateLimit(1, 3600.0))
    slash = {"interaction": True, "ephemeral": True}
    assert await texts(core, incoming("/help", user="13", extra=slash))
    assert await texts(core, incoming("/help", user="13", extra=slash)) == [SLOW_DOWN]
    # Each interaction needs an answer (only its user sees it); chat messages stay quiet.
    assert await texts(core, incoming("/help", user="13", extra=slash)) == [SLOW_DOWN]
    assert await texts(core, incoming("hello", user="13")) == []


async def test_a_message_stuck_long_ago_does_not_hold_up_the_next(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """One message that was never answered (e.g. a reply the platform refused, left pending):
    the user's next messages wait for it only while it could still be in a worker's hands."""
    caplog.set_level(logging.WARNING, logger="bot.conversation")
    clock = wall_clock()
    await texts(core_of(app), incoming("hello", user="14"))
    await app.core.accept(incoming("Tell me a joke", user="14", message_id="stuck"))
    assert await recorded(app, "stuck")
    # Young, it may be another worker's: the next message lets it go first (here: waits out
    # order_wait, then answers with a warning).
    core = core_of(app, order_wait=0.05, clock=clock)
    assert await texts(core, incoming("Tell me a fact", user="14"))
    assert any("still unanswered" in r.getMessage() for r in caplog.records)
    caplog.clear()
    # Past ORDER_AGE nobody is answering it: no wait at all (order_wait would be 5 minutes).
    clock.now += ORDER_AGE + 1
    core = core_of(app, order_wait=300.0, clock=clock)
    assert await asyncio.wait_for(texts(core, incoming("Tell me a fact", user="14")), 20)
    assert not any("still unanswered" in r.getMessage() for r in caplog.records)


async def recorded(app: App, message_id: str) -> bool:
    return any(i.message_id == message_id for i in await app.store.inbox_pending("telegram"))


def test_the_gate_forgets_idle_users() -> None:
    """Memory follows the users active lately, not every user ever seen."""
    clock = Clock()
    gate = FairnessGate(RateLimit(20, 60.0), 5, clock=clock)
    for n in range(20_000):
        verdict, ticket = gate.admit(("telegram", str(n)))
        assert verdict is Verdict.ACCEPT
        ticket.release()
        clock.now += 0.1  # each user's bucket is full again a minute later
    assert gate.tracked < 2_000
    busy = ("telegram", "busy")
    tickets = [gate.admit(busy)[1] for _ in range(5)]
    clock.now += 3600
    for n in range(5_000):
        gate.admit(("discord", str(n)))[1].release()
    assert gate.waiting(busy) == 5  # a user with waiting messages is never forgotten
    for ticket in tickets:
        ticket.release()
        ticket.release()  # idempotent
    assert gate.waiting(busy) == 0
