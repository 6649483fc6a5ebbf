"""Events and state values to and from the SQLite store's rows (JSON text columns).

Encoding happens on the caller's side, before a write is queued, so a value that JSON cannot
hold fails that caller at once and never reaches (or poisons) a group-commit batch.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from storage.common import (
    check_storable,
    dumps,
    memory_changes_from_json,
    memory_changes_to_json,
)
from storage.types import (
    Event,
    EventActions,
    MemoryChange,
    ScheduleChange,
    TokenUsage,
    split_delta,
)

# Column order shared by every SELECT of events and by row_to_event.
EVENT_COLUMNS = (
    "id, invocation_id, author, timestamp, content, state_delta, transfer_to_agent,"
    " prompt_tokens, completion_tokens, final, error, memory_changes"
)
# One placeholder per column of EVENT_COLUMNS, for the INSERTs that list them.
EVENT_PLACEHOLDERS = ", ".join("?" * len(EVENT_COLUMNS.split(",")))

StateItems = tuple[tuple[str, str | None], ...]  # (key, JSON text or None = delete)


def _items(part: Mapping[str, Any]) -> StateItems:
    return tuple((key, None if value is None else dumps(value)) for key, value in part.items())


@dataclass(frozen=True, slots=True)
class EncodedDelta:
    app: StateItems = ()
    user: StateItems = ()
    session: StateItems = ()

    def __bool__(self) -> bool:
        return bool(self.app or self.user or self.session)


def encode_delta(delta: Mapping[str, Any]) -> EncodedDelta:
    """Split by scope (dropping `temp:`) and encode each value."""
    app, user, session = split_delta(delta)
    return EncodedDelta(_items(app), _items(user), _items(session))


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    row: tuple[Any, ...]  # the values of EVENT_COLUMNS, in order
    delta: EncodedDelta
    is_turn: bool
    prompt_tokens: int
    completion_tokens: int
    transfer_to_agent: str | None
    memory_changes: tuple[MemoryChange, ...] = ()
    schedule_changes: tuple[ScheduleChange, ...] = ()  # applied, not kept on the event row

    @property
    def id(self) -> str:
        return self.row[0]

    @property
    def timestamp(self) -> float:
        return self.row[3]


def encode_event(event: Event) -> EncodedEvent:
    check_storable(event)
    delta = event.actions.state_delta
    persisted = {k: v for k, v in delta.items() if not k.startswith("temp:")}
    usage = event.usage
    row = (
        event.id,
        event.invocation_id,
        event.author,
        float(event.timestamp),
        dumps(dict(event.content)),
        dumps(persisted) if persisted else None,
        event.actions.transfer_to_agent,
        None if usage is None else usage.prompt_tokens,
        None if usage is None else usage.completion_tokens,
        int(event.final),
        event.error,
        _changes_text(event),
    )
    return EncodedEvent(
        row=row,
        delta=encode_delta(persisted),
        is_turn=event.author == "user",
        prompt_tokens=0 if usage is None else usage.prompt_tokens,
        completion_tokens=0 if usage is None else usage.completion_tokens,
        transfer_to_agent=event.actions.transfer_to_agent,
        memory_changes=event.actions.memory_changes,
        schedule_changes=event.actions.schedule_changes,
    )


def _changes_text(event: Event) -> str | None:
    changes = event.actions.memory_changes
    return dumps(memory_changes_to_json(changes)) if changes else None


def row_to_event(row: Sequence[Any]) -> Event:
    (eid, invocation_id, author, ts, content, delta, transfer) = row[:7]
    (prompt, completion, final, err, changes) = row[7:12]
    return Event(
        author=author,
        content=json.loads(content),
        invocation_id=invocation_id,
        id=eid,
        timestamp=ts,
        actions=EventActions(
            state_delta=json.loads(delta) if delta else {},
            transfer_to_agent=transfer,
            memory_changes=memory_changes_from_json(json.loads(changes) if changes else None),
        ),
        usage=None if prompt is None else TokenUsage(prompt, completion or 0),
        final=bool(final),
        error=err,
    )


class EventCache:
    """Decoded events by (rowid, id, timestamp), bounded, oldest evicted first.

    Each turn reloads the session's last N events and all but the newest two were decoded by
    the previous turn: decoding (JSON + objects) is most of a read's CPU. Stored events never
    change, and the key includes the event id, so a reused rowid is never mistaken for it.
    One cache per connection, touched only by that connection's thread.
    """

    def __init__(self, size: int = 8192) -> None:
        self._items: dict[tuple[int, str, float], Event] = {}
        self._size = size

    def decode(self, pk: int, row: Sequence[Any]) -> Event:
        key = (pk, row[0], row[3])
        event = self._items.get(key)
        if event is None:
            event = row_to_event(row)
            if len(self._items) >= self._size:
                del self._items[next(iter(self._items))]
            self._items[key] = event
        return event


class CachingConnection(sqlite3.Connection):
    """A sqlite3 connection that carries its EventCache (passed as `factory=`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.event_cache = EventCache()
