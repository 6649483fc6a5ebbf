"""The user's long-term memories as the agents see them: the memory block of each turn, and the
reader a tool's ToolContext searches through.

The memory block is ONE system message the runner puts immediately before the current user
message, never into the head of the prompt: the head (instructions, earlier turns) stays
byte-identical from one turn to the next, so providers' prompt caches keep hitting. Its format is
a contract with the offline model (agents/offline.py parses it):

    Memories about the user (most relevant first):
    - [<memory id>] <text>

or the single line `Memories about the user: none.`, at most `max_chars` characters in all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from storage.types import Memory

MEMORY_PROMPT_CHARS = 1500  # the block's default bound (MEMORY_PROMPT_CHARS)
MEMORY_HEADER = "Memories about the user (most relevant first):"
NO_MEMORIES = "Memories about the user: none."
QUERY_CHARS = 1000  # of the message searched with: a pasted essay must not cost more


class MemorySource(Protocol):
    """The store's memory reads (storage.protocols.MemoryStore), as the agents use them."""

    async def memories(self, app_name: str, user_id: str) -> list[Memory]: ...

    async def recall(
        self, app_name: str, user_id: str, query: str, *, relevant: int = 8, recent: int = 4
    ) -> list[Memory]: ...


class UserMemories:
    """One user's memories, bound by the runner to (app, user): what a tool may read. A tool
    never names a user, so it can never reach another user's memories."""

    def __init__(self, source: MemorySource, app_name: str, user_id: str) -> None:
        self._source = source
        self._app_name = app_name
        self._user_id = user_id

    async def search(self, query: str, *, recent: int = 4) -> list[Memory]:
        """The best matches of `query`, then up to `recent` of the latest others."""
        return await self._source.recall(
            self._app_name, self._user_id, query[:QUERY_CHARS], recent=recent
        )

    async def all(self) -> list[Memory]:
        return await self._source.memories(self._app_name, self._user_id)


def memory_line(memory: Memory) -> str:
    """One memory as the block lists it: on one line whatever its text holds."""
    return f"- [{memory.id}] {' '.join(memory.text.split())}"


def format_memories(memories: Sequence[Memory], max_chars: int = MEMORY_PROMPT_CHARS) -> str:
    """The block's text: as many memories as fit in `max_chars`, in the order given (most
    relevant first); one too long to fit is skipped so shorter ones after it still fit."""
    lines = [MEMORY_HEADER]
    size = len(MEMORY_HEADER)
    for memory in memories:
        line = memory_line(memory)
        if size + 1 + len(line) <= max_chars:
            lines.append(line)
            size += 1 + len(line)
    return "\n".join(lines) if len(lines) > 1 else NO_MEMORIES


async def memory_message(
    memories: UserMemories, text: str, max_chars: int = MEMORY_PROMPT_CHARS, *, recent: int = 4
) -> dict[str, Any]:
    """The turn's memory block as a chat message: one recall with the user's message (and up to
    `recent` of the latest memories besides the matches)."""
    found = await memories.search(text, recent=recent)
    return {"role": "system", "content": format_memories(found, max_chars)}
