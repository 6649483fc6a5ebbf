"""JSON <-> JSONB and row <-> value conversions for the PostgreSQL backend.

JSONB cannot hold the NUL character (PostgreSQL text never can), yet a chat message may carry
one and SQLite stores it happily. Values whose JSON would contain NUL are wrapped as
{NUL_WRAP: "<their JSON text>"} - the escaped text holds no NUL - and unwrapped on the way out,
so both backends round-trip the same values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from storage import common
from storage.types import Event, EventActions, TokenUsage, split_delta

NUL_WRAP = "__switchboard_json__"
_NUL = "\\u0000"  # how json.dumps writes U+0000


def dumps(value: Any) -> str:
    """JSON text for a JSONB parameter."""
    text = common.dumps(value)
    if _NUL in text:
        return json.dumps({NUL_WRAP: text}, ensure_ascii=False)
    return text


def loads(text: str | None) -> Any:
    if text is None:
        return None
    return _unwrap(json.loads(text))


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1 and NUL_WRAP in value:
        return json.loads(value[NUL_WRAP])
    return value


def dumps_state(state: Mapping[str, Any]) -> str:
    """A state mapping as a JSONB object, wrapping only the values that need it, so that `||`
    and `-` keep working key by key."""
    return common.dumps({key: _wrap_value(value) for key, value in state.items()})


def _wrap_value(value: Any) -> Any:
    text = common.dumps(value)
    return {NUL_WRAP: text} if _NUL in text else value


def loads_state(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    return {key: _unwrap(value) for key, value in json.loads(text).items()}


def delta_parts(part: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(JSONB of keys to set, list of keys to delete) for one scope of a state delta."""
    to_set = {key: value for key, value in part.items() if value is not None}
    to_delete = [key for key, value in part.items() if value is None]
    return dumps_state(to_set), to_delete


def split_for_sql(delta: Mapping[str, Any]) -> tuple[Any, ...]:
    """The six SQL parameters of a delta: (set, delete) for app, user and session scopes."""
    app, user, session = split_delta(delta)
    return (*delta_parts(app), *delta_parts(user), *delta_parts(session))


def persisted_delta(delta: Mapping[str, Any]) -> dict[str, Any]:
    """The delta as stored with its event: `temp:` keys never reach the database."""
    app, user, session = split_delta(delta)
    return {**app, **user, **session}


# Columns of the events table read back into Event values, in this order.
EVENT_COLUMNS = (
    "e.id, e.invocation_id, e.author, e.ts, e.content, e.state_delta, e.transfer_to_agent,"
    " e.prompt_tokens, e.completion_tokens, e.final, e.error, e.memory_changes"
)


def event_from_row(row: Sequence[Any]) -> Event:
    """An Event from EVENT_COLUMNS, positionally (a Record, or a ROW(...) decoded as a tuple)."""
    (id_, invocation_id, author, ts, content, delta, transfer) = row[:7]
    (prompt, completion, final, error, changes) = row[7:12]
    usage = None
    if prompt is not None or completion is not None:
        usage = TokenUsage(prompt or 0, completion or 0)
    return Event(
        id=id_,
        invocation_id=invocation_id,
        author=author,
        timestamp=ts,
        content=loads(content),
        actions=EventActions(
            state_delta=loads_state(delta),
            transfer_to_agent=transfer,
            memory_changes=common.memory_changes_from_json(loads(changes)),
        ),
        usage=usage,
        final=final,
        error=error,
    )


def memory_changes_param(event: Event) -> str | None:
    """The events.memory_changes column (JSONB, NULL when the event changes no memory); kept
    out of event_params so that the INSERTs listing those eleven columns stay as they are."""
    changes = event.actions.memory_changes
    return dumps(common.memory_changes_to_json(changes)) if changes else None


def event_params(event: Event) -> tuple[Any, ...]:
    """The event's column values, in the order of the events INSERT statements."""
    usage = event.usage
    return (
        event.id,
        event.invocation_id,
        event.author,
        event.timestamp,
        dumps(dict(event.content)),
        dumps_state(persisted_delta(event.actions.state_delta)),
        event.actions.transfer_to_agent,
        usage.prompt_tokens if usage else None,
        usage.completion_tokens if usage else None,
        event.final,
        event.error,
    )
