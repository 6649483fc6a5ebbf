"""Which session a chat is in: one per user per chat, and `/reset` moves the chat to a new one.

The mapping must survive restarts and work across worker processes, and state may only change
through events, so it lives in the user's own state:

- the chat's *base* session id is deterministic, `"<platform>:<chat_id>"`, so the first message
  of a chat needs no lookup table at all;
- after a `/reset`, the key `user:session:<platform>:<chat_id>` (written by the reset event's
  `state_delta`) names the chat's current session.

Because the pointer is `user:` state, it follows the user through `/link` (sessions and user state
move along) and disappears with `/forgetme`.
"""

from __future__ import annotations

from storage import Event, EventActions, Session, SessionStore
from storage.types import new_id

SYSTEM_AUTHOR = "system"  # author of events the core writes for commands (not a turn)


def base_session_id(platform: str, chat_id: str) -> str:
    return f"{platform}:{chat_id}"


def pointer_key(platform: str, chat_id: str) -> str:
    return f"user:session:{platform}:{chat_id}"


class ChatSessions:
    """Resolves and resets the session of (user, chat)."""

    def __init__(self, store: SessionStore, app_name: str) -> None:
        self._store = store
        self._app = app_name

    async def current(self, user_id: str, platform: str, chat_id: str) -> str:
        """The chat's current session id (the session itself may not exist yet)."""
        base = base_session_id(platform, chat_id)
        session = await self._store.get_session(self._app, user_id, base, recent_events=0)
        if session is None:
            return base
        pointer = session.state.get(pointer_key(platform, chat_id))
        return pointer if isinstance(pointer, str) and pointer else base

    async def load(self, user_id: str, session_id: str) -> Session:
        """The session with its merged state, created when missing."""
        session = await self._store.get_session(self._app, user_id, session_id, recent_events=0)
        if session is None:
            session = await self._store.create_session(self._app, user_id, session_id)
        return session

    async def reset(
        self, user_id: str, platform: str, chat_id: str, current: str, event_id: str
    ) -> str:
        """Start a new session for the chat; returns its id.

        The reset is an event in the session being left (so admins see where it ended) whose
        delta moves the pointer. The event id is derived from the message, so a redelivered
        `/reset` does not reset twice.
        """
        session = await self.load(user_id, current)
        new_session_id = f"{base_session_id(platform, chat_id)}:{new_id()[:8]}"
        event = Event(
            id=event_id,
            invocation_id=event_id,
            author=SYSTEM_AUTHOR,
            content={"text": "Conversation reset: a new session starts here.", "command": "reset"},
            actions=EventActions(state_delta={pointer_key(platform, chat_id): new_session_id}),
        )
        if not await self._store.append_event(session, event):
            # Already applied by an earlier delivery of this message: keep its session.
            return await self.current(user_id, platform, chat_id)
        await self._store.create_session(self._app, user_id, new_session_id)
        return new_session_id
