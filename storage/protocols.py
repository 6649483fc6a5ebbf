"""The store's boundaries: a few small protocols, one backend class implements them all.

Like aiogram's storages, each protocol is a handful of methods; `Store` is their union plus a
lifetime (`async with await open_store(url) as store:`). All SQL lives inside a backend package
(storage.sqlite, storage.postgres); the rules both follow live in storage.common and
storage.export. Every method is safe to call concurrently from many tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from storage.types import (
    Claim,
    Event,
    Identity,
    InboxItem,
    InboxStatus,
    Job,
    Memory,
    Notice,
    OutboxItem,
    Session,
    SessionInfo,
    Stats,
)


class SessionStore(Protocol):
    """Sessions, scoped state and events (docs/architecture.md, "Data model")."""

    async def create_session(
        self,
        app_name: str,
        user_id: str,
        session_id: str | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> Session:
        """Create a session (a new id when None). `state` is applied like a state delta:
        `app:`/`user:` keys go to their scopes, `temp:` keys are dropped. Creating an id that
        exists returns the existing session unchanged."""
        ...

    async def get_session(
        self, app_name: str, user_id: str, session_id: str, *, recent_events: int = 20
    ) -> Session | None:
        """The merged state (app + user + session) and the last `recent_events` events, oldest
        first. Never reads the whole history: cost must not grow with it."""
        ...

    async def get_context(
        self, app_name: str, user_id: str, session_id: str, *, max_events: int
    ) -> Session | None:
        """What a turn loads: the merged state, the session's latest summary event (author
        `SUMMARY_AUTHOR`) and the events after it, oldest first - at most `max_events` of
        those, the newest (a hard cap: a summariser that keeps failing never makes the load
        unbounded). Without a summary, the last `max_events` events. Index-backed: cost
        independent of the history."""
        ...

    async def append_event(self, session: Session, event: Event) -> bool:
        """Store `event` and apply `event.actions.state_delta` (`temp:` keys dropped; a None value
        deletes the key) and `event.actions.memory_changes` (to the session's user's memories,
        rules in storage.memory_plan) in ONE transaction. Partial events are refused (ValueError).
        Idempotent by `event.id`: appending an id already stored changes nothing and returns
        False; otherwise True. Raises StoreBusy when the database stays locked."""
        ...

    def session_lock(
        self, app_name: str, user_id: str, session_id: str
    ) -> AbstractAsyncContextManager[None]:
        """One writer per session: held for a whole turn. In-process for SQLite; a database
        (advisory) lock for PostgreSQL so that several worker processes serialise too."""
        ...


class AdminViews(Protocol):
    """Paged, read-only views for admins. Derived from event and session rows."""

    async def history(
        self,
        app_name: str,
        user_id: str,
        session_id: str | None = None,
        *,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Event]:
        """Up to `limit` events older than the event with id `before` (newest when None), of one
        session or of all the user's sessions, returned oldest first (newest last). A `before`
        that is not an event of those sessions raises EventNotFound (an empty page means
        nothing is older)."""
        ...

    async def list_sessions(
        self, app_name: str, user_id: str | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[SessionInfo]:
        """Sessions (of one user, or all) by last activity, newest first."""
        ...

    async def stats(self, app_name: str, user_id: str | None = None) -> Stats:
        """Totals for the app, or for one user (then `users` is 1 or 0). `delegations` counts
        events carrying `transfer_to_agent`, by target agent; tokens sum the events' usage."""
        ...

    async def turns_per_day(self, app_name: str, since: float) -> list[tuple[int, int]]:
        """(UTC day number = epoch seconds // 86400, turns) for each day with turns from
        `since` on, oldest first. Reads the user events of those days through an index: the
        cost follows the window's activity, not the history."""
        ...


class PrivacyStore(Protocol):
    async def export_user(self, app_name: str, user_id: str) -> dict[str, Any]:
        """Everything stored about the user, JSON-serialisable: identities, user state,
        memories, sessions with their state and full event history."""
        ...

    async def delete_user(self, app_name: str, user_id: str) -> None:
        """Remove every row about the user: sessions, events, session and user state, memories,
        identities, link codes, inbox rows. Audit entries only ever hold a hashed id."""
        ...


