"""One user's alerts and reminders as the agents' tools see them: the chat the turn's message
came from (where a job set in it fires) and the reader bound to that user.

A tool never names a user or a chat: the runner binds both from the message, so a model cannot
set a job for someone else, or one that fires into a chat the user did not write in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from storage.types import Job


@dataclass(frozen=True, slots=True)
class ChatOrigin:
    """Where a turn's message came from. `chat_id` None: the user's private chat with the bot
    (Telegram's private chat, a Discord DM); otherwise the shared chat it was written in."""

    platform: str
    chat_id: str | None
    platform_user_id: str


class JobSource(Protocol):
    """The store's job reads (storage.protocols' schedule store), as the tools use them."""

    async def jobs(self, app_name: str, user_id: str) -> list[Job]: ...


class UserSchedules:
    """One user's jobs, bound by the runner to (app, user) and the turn's chat."""

    def __init__(self, source: JobSource, app_name: str, user_id: str, origin: ChatOrigin):
        self._source = source
        self._app_name = app_name
        self._user_id = user_id
        self.origin = origin

    async def jobs(self, kind: str) -> list[Job]:
        """The user's jobs of `kind`, oldest first: the order /alerts and /reminders number."""
        jobs = await self._source.jobs(self._app_name, self._user_id)
        return sorted((j for j in jobs if j.kind == kind), key=lambda j: (j.created_at, j.id))
