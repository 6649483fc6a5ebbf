"""What every adapter does with a turn, whatever the platform: deliver its replies under the
core's acknowledgement contract, keep the work that stop() must wait for, pause before trying
an undelivered reply again.

The contract (docs/architecture.md, "the turn contract"): `ConversationCore.handle` is an async
generator, and the core stores the message as answered when the adapter resumes it after the
last reply, i.e. once that reply went out. An adapter that stops early (a send failed) must
close the generator without resuming it, so the message stays pending and is tried again.
`deliver_turn` is the one place that does so; every adapter sends its turns through it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

from bot.messages import Reply

T = TypeVar("T")

# Shows one reply on the platform; False when it did not go out (the turn stops unacknowledged).
Show = Callable[[Reply], Awaitable[bool]]


async def deliver_turn(replies: AsyncGenerator[Reply, None], show: Show) -> bool:
    """Hand each reply of a turn to `show`; True once the turn was acknowledged (every reply
    went out and the core recorded the message answered).

    A False from `show`, or an exception out of it, leaves the loop before the generator is
    resumed: `aclosing` closes it then, and the core does not record the acknowledgement.
    """
    async with contextlib.aclosing(replies) as stream:
        async for reply in stream:
            if not await show(reply):
                return False
    return True


class Tasks:
    """The work an adapter's stop() waits for: turns, recordings, replies to try again."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._running)

    def spawn(self, work: Awaitable[T]) -> asyncio.Task[T]:
        """Run `work` as a task that `drain` waits for; it is forgotten once done."""
        task = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def drain(self, timeout: float | None = None) -> int:
        """Wait until no task runs, including those started meanwhile (a turn may spawn a
        reply to try again), for at most `timeout` seconds; how many still run."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._running:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                break
            await asyncio.wait(set(self._running), timeout=left)
        return len(self._running)


async def pause(seconds: float, stop: asyncio.Event) -> None:
    """Wait `seconds`, or less if `stop` is set first: a stop never waits out a retry delay."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