class IdentityStore(Protocol):
    """(platform, platform_user_id) -> our user_id; /link joins two identities."""

    async def resolve_user(
        self,
        platform: str,
        platform_user_id: str,
        display_name: str | None = None,
        username: str | None = None,
    ) -> str:
        """The user id for this identity, created (12 hex chars) on first sight. A given
        `username` is kept up to date with the identity (normalised; another identity of the
        platform that had it loses it: a username names one account at a time)."""
        ...

    async def find_user(self, platform: str, platform_user_id: str) -> str | None: ...

    async def find_by_username(self, username: str) -> list[Identity]:
        """The identities (any platform) whose username is `username` (with or without "@",
        any case); none for something that cannot be a username."""
        ...

    async def identities(self, user_id: str) -> list[Identity]:
        """Every identity of the user, oldest first."""
        ...

    async def create_link_code(self, user_id: str, ttl_seconds: float = 600) -> str:
        """A one-time code (short, human-typable) that lets another identity join user_id."""
        ...

    async def peek_link_code(self, code: str) -> str | None:
        """The user a valid code would link to, without using the code up; None for an unknown,
        used or expired code."""
        ...

    async def redeem_link_code(
        self, code: str, platform: str, platform_user_id: str, notice: str = ""
    ) -> str | None:
        """Join this identity's whole user to the code's user, in one transaction: EVERY
        identity of the former user moves, its `user:` state fills the target's gaps, its
        sessions, inbox rows and link codes move along, its memories join the target's
        (near-duplicates folded, the limit kept). `notice` (when given) is left for every
        other identity of the joined account. Returns the target user id, or None for an
        unknown, used or expired code (the code is used up either way)."""
        ...

    async def detach_identity(
        self,
        app_name: str,
        platform: str,
        platform_user_id: str,
        state: Mapping[str, Any],
        notice: str = "",
    ) -> str | None:
        """Move this identity to a new user of its own, whose `user:` state is `state` (a copy
        of the preferences; the history and the memories stay), leaving `notice` for it.
        Returns the new user id, or None when the identity is unknown or its user has no other
        identity."""
        ...

    async def notices(self, platform: str, platform_user_id: str) -> list[Notice]:
        """Notices waiting for this identity, oldest first."""
        ...

    async def drop_notices(self, platform: str, platform_user_id: str, up_to: int) -> None:
        """Forget this identity's notices up to id `up_to` (they were shown)."""
        ...


class Inbox(Protocol):
    """Every incoming platform message recorded once, keyed by (platform, message_id)."""

    async def inbox_put(
        self,
        platform: str,
        message_id: str,
        payload: Mapping[str, Any],
        user_id: str | None = None,
    ) -> InboxStatus:
        """Record the message durably. NEW the first time; PENDING or DONE on a redelivery."""
        ...

    async def inbox_done(self, platform: str, message_id: str) -> None:
        """The reply to this message reached the platform."""
        ...

    async def inbox_status(self, platform: str, message_id: str) -> InboxStatus | None:
        """PENDING or DONE as committed now (another worker's answer included), without
        writing; None for a message never recorded."""
        ...

    async def inbox_pending(
        self, platform: str | None = None, limit: int | None = None
    ) -> list[InboxItem]:
        """Recorded but not answered (replayed after a crash): all of them unless `limit`,
        interleaved across users - every user's oldest, then every user's second oldest, ... -
        so one user's backlog does not hold up another user's single message."""
        ...

    async def inbox_earlier_pending(
        self, platform: str, message_id: str, user_id: str, since: float | None = None
    ) -> bool:
        """True while a message of `user_id` on `platform` recorded *before* this one (and, with
        `since`, not before that time) is still unanswered. Lets a worker keep a user's turns in
        the order they were recorded when consecutive messages reach different worker
        processes; `since` leaves out a message stuck long ago, which no live worker is
        answering any more. False for an unknown message."""
        ...


