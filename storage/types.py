"""Value types of the session store (ADK's session/event/state model; docs/architecture.md,
"Data model").

Mappings inside these frozen values are plain dicts for speed and JSON-friendliness;
treat them as read-only.

Everything here is an immutable value; the store is the only thing that changes what is
persisted, and only through `append_event` (an event plus its `state_delta`, in one transaction).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# -- state scopes (contract: docs/architecture.md) -------------------------------------------------
APP_PREFIX = "app:"
USER_PREFIX = "user:"
TEMP_PREFIX = "temp:"


def scope_of(key: str) -> str:
    """Return 'app', 'user', 'temp' or 'session' for a state key."""
    if key.startswith(APP_PREFIX):
        return "app"
    if key.startswith(USER_PREFIX):
        return "user"
    if key.startswith(TEMP_PREFIX):
        return "temp"
    return "session"


def split_delta(delta: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Split a state delta into (app, user, session) parts, dropping `temp:` keys.

    Keys keep their prefix, so the merged view is just the union of the three parts.
    A value of None deletes the key.
    """
    app: dict[str, Any] = {}
    user: dict[str, Any] = {}
    session: dict[str, Any] = {}
    for key, value in delta.items():
        scope = scope_of(key)
        if scope == "app":
            app[key] = value
        elif scope == "user":
            user[key] = value
        elif scope == "session":
            session[key] = value
    return app, user, session


def new_id() -> str:
    return uuid.uuid4().hex


# -- events ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class EventActions:
    """Side effects an event carries. `state_delta` is applied atomically with the event."""

    state_delta: Mapping[str, Any] = field(default_factory=dict)
    transfer_to_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a session's history.

    `author` is "user" or an agent name. `content` is JSON-serialisable and has one of the shapes
    {"text": str} (a message), {"tool_calls": [{"id", "name", "arguments"}], "text"?: str} (a
    model asking for tools) or {"tool_result": {"id", "name", "result"}} (a tool's answer).
    `partial` events (streaming deltas) are yielded by the runner but never stored.
    `final` marks the answer that ends a turn. `error` marks an honest failure message.
    """

    author: str
    content: Mapping[str, Any]
    invocation_id: str = ""
    id: str = field(default_factory=new_id)
    timestamp: float = field(default_factory=time.time)
    actions: EventActions = field(default_factory=EventActions)
    usage: TokenUsage | None = None
    partial: bool = False
    final: bool = False
    error: str | None = None

    @property
    def text(self) -> str:
        value = self.content.get("text")
        return value if isinstance(value, str) else ""


# -- sessions --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Session:
    """A session as loaded: the merged state (app + user + session scopes) and recent events."""

    app_name: str
    user_id: str
    session_id: str
    state: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A row of the admin session list."""

    app_name: str
    user_id: str
    session_id: str
    created_at: float
    updated_at: float
    turns: int  # number of events authored by "user"
    events: int


@dataclass(frozen=True, slots=True)
class Stats:
    users: int
    sessions: int
    turns: int
    events: int
    delegations: Mapping[str, int]  # agent name -> transfers to it
    prompt_tokens: int
    completion_tokens: int


# -- identities and inbox --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Identity:
    platform: str
    platform_user_id: str
    user_id: str
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """A message waiting for an identity's next private message (`id` orders them)."""

    id: int
    text: str


class InboxStatus(Enum):
    NEW = "new"  # first time seen: recorded now
    PENDING = "pending"  # seen before, not yet answered (e.g. redelivered after a crash)
    DONE = "done"  # seen before and answered


@dataclass(frozen=True, slots=True)
class InboxItem:
    platform: str
    message_id: str
    payload: Mapping[str, Any]
    received_at: float
    done: bool = False


class StoreError(Exception):
    """Base class of store failures the core turns into a short reply."""


class StoreBusy(StoreError):
    """The database stayed locked past the busy timeout."""


class SessionNotFound(StoreError):
    pass


class EventNotFound(StoreError):
    """A history page was asked for before an event these sessions do not have."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"no event {event_id!r} in this history")
        self.event_id = event_id


class SchemaTooNew(StoreError):
    """The database was written by a newer release; refusing to guess at its layout. Both
    backends raise it at open, so the bot can say so in one line."""

    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"the database schema is v{found}, newer than this release supports"
            f" (v{supported}): upgrade Switchboard or use a backup"
        )
