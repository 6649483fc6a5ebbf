"""What a user's memories become after an event's memory changes, or after a /link merge.

Pure functions over values, so both backends apply exactly the same rules (storage.common holds
the text rules): a backend reads the user's memories inside its write transaction, asks for a
plan, and writes the plan's rows and deletions in that same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from storage.common import memory_id, memory_text, near_duplicate, normalise_memory
from storage.types import Memory, MemoryChange


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """Rows to insert or overwrite (by id) and ids to delete."""

    write: tuple[Memory, ...] = ()
    delete: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.write or self.delete)


@dataclass(frozen=True, slots=True)
class ChangeContext:
    """Where the changes come from: the event (and its session) and when."""

    event_id: str
    session_id: str
    now: float
    limit: int


def plan_changes(
    existing: Sequence[Memory], changes: Sequence[MemoryChange], ctx: ChangeContext
) -> MemoryPlan:
    rows = {memory.id: memory for memory in existing}
    for index, change in enumerate(changes):
        if change.op == "add":
            new_id = memory_id(ctx.event_id, index, ctx.session_id)
            text = memory_text(change.text)
            if text:
                _add(rows, Memory(new_id, text, ctx.now, ctx.now, ctx.event_id))
        elif change.op == "update":
            _update(rows, change, ctx)
        else:
            rows.pop(change.memory_id, None)
    return _finish(existing, rows, ctx.limit)


def plan_merge(existing: Sequence[Memory], incoming: Iterable[Memory], limit: int) -> MemoryPlan:
    """Another user's memories joining these (/link): oldest first, near-duplicates folded."""
    rows = {memory.id: memory for memory in existing}
    for memory in sorted(incoming, key=lambda m: (m.created_at, m.id)):
        _add(rows, memory)
    return _finish(existing, rows, limit)


def _add(rows: dict[str, Memory], new: Memory) -> None:
    if new.id in rows:  # the same add again (a replay, a merge run twice): nothing to do
        return
    norm = normalise_memory(new.text)
    for old in rows.values():
        old_norm = normalise_memory(old.text)
        if near_duplicate(norm, old_norm):
            # The longer wording wins: "cat" after "has a cat called Pixel" loses nothing.
            keep_old = norm != old_norm and f" {norm} " in f" {old_norm} "
            rows[old.id] = replace(
                old,
                text=old.text if keep_old else new.text,
                updated_at=max(old.updated_at, new.updated_at),
                event_id=new.event_id,
            )
            return
    rows[new.id] = new


def _update(rows: dict[str, Memory], change: MemoryChange, ctx: ChangeContext) -> None:
    old = rows.get(change.memory_id)
    text = memory_text(change.text)
    if old is None or not text:  # an unknown id (or no text) changes nothing
        return
    rows[old.id] = replace(old, text=text, updated_at=ctx.now, event_id=ctx.event_id)


def _finish(existing: Sequence[Memory], rows: dict[str, Memory], limit: int) -> MemoryPlan:
    if len(rows) > limit:
        stalest = sorted(rows.values(), key=lambda m: (m.updated_at, m.created_at))
        dropped = {m.id for m in stalest[: len(rows) - max(limit, 0)]}
        rows = {mid: m for mid, m in rows.items() if mid not in dropped}
    before = {memory.id: memory for memory in existing}
    write = tuple(m for m in rows.values() if before.get(m.id) != m)
    delete = tuple(mid for mid in before if mid not in rows)
    return MemoryPlan(write, delete)