class MemoryStore(Protocol):
    """A user's memories (docs/architecture.md, "Data model": Memories). They change only through
    `EventActions.memory_changes`, applied by `append_event` in the event's transaction."""

    async def memories(self, app_name: str, user_id: str) -> list[Memory]:
        """All of the user's memories, oldest first (the order /memory numbers them in)."""
        ...

    async def recall(
        self, app_name: str, user_id: str, query: str, *, relevant: int = 8, recent: int = 4
    ) -> list[Memory]:
        """Up to `relevant` memories matching words of `query` (any of them), best first, then
        up to `recent` of the most recently updated ones not already in. `query` is user text,
        never syntax. Cost independent of how many memories the database holds."""
        ...


class ScheduleStore(Protocol):
    """Users' jobs (alerts, reminders, the digest) and the scheduler's outbox (docs/
    architecture.md, "Proactive messages"). Jobs change only through
    `EventActions.schedule_changes` (applied by `append_event`) and the scheduler's claims."""

    async def jobs(self, app_name: str, user_id: str) -> list[Job]:
        """The user's jobs, oldest first (the order /alerts and /reminders number them in)."""
        ...

    async def due_jobs(self, app_name: str, now: float, limit: int = 500) -> list[Job]:
        """Reminders and digests due at `now`, earliest first (index-backed)."""
        ...

    async def alert_symbols(self, app_name: str) -> list[str]:
        """Every symbol some alert watches, once each."""
        ...

    async def alerts_for(self, app_name: str, symbols: Sequence[str]) -> list[Job]:
        """The alerts on these symbols, with their bookkeeping."""
        ...

    async def claim(self, app_name: str, claims: Sequence[Claim]) -> list[OutboxItem]:
        """Fire jobs, in one transaction: each claim holds only if its job is still at the
        version read (so across workers a job is claimed exactly once), and then its outbox
        row is written in the same transaction. Returns the outbox rows written."""
        ...

    async def pending_outbox(self, app_name: str, now: float, limit: int = 500) -> list[OutboxItem]:
        """Outbox rows not sent yet whose next try is due, oldest first."""
        ...

    async def lease_outbox(
        self,
        app_name: str,
        now: float,
        until: float,
        platforms: Sequence[str],
        limit: int = 500,
    ) -> list[OutboxItem]:
        """Take the rows due at `now` for these platforms (the ones the caller can send on),
        oldest first: each is hidden from every other caller until `until` (a worker that dies
        mid-send leaves it to the others after that), so two workers never send one row at
        the same time."""
        ...

    async def outbox_sent(self, app_name: str, outbox_id: str) -> None:
        """The platform took it: the row goes."""
        ...

    async def outbox_later(self, app_name: str, outbox_id: str, next_try: float) -> None:
        """A transient failure: try again at `next_try` (attempts counted)."""
        ...

    async def outbox_redirect(self, app_name: str, item: OutboxItem) -> None:
        """The chat is gone: send it to `item`'s platform, chat and identity instead."""
        ...

    async def claim_poll(self, app_name: str, now: float, until: float) -> tuple[bool, float]:
        """Take the alert poll due at `now` (kept in `meta`): `(True, until)` when this caller
        moved the next one on to `until` - so of the workers on one database one polls per
        interval - else `(False, when the next one is due)`."""
        ...

    async def delay_poll(self, app_name: str, until: float) -> None:
        """The poll failed (the provider is down): the next one, for every worker, at `until`."""
        ...

    async def user_state(self, app_name: str, user_id: str) -> dict[str, Any]:
        """The user's `user:` state (what the digest reads)."""
        ...


class AuditLog(Protocol):
    async def audit(self, actor: str, command: str, detail: str = "") -> None:
        """Record an admin call. `actor` is stored hashed, never in the clear."""
        ...

    async def audit_count(self, actor: str, command: str, since: float) -> int:
        """How many entries of `actor` for `command` were recorded at or after `since`."""
        ...


class Store(
    SessionStore,
    AdminViews,
    PrivacyStore,
    IdentityStore,
    Inbox,
    MemoryStore,
    AuditLog,
    ScheduleStore,
    Protocol,
):
    """What a backend provides. Use as `async with await open_store(url) as store:`."""

    async def close(self) -> None: ...

    async def __aenter__(self) -> Store: ...

    async def __aexit__(self, *exc: object) -> None: ...
