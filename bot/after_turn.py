"""The core's post-turn work: once a turn's answer was delivered (its inbox row marked answered),
the runner's after-turn jobs (compaction, memory extraction) run in a background task - never on
the turn's path - under the session's lock, one task per session at a time, in turn order.
`close()` (the app's stop) waits for the tasks in flight, then cancels what is left.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from storage import SessionStore

log = logging.getLogger(__name__)

STOP_WAIT = 10.0  # seconds stop() gives the jobs in flight before cancelling them


class AfterTurnRunner(Protocol):
    """What this needs of agents.runner.Runner."""

    @property
    def has_after_turn(self) -> bool: ...

    async def after_turn(self, user_id: str, session_id: str, invocation_id: str) -> None: ...


class AfterTurn:
    def __init__(
        self,
        store: SessionStore,
        runner: AfterTurnRunner,
        app_name: str,
        *,
        stop_wait: float = STOP_WAIT,
    ) -> None:
        self._store = store
        self._runner = runner
        self._app = app_name
        self._stop_wait = stop_wait
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[tuple[str, str], asyncio.Task[None]] = {}  # session -> its newest

    def start(self, user_id: str, session_id: str, invocation_id: str) -> None:
        """Schedule the jobs of this turn (nothing when the runner has none). Returns at once."""
        if not self._runner.has_after_turn:
            return
        key = (user_id, session_id)
        task = asyncio.create_task(self._run(self._last.get(key), key, invocation_id))
        self._tasks.add(task)
        self._last[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))

    async def _run(
        self, previous: asyncio.Task[None] | None, key: tuple[str, str], invocation_id: str
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})  # the session's earlier turn goes first
        user_id, session_id = key
        try:
            async with self._store.session_lock(self._app, user_id, session_id):
                await self._runner.after_turn(user_id, session_id, invocation_id)
        except Exception:
            log.exception("after-turn jobs of %s failed", invocation_id)

    def _forget(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._last.get(key) is task:
            del self._last[key]

    async def wait(self) -> None:
        """Until no job is in flight (tests and benchmarks: the work a turn left is done)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        """Wait up to `stop_wait` for the jobs in flight, then cancel the rest."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=self._stop_wait)
        for task in late:
            task.cancel()
        if late:
            log.warning("%d after-turn job(s) cancelled at stop", len(late))
            await asyncio.wait(late)
