"""Exactly-once answers and ordering: redeliveries, bursts, concurrency, crashes, failures."""

from __future__ import annotations

import asyncio

import pytest

from bot.conversation import FAILED
from bot.messages import Reply
from testkit.helpers import wait_until

from .conftest import NO_NETWORK, AppFactory, incoming, make_settings, replies, say


async def test_a_redelivered_message_is_answered_once(app) -> None:
    message = incoming("Tell me a joke about Rust", message_id="update-1")
    assert len(await replies(app, message)) == 1
    assert await replies(app, message) == []
    # Delivered twice at the same time (e.g. two polls racing): still one answer.
    twin = incoming("Tell me a joke about Go", message_id="update-2")
    both = await asyncio.gather(replies(app, twin), replies(app, twin))
    assert sorted(len(r) for r in both) == [0, 1]
    user_id = await app.store.find_user("telegram", "42")
    stats = await app.store.stats(app.settings.app_name, user_id)
    assert stats.turns == 2


async def test_a_burst_from_one_user_is_answered_in_order(app) -> None:
    answered: list[int] = []

    async def send(i: int) -> None:
        async for reply in app.core.handle(incoming(f"Tell me a joke about topic{i}")):
            if not (reply.partial or reply.typing):
                answered.append(i)

    tasks = [asyncio.create_task(send(i)) for i in range(20)]  # arrival order 0..19
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    assert answered == list(range(20))
    user_id = await app.store.find_user("telegram", "42")
    events = await app.store.history(app.settings.app_name, user_id, limit=500)
    said = [e.text for e in events if e.author == "user"]
    assert said == [f"Tell me a joke about topic{i}" for i in range(20)]


async def test_different_users_do_not_wait_for_each_other(app) -> None:
    await say(app, "hello", user="1")  # creates user 1 and its session
    user_1 = await app.store.find_user("telegram", "1")
    assert user_1 is not None
    blocker = app.store.session_lock(app.settings.app_name, user_1, "telegram:1")
    await blocker.__aenter__()  # user 1's session is busy (a long turn, another worker...)
    try:
        slow = asyncio.create_task(replies(app, incoming("Tell me a joke", user="1")))
        fast = await asyncio.wait_for(replies(app, incoming("Tell me a joke", user="2")), 30)
        assert fast and not slow.done()
    finally:
        await blocker.__aexit__(None, None, None)
    assert await asyncio.wait_for(slow, 30)


async def test_accept_then_pending_until_answered(app) -> None:
    message = incoming("Tell me a fact about owls", message_id="update-7")
    await app.core.accept(message)
    assert [m.message_id for m in await app.core.pending("telegram")] == ["update-7"]
    await app.core.accept(message)  # delivered again: still one row
    assert [m.message_id for m in await app.core.pending("telegram")] == ["update-7"]
    assert await app.core.pending("discord") == []
    assert len(await replies(app, message)) == 1
    assert await app.core.pending("telegram") == []


async def test_a_reply_not_confirmed_is_answered_again_after_a_crash(
    app_factory: AppFactory,
) -> None:
    message = incoming("Tell me a joke about Haskell", message_id="update-9")
    async with app_factory() as app:
        handle = app.core.handle(message)
        first: Reply | None = None
        async for reply in handle:
            if not (reply.partial or reply.typing):
                first = reply
                break  # the adapter "crashed" before coming back: the send is unconfirmed
        await handle.aclose()
        assert first is not None
    async with app_factory() as app:
        [again] = await app.core.pending("telegram")
        assert again == message
        [reply] = await replies(app, again)
        assert reply.text == first.text  # the stored answer, not a second model call
        user_id = await app.store.find_user("telegram", "42")
        assert (await app.store.stats(app.settings.app_name, user_id)).turns == 1
        assert await app.core.pending("telegram") == []


async def test_failures_become_a_short_reply_not_an_exception(app_factory: AppFactory) -> None:
    async with app_factory() as app:
        await app.store.close()  # the database goes away under the core
        got = await replies(app, incoming("Tell me a joke"))
        assert [r.text for r in got] == [FAILED]


@pytest.mark.postgres
async def test_two_workers_on_postgres_answer_a_message_once(postgres_db_url: str) -> None:
    """Two processes' worth of core (separate stores and locks) share one PostgreSQL database."""
    from bot.app import open_app

    settings = make_settings(postgres_db_url, APP_NAME="core-two-workers")
    async with open_app(settings) as one, open_app(settings) as two:
        message = incoming("Tell me a joke about SQL", user="4343")
        got = await asyncio.gather(replies(one, message), replies(two, message))
        assert sorted(len(r) for r in got) == [0, 1]
        user_id = await wait_until(lambda: one.store.find_user("telegram", "4343"))
        stats = await one.store.stats(settings.app_name, user_id)
        assert stats.turns == 1


async def test_a_locked_database_gets_a_busy_reply_then_recovers(db_url: str) -> None:
    """Another process holds SQLite's write lock past the busy timeout: StoreBusy -> BUSY."""
    import sqlite3

    import agents
    from agents.runner import Runner
    from bot.conversation import BUSY, Conversation
    from storage.sqlite import SqliteStore

    store = await SqliteStore.open(db_url, busy_timeout=0.2)
    async with store, agents.QuoteProvider(NO_NETWORK) as quotes:
        model = agents.make_model(None, NO_NETWORK, "offline", 5, 0)
        runner = Runner(store, agents.build_team(model, quotes), app_name="busy")
        core = Conversation(store, runner, app_name="busy")
        assert await replies_of(core, incoming("hello"))  # the user exists now
        other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")  # e.g. a second bot process mid-write
            got = await replies_of(core, incoming("Tell me a joke"))
            assert [r.text for r in got] == [BUSY]
        finally:
            other.execute("ROLLBACK")
            other.close()
        got = await replies_of(core, incoming("Tell me a joke"))
        assert got and got[0].text != BUSY
        await model.aclose()


async def replies_of(core, message) -> list[Reply]:
    return [r async for r in core.handle(message) if not (r.partial or r.typing)]
