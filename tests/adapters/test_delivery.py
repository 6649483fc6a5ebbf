"""adapters.delivery through the real core: a turn is acknowledged only when every reply went
out; one left early stays pending. And the task set and pause every platform adapter uses."""

from __future__ import annotations

import asyncio

import pytest

from adapters.delivery import Tasks, deliver_turn, pause
from bot.app import open_app
from bot.messages import ConversationCore, Reply
from tests.core.conftest import incoming, make_settings


async def _pending_ids(core: ConversationCore) -> list[str]:
    return [i.message_id for i in await core.pending("telegram")]


async def test_a_turn_left_early_stays_pending_and_a_full_one_is_acknowledged(db_url: str) -> None:
    message = incoming("Tell me a joke")
    shown: list[Reply] = []

    async def refuse(reply: Reply) -> bool:
        shown.append(reply)
        return False  # the platform did not take it

    async def take(reply: Reply) -> bool:
        shown.append(reply)
        return True

    async with open_app(make_settings(db_url)) as app:
        assert await deliver_turn(app.core.handle(message), refuse) is False
        assert len(shown) == 1
        assert await _pending_ids(app.core) == [message.message_id]
        assert await deliver_turn(app.core.handle(message), take) is True
        assert shown[-1].text and not shown[-1].partial
        assert await _pending_ids(app.core) == []


async def test_a_failing_show_propagates_and_leaves_the_turn_pending(db_url: str) -> None:
    message = incoming("Tell me a joke")

    async def fail(reply: Reply) -> bool:
        raise ConnectionError("platform down")

    async with open_app(make_settings(db_url)) as app:
        with pytest.raises(ConnectionError):
            await deliver_turn(app.core.handle(message), fail)
        assert await _pending_ids(app.core) == [message.message_id]


async def test_drain_waits_for_tasks_started_meanwhile() -> None:
    tasks = Tasks()
    release = asyncio.Event()
    finished: list[str] = []

    async def later() -> None:
        finished.append("later")

    async def turn() -> None:
        await release.wait()
        tasks.spawn(later())  # e.g. a reply to try again
        finished.append("turn")

    tasks.spawn(turn())
    assert await tasks.drain(timeout=0.05) == 1  # still waiting for `release`
    release.set()
    assert await tasks.drain() == 0
    assert finished == ["turn", "later"] and len(tasks) == 0


async def test_pause_ends_when_stop_is_set() -> None:
    stop = asyncio.Event()
    waiting = asyncio.ensure_future(pause(60, stop))
    stop.set()
    await asyncio.wait_for(waiting, 5)  # long before the 60 s
