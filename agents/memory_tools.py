"""The memory tools: remember, update, forget and search the calling user's memories.

Their names are a contract with the offline model (agents/offline.py). Every read and write goes
through the ToolContext, bound by the runner to the calling user: an id of another user's memory
is simply not found. Text longer than the store keeps is refused (the model can shorten it), not
silently cut.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.agent import Tool, ToolContext
from storage.common import MEMORY_TEXT_MAX
from storage.types import Memory

_ID_SHOWN = 40  # of an unknown id echoed back


def clean_fact(raw: Any) -> str | dict[str, str]:
    """The fact on one line, or an error result for the model."""
    text = " ".join(str(raw or "").split())
    if not text:
        return {"error": "the fact is empty"}
    if len(text) > MEMORY_TEXT_MAX:
        return {"error": f"too long: a memory holds at most {MEMORY_TEXT_MAX} characters"}
    return text


async def _known(ctx: ToolContext, memory_id: Any) -> str | None:
    """`memory_id` when it names one of the calling user's memories."""
    wanted = str(memory_id).strip().strip("[]")
    return next((m.id for m in await ctx.all_memories() if m.id == wanted), None)


def _unknown(memory_id: Any) -> dict[str, str]:
    shown = str(memory_id)[:_ID_SHOWN]
    return {"error": f"no memory with id {shown!r}; search_memories gives the ids"}


def _listed(memories: list[Memory]) -> list[dict[str, str]]:
    return [{"id": m.id, "text": m.text} for m in memories]


async def remember(ctx: ToolContext, fact: str) -> Mapping[str, Any]:
    text = clean_fact(fact)
    if isinstance(text, dict):
        return text
    ctx.remember(text)
    return {"ok": True, "remembered": text}


async def update_memory(ctx: ToolContext, memory_id: str, fact: str) -> Mapping[str, Any]:
    text = clean_fact(fact)
    if isinstance(text, dict):
        return text
    known = await _known(ctx, memory_id)
    if known is None:
        return _unknown(memory_id)
    ctx.update_memory(known, text)
    return {"ok": True, "id": known, "text": text}


async def forget_memory(ctx: ToolContext, memory_id: str) -> Mapping[str, Any]:
    known = await _known(ctx, memory_id)
    if known is None:
        return _unknown(memory_id)
    ctx.forget_memory(known)
    return {"ok": True, "forgotten": known}


async def search_memories(ctx: ToolContext, query: str) -> Mapping[str, Any]:
    return {"memories": _listed(await ctx.search_memories(str(query)))}


def _schema(**properties: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {k: {"type": "string", "description": v} for k, v in properties.items()},
        "required": list(properties),
    }


_FACT = f"One short fact about the user, in the third person (at most {MEMORY_TEXT_MAX} chars)"
_ID = "The memory's id, as in [brackets] in the memories list"


def memory_tools() -> tuple[Tool, ...]:
    """The four memory tools. They touch no session state (no state re-read before them)."""
    return (
        Tool(
            "remember",
            "Remember a lasting fact the user told about themselves (e.g. 'has a cat called "
            "Pixel', 'lives in Lisbon'). Not for passing chat, never for secrets.",
            remember,
            _schema(fact=_FACT),
            shared_state=False,
        ),
        Tool(
            "update_memory",
            "Replace a memory that is no longer true with the new fact (e.g. they moved).",
            update_memory,
            _schema(memory_id=_ID, fact=_FACT),
            shared_state=False,
        ),
        Tool(
            "forget_memory",
            "Forget a memory, when the user asks you to or it turned out wrong.",
            forget_memory,
            _schema(memory_id=_ID),
            shared_state=False,
        ),
        Tool(
            "search_memories",
            "Search the user's memories (best matches first, then the most recent ones).",
            search_memories,
            _schema(query="Words to look for"),
            shared_state=False,
        ),
    )
