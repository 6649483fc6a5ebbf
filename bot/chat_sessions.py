"""Which session a chat is in: one per user per chat, and `/reset` moves the chat to a new one.

The mapping must survive restarts and work across worker processes, and state may only change
through events, so it lives in the user's own state:

- the chat's *base* session id is deterministic, `"<platform>:<chat_id>"`, so the first message
  of a chat needs no lookup table at all;
- after a `/reset`, the key `agents.profile.session_pointer_key(platform, chat_id)` (written by
  the reset event's `state_delta`) names the chat's current session.

Because the pointer is `user:` state, it follows the user through `/link` (sessions and user state
move along) and disappears with `/forgetme`. Being `user:` state, it is also part of the merged
state of *every* session of the user: reading the session a chat was last seen in (remembered
per process, a guess another worker's `/reset` can make stale) both loads that session and says
whether it is still the chat's current one, so a turn reads its session once.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.profile import session_pointer_key
from storage import Event, EventActions, Session, SessionStore
from storage.types import new_id

SYSTEM_AUTHOR = "system"  # author of events the core writes for commands (not a turn)
# Chats whose last session is remembered (a forgotten one costs one more read, nothing else).
REMEMBERED_CHATS = 4096


def base_session_id(platform: str, chat_id: str) -> str:
    return f"{platform}:{chat_id}"


@dataclass(frozen=True, slots=True)
class ChatSession:
    """A chat's current session: its id, and the session as read under its lock (None until
    the chat's first turn or state-changing command creates it)."""

    session_id: str
    session: Session | None


class ChatSessions:
    """Resolves, opens and resets the session of (user, chat)."""

    def __init__(self, store: SessionStore, app_name: str) -> None:
        self._store = store
        self._app = app_name
        self._last: dict[tuple[str, str, str], str] = {}  # (user, platform, chat) -> session

    def likely(self, user_id: str, platform: str, chat_id: str) -> str:
        """The session to lock and open first, without a read: where the chat was last seen
        in this process, else its base session."""
        chat = (user_id, platform, chat_id)
        return self._last.get(chat) or base_session_id(platform, chat_id)

    async def open(
        self,
        user_id: str,
        platform: str,
        chat_id: str,
        session_id: str,
        recent_events: int,
        *,
        named: bool = False,
    ) -> ChatSession:
        """Read `session_id` (whose lock the caller holds) as a turn loads it: its latest
        compaction summary and at most `recent_events` events after it.
        When it is the chat's current session, the result carries it; otherwise the result
        names the current session, to lock and open instead (with `named=True`: the id comes
        from a read, so a session missing under it is current, just not created yet)."""
        session = await self._store.get_context(
            self._app, user_id, session_id, max_events=recent_events
        )
        base = base_session_id(platform, chat_id)
        if session is None:
            # Nothing to read the pointer from: a guessed session that is gone (erased, moved
            # by /link) sends us to the base, whose state has the pointer if there is one.
            current = session_id if named else base
        else:
            current = _pointer(session, platform, chat_id) or base
        if current != session_id:
            self._last.pop((user_id, platform, chat_id), None)
            return ChatSession(current, None)
        self._remember((user_id, platform, chat_id), session_id)
        return ChatSession(session_id, session)

    async def create(self, user_id: str, session_id: str) -> Session:
        """The session, created when missing (creating an existing one returns it)."""
        return await self._store.create_session(self._app, user_id, session_id)

    async def reset(self, session: Session, platform: str, chat_id: str, event_id: str) -> None:
        """Start a new session for the chat, leaving `session` (its current one).

        The reset is an event in the session being left (so admins see where it ended) whose
        delta moves the pointer. The event id is derived from the message, so a redelivered
        `/reset` does not reset twice.
        """
        user_id = session.user_id
        new_session_id = f"{base_session_id(platform, chat_id)}:{new_id()[:8]}"
        event = Event(
            id=event_id,
            invocation_id=event_id,
            author=SYSTEM_AUTHOR,
            content={"text": "Conversation reset: a new session starts here.", "command": "reset"},
            actions=EventActions(
                state_delta={session_pointer_key(platform, chat_id): new_session_id}
            ),
        )
        if await self._store.append_event(session, event):
            await self._store.create_session(self._app, user_id, new_session_id)
            self._remember((user_id, platform, chat_id), new_session_id)
        # Else already applied by an earlier delivery of this message: its session stays.

    def _remember(self, chat: tuple[str, str, str], session_id: str) -> None:
        self._last.pop(chat, None)
        self._last[chat] = session_id  # newest last: the oldest is forgotten first
        if len(self._last) > REMEMBERED_CHATS:
            del self._last[next(iter(self._last))]


def _pointer(session: Session, platform: str, chat_id: str) -> str | None:
    pointer = session.state.get(session_pointer_key(platform, chat_id))
    return pointer if isinstance(pointer, str) and pointer else None
