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
# The author of a compaction summary (agents/compaction.py): what a turn loads starts at the
# session's latest one (SessionStore.get_context); the backends index it.
SUMMARY_AUTHOR = "summary"


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# -- memories (docs/architecture.md, "Data model": Memories) -------------------------------------
MEMORY_OPS = ("add", "update", "delete")


@dataclass(frozen=True, slots=True)
class MemoryChange:
    """One change to the event's user's memories: "add" (`text`), "update" (`memory_id` gets
    `text`) or "delete" (`memory_id`). Applied by `append_event` with the event."""

    op: str
    text: str = ""
    memory_id: str = ""

    def __post_init__(self) -> None:
        if self.op not in MEMORY_OPS:
            raise ValueError(f"memory change op must be one of {MEMORY_OPS}, got {self.op!r}")


@dataclass(frozen=True, slots=True)
class Memory:
    """A short fact about one user. `id` is 12 hex characters derived from the event that added
    it (storage.common.memory_id), `event_id` the event that last changed it."""

    id: str
    text: str
    created_at: float
    updated_at: float
    event_id: str


# -- proactive jobs (docs/architecture.md, "Data model": Jobs and the outbox) ------------------
JOB_KINDS = ("alert", "reminder", "digest")


@dataclass(frozen=True, slots=True)
class Job:
    """Something a user set the bot to do on its own: a price alert, a reminder, the daily
    digest. The definition is the user's data (changed by `ScheduleChange`s on events); the
    last four fields are the scheduler's bookkeeping (changed only by `ScheduleStore.claim`):
    `armed` (an alert may fire), `fired_day` (the trading day a `move` alert last fired),
    `version` (bumped by every claim: a claim holds only on the version it read)."""

    id: str
    kind: str  # "alert" | "reminder" | "digest"
    platform: str
    chat_id: str | None  # the chat it was set in; None: the user's private chat
    platform_user_id: str
    created_at: float
    symbol: str | None = None  # alert
    op: str | None = None  # alert: "above" | "below" | "move"
    value: float | None = None  # alert: the price, or the percent of a move
    text: str = ""  # reminder
    due_at: float | None = None  # reminder: when; digest: its next time (UTC seconds)
    at: str | None = None  # digest: "HH:MM" local
    zone: str = "UTC"  # the user's time zone when it was set
    user_id: str = ""  # filled in when read
    armed: bool = True
    fired_day: str | None = None
    version: int = 0


@dataclass(frozen=True, slots=True)
class ScheduleChange:
    """One change to the event's user's jobs: "add" (`job`) or "remove" (`job_id`)."""

    op: str
    job: Job | None = None
    job_id: str = ""

    def __post_init__(self) -> None:
        if (self.op, self.job is None) not in {("add", False), ("remove", True)}:
            raise ValueError(f"schedule change must be add (with a job) or remove, not {self.op!r}")


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message the scheduler sends, recorded before it is sent; `id` is deterministic
    ("reminder:<job id>:<due>") so a resend after a crash is the same message."""

    id: str
    user_id: str
    platform: str
    chat_id: str | None
    platform_user_id: str
    text: str
    created_at: float
    attempts: int = 0
    tried: tuple[str, ...] = ()  # "platform:id" of identities whose private chat refused it


@dataclass(frozen=True, slots=True)
class Claim:
    """The scheduler firing one job it read at `version`, in one transaction with the others
    of a batch: the job ends (`done`), or moves to `next_due` and/or its alert bookkeeping
    (`armed`, `fired_day`); `outbox` is written (or, `as_notice`, its text left as a notice
    for its identity's next message). A job changed or removed since it was read (another
    worker claimed it) is skipped whole."""

    job_id: str
    version: int
    done: bool = False
    next_due: float | None = None
    armed: bool = True
    fired_day: str | None = None
    outbox: OutboxItem | None = None
    as_notice: bool = False


@dataclass(frozen=True, slots=True)
class EventActions:
    """Side effects an event carries, applied atomically with the event: `state_delta` to the
    state scopes, `memory_changes` to the session's user's memories, `schedule_changes` to the
    user's jobs (alerts, reminders, digest)."""

    state_delta: Mapping[str, Any] = field(default_factory=dict)
    transfer_to_agent: str | None = None
    memory_changes: tuple[MemoryChange, ...] = ()
    schedule_changes: tuple[ScheduleChange, ...] = ()


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
    username: str | None = None  # normalised (storage.common.normalize_username)


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
