"""The JSON form of an event in /export files: one format whichever backend stored the event."""

from __future__ import annotations

from typing import Any

from storage.types import Event


def event_to_dict(event: Event) -> dict[str, Any]:
    """An event as plain JSON (exports)."""
    usage = event.usage
    return {
        "id": event.id,
        "invocation_id": event.invocation_id,
        "author": event.author,
        "timestamp": event.timestamp,
        "content": dict(event.content),
        "state_delta": dict(event.actions.state_delta),
        "transfer_to_agent": event.actions.transfer_to_agent,
        "usage": (
            {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
            if usage
            else None
        ),
        "final": event.final,
        "error": event.error,
    }
