"""KeyedLocks: one asyncio.Lock per key, for "one turn at a time per session" inside a process.

Shared by both stores' session locks and the core's per-user ordering; the table only holds keys
someone holds or waits for, so it does not grow with every session ever seen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass, field


@dataclass
class _LockEntry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # holders + waiters


class KeyedLocks:
    """FIFO asyncio locks by key, dropped when nobody holds or waits for them (bounded size)."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, _LockEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _LockEntry()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]
