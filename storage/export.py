"""The /export document: one format whichever backend stored the user's rows.

A backend reads its rows in one snapshot and hands them over decoded; the document is built
here only, so the two backends' exports cannot differ (tests compare them after a transfer).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from storage.common import memory_changes_to_json
from storage.types import Event, Memory

# (platform, platform_user_id, display_name, created_at)
IdentityRow = tuple[str, str, str | None, float, str | None]  # ..., created_at, username
# (platform, message_id, decoded payload, received_at, done_at or None)
MessageRow = tuple[str, str, Any, float, float | None]
# (platform, platform_user_id, text, created_at)
NoticeRow = tuple[str, str, str, float]


@dataclass(frozen=True, slots=True)
class ExportedSession:
    session_id: str
    created_at: float
    updated_at: float
    state: Mapping[str, Any]
    events: Sequence[Event]  # the full history, oldest first


@dataclass(frozen=True, slots=True)
class UserRows:
    """Everything stored about one user, as read by a backend."""

    identities: Sequence[IdentityRow]
    user_state: Mapping[str, Any]
    sessions: Sequence[ExportedSession]
    messages: Sequence[MessageRow]
    notices: Sequence[NoticeRow]
    memories: Sequence[Memory] = ()  # oldest first


def export_document(app_name: str, user_id: str, rows: UserRows) -> dict[str, Any]:
    """The JSON-serialisable document /export sends (storage.protocols.PrivacyStore)."""
    return {
        "app_name": app_name,
        "user_id": user_id,
        "exported_at": time.time(),
        "identities": [
            {
                "platform": p,
                "platform_user_id": u,
                "display_name": n,
                "username": name,
                "created_at": c,
            }
            for p, u, n, c, name in rows.identities
        ],
        "user_state": dict(rows.user_state),
        "memories": [
            {
                "id": m.id,
                "text": m.text,
                "created_at": m.created_at,
                "updated_at": m.updated_at,
                "event_id": m.event_id,
            }
            for m in rows.memories
        ],
        "sessions": [
            {
                "session_id": s.session_id,
                "created_at": s.created_at,
                "updated_at": s.updated_at,
                "state": dict(s.state),
                "events": [event_to_dict(event) for event in s.events],
            }
            for s in rows.sessions
        ],
        "messages": [
            {
                "platform": p,
                "message_id": m,
                "payload": payload,
                "received_at": received,
                "answered": done is not None,
            }
            for p, m, payload, received, done in rows.messages
        ],
        "notices": [
            {"platform": p, "platform_user_id": u, "text": t, "created_at": c}
            for p, u, t, c in rows.notices
        ],
    }


def event_to_dict(event: Event) -> dict[str, Any]:
    """An event as plain JSON."""
    usage = event.usage
    return {
        "id": event.id,
        "invocation_id": event.invocation_id,
        "author": event.author,
        "timestamp": event.timestamp,
        "content": dict(event.content),
        "state_delta": dict(event.actions.state_delta),
        "transfer_to_agent": event.actions.transfer_to_agent,
        "memory_changes": memory_changes_to_json(event.actions.memory_changes),
        "usage": (
            {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
            if usage
            else None
        ),
        "final": event.final,
        "error": event.error,
    }
