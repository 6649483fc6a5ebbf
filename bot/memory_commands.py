"""/memory: the user's long-term memories, listed, forgotten one by one or all at once.

Every reply is private (memories are about one person). Changes are recorded like every command's:
a `system` event whose `memory_changes` the store applies with it, so a redelivered command
changes nothing twice. Clearing asks first, like /forgetme: `/memory clear` notes the request
(MEMORY_CLEAR_KEY) and `/memory clear confirm` within MEMORY_CLEAR_SECONDS does it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from agents.profile import MEMORY_CLEAR_KEY
from bot.messages import Action, Reply
from storage import Store
from storage.types import Memory, MemoryChange

MEMORY_CLEAR_SECONDS = 300
MEMORY_USAGE = "Usage: /memory, /memory forget N, /memory clear (then /memory clear confirm)"
NOTHING = (
    "I don't remember anything about you yet. Tell me about yourself, e.g. "
    '"remember that I live in Lisbon". (/prefs shows your preferences.)'
)
FORGET_BUTTONS = 10  # "Forget N" buttons under the list: the first ten


class Record(Protocol):
    """Records a command's effect as a `system` event (bot.commands.UserCommands._record)."""

    async def __call__(
        self,
        suffix: str,
        text: str,
        delta: dict[str, Any],
        memory_changes: tuple[MemoryChange, ...] = (),
    ) -> bool: ...


def _private(text: str, *actions: Action) -> list[Reply]:
    return [Reply(text, private=True, actions=actions)]


def memory_list(memories: Sequence[Memory]) -> str:
    lines = [f"What I remember about you ({len(memories)}):"]
    lines += [f"{n}. {' '.join(m.text.split())}" for n, m in enumerate(memories, 1)]
    lines += ["", "/memory forget N forgets one; /memory clear forgets them all."]
    return "\n".join(lines)


class MemoryCommands:
    def __init__(self, store: Store, app_name: str) -> None:
        self._store = store
        self._app = app_name

    async def run(
        self, user_id: str, state: Mapping[str, Any], record: Record, args: Sequence[str]
    ) -> list[Reply]:
        words = [a.lower() for a in args]
        if not words or words == ["list"]:
            return await self._list(user_id)
        if words[0] == "forget" and len(words) == 2:
            return await self._forget(user_id, record, args[1])
        if words[0] == "clear" and len(words) <= 2:
            return await self._clear(user_id, state, record, words[1:])
        return _private(MEMORY_USAGE)

    async def _memories(self, user_id: str) -> list[Memory]:
        return await self._store.memories(self._app, user_id)

    async def _list(self, user_id: str) -> list[Reply]:
        memories = await self._memories(user_id)
        if not memories:
            return _private(NOTHING)
        buttons = [
            Action(f"Forget {n}", f"/memory forget {m.id}")
            for n, m in enumerate(memories[:FORGET_BUTTONS], 1)
        ]
        return _private(memory_list(memories), *buttons, Action("Forget all", "/memory clear"))

    async def _forget(self, user_id: str, record: Record, which: str) -> list[Reply]:
        """`which`: a number from the list, or a memory's id (what the buttons send: it still
        names the same memory after the list changed)."""
        memories = await self._memories(user_id)
        memory = _pick(memories, which)
        if memory is None:
            shown = which[:20]
            return _private(f"There is no memory {shown!r}: /memory lists them with numbers.")
        text = f"Forgot: {memory.text}"
        await record("memory", text, {}, (MemoryChange("delete", memory_id=memory.id),))
        return _private(text)

    async def _clear(
        self, user_id: str, state: Mapping[str, Any], record: Record, words: list[str]
    ) -> list[Reply]:
        if words == ["cancel"]:
            await record("memory", "Kept the memories.", {MEMORY_CLEAR_KEY: None})
            return _private("Kept: I still remember everything I did.")
        if words not in ([], ["confirm"]):
            return _private(MEMORY_USAGE)
        memories = await self._memories(user_id)
        if not memories:
            return _private(NOTHING)
        if not words:
            return await self._ask(record, len(memories))
        asked = state.get(MEMORY_CLEAR_KEY)
        if not isinstance(asked, int | float) or time.time() - asked > MEMORY_CLEAR_SECONDS:
            return _private("Nothing to confirm (or it expired). Send /memory clear first.")
        changes = tuple(MemoryChange("delete", memory_id=m.id) for m in memories)
        text = f"Done: I forgot all {len(memories)} memories about you."
        await record("memory", text, {MEMORY_CLEAR_KEY: None}, changes)
        return _private(text)

    async def _ask(self, record: Record, count: int) -> list[Reply]:
        note = "The user asked to clear their memories; waiting for /memory clear confirm."
        await record("memory", note, {MEMORY_CLEAR_KEY: time.time()})
        text = (
            f"This forgets all {count} memories I have about you (your name, topics and "
            f"watchlist stay). To go ahead, send /memory clear confirm within "
            f"{MEMORY_CLEAR_SECONDS // 60} minutes."
        )
        confirm = Action("Forget them all", "/memory clear confirm")
        return _private(text, confirm, Action("Cancel", "/memory clear cancel"))


def _pick(memories: Sequence[Memory], which: str) -> Memory | None:
    if which.isdigit():
        n = int(which)
        return memories[n - 1] if 1 <= n <= len(memories) else None
    return next((m for m in memories if m.id == which.lower()), None)
