"""The conversation core: the one entry point every adapter calls (bot.messages.ConversationCore).

For each Incoming: identity -> user_id, record in the inbox (dedupe), chat -> session, take the
session's lock, run the command or the agent turn, yield Replies, mark the inbox row done once the
adapter comes back after the last reply (i.e. after it sent it). No platform library here.

Ordering: turns of one user in one chat are answered in arrival order. An in-process FIFO lock per
(platform, chat, user) is taken *before* the first await, so messages queue in the order their
`handle` generators were started; the store's session lock (a database lock on PostgreSQL) then
serialises writers across worker processes. Across workers, arrival order is the inbox's: a
user's next message may reach another worker and take the session lock before the worker that
acknowledged the previous one does, so a turn also waits (bounded) while an older message of the
same user is still unanswered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from bot.admin_commands import ADMIN_COMMANDS, AdminCommands
from bot.chat_sessions import ChatSessions
from bot.commands import USER_COMMANDS, CommandContext, UserCommands, parse_command
from bot.messages import ChatKind, CommandSpec, Incoming, Reply
from storage import Event, InboxStatus, Store, StoreBusy
from storage.locks import KeyedLocks

log = logging.getLogger(__name__)

NON_TEXT = "I can only read text for now."
GROUP_ADMIN = "Ask me in a private chat."
BUSY = "I'm a little overloaded right now. Please send that again in a moment."
FAILED = "Sorry, something went wrong on my side. Please try again."
NO_ANSWER = "Sorry, I couldn't come up with an answer. Please try again."
MAX_TEXT = 8000  # characters; longer messages are refused rather than sent to the model
TOO_LONG = f"That message is too long for me. Please keep it under {MAX_TEXT:,} characters."
# A surrogate code point on its own: platform JSON can carry one ("\\ud800"), but no UTF-8
# database (nor any later JSON encoder) can store it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# How long a turn lets an older unanswered message of its user go first (time spent outside the
# session lock). Normally milliseconds: the other worker acknowledged it and is about to take the
# lock. Past this, that worker is presumed dead (its message is replayed at its restart).
ORDER_WAIT = 3.0
_ORDER_STEP = 0.01
# A busy database (each attempt already waited the store's busy timeout) is tried again this
# many times before the user is asked to resend.
BUSY_RETRIES = 2
BUSY_BACKOFF = 0.5


def storable(incoming: Incoming) -> Incoming:
    """The message with lone surrogates replaced by U+FFFD, so it can be recorded and answered
    (everything else, NUL and control characters included, is kept exactly)."""
    text = _LONE_SURROGATE.sub("\ufffd", incoming.text)
    name = incoming.display_name
    name = _LONE_SURROGATE.sub("\ufffd", name) if name else name
    if text == incoming.text and name == incoming.display_name:
        return incoming
    return dataclasses.replace(incoming, text=text, display_name=name)


class TurnRunner(Protocol):
    """What the core needs of bot.runner.Runner."""

    def run_async(
        self, user_id: str, session_id: str, new_message: str, *, invocation_id: str | None = None
    ) -> AsyncIterator[Event]: ...


class Conversation:
    """Implements bot.messages.ConversationCore. Dependencies come in through the constructor."""

    def __init__(
        self,
        store: Store,
        runner: TurnRunner,
        *,
        app_name: str,
        admin_ids: frozenset[str] = frozenset(),
    ) -> None:
        self._store = store
        self._runner = runner
        self._app = app_name
        self._admin_ids = admin_ids
        self._sessions = ChatSessions(store, app_name)
        self.commands: tuple[CommandSpec, ...] = USER_COMMANDS + ADMIN_COMMANDS
        self._user_commands = UserCommands(store, app_name, self._sessions, self.commands)
        self._admin_commands = AdminCommands(store, app_name)
        self._order = KeyedLocks()

    def is_admin(self, platform: str, platform_user_id: str) -> bool:
        return f"{platform}:{platform_user_id}" in self._admin_ids

    async def accept(self, incoming: Incoming) -> bool:
        incoming = storable(incoming)
        user_id = await self._user_of(incoming) if incoming.addressed else None
        status = await self._store.inbox_put(
            incoming.platform, incoming.message_id, incoming.to_payload(), user_id
        )
        return status is InboxStatus.NEW

    async def pending(self, platform: str) -> list[Incoming]:
        items = await self._store.inbox_pending(platform)
        result = []
        for item in items:
            try:
                result.append(Incoming.from_payload(dict(item.payload)))
            except (KeyError, ValueError, TypeError):
                log.warning("inbox row %s:%s is unreadable; skipped", platform, item.message_id)
        return result

    async def handle(self, incoming: Incoming) -> AsyncIterator[Reply]:
        incoming = storable(incoming)
        key = (incoming.platform, incoming.chat_id, incoming.platform_user_id)
        answered = False
        for attempt in range(BUSY_RETRIES + 1):
            try:
                async with self._order.hold(key):
                    async for reply in self._handle(incoming):
                        answered = answered or not reply.partial
                        yield reply
                return
            except StoreBusy:
                where = f"{incoming.platform}:{incoming.message_id}"
                if not answered and attempt < BUSY_RETRIES:
                    # The turn is resumable by its invocation id, so running it again after
                    # the database was busy neither loses the message nor doubles it.
                    log.warning("store busy while handling %s; trying again", where)
                    await asyncio.sleep(BUSY_BACKOFF * (attempt + 1))
                    continue
                log.warning("store busy while handling %s; giving up", where)
                if not answered:
                    yield Reply(BUSY)
            except Exception:
                log.exception("failed handling %s:%s", incoming.platform, incoming.message_id)
                if not answered:  # after the answer went out, an apology would only confuse
                    yield Reply(FAILED)
            await self._done_quietly(incoming)
            return

    async def _handle(self, incoming: Incoming) -> AsyncIterator[Reply]:
        if not incoming.addressed:
            # Group chatter not meant for us: recorded (an adapter may have accepted it) and
            # closed, so it is never replayed, but not answered.
            await self._store.inbox_put(
                incoming.platform, incoming.message_id, incoming.to_payload()
            )
            await self._store.inbox_done(incoming.platform, incoming.message_id)
            return
        user_id = await self._user_of(incoming)
        if await self._inbox_put(incoming, user_id) is InboxStatus.DONE:
            log.info("redelivered %s:%s ignored", incoming.platform, incoming.message_id)
            return
        session_id = await self._sessions.current(user_id, incoming.platform, incoming.chat_id)
        async with self._in_turn(incoming, user_id, session_id):
            # Another worker (which got the lock first, whatever inbox_put told each of us) may
            # have answered it while we waited: check again under the lock.
            if await self._inbox_put(incoming, user_id) is InboxStatus.DONE:
                return
            async for reply in self._answer(incoming, user_id, session_id):
                yield reply
            # Reached only when the adapter asks for more after the last reply: it was sent.
            await self._store.inbox_done(incoming.platform, incoming.message_id)

    @asynccontextmanager
    async def _in_turn(
        self, incoming: Incoming, user_id: str, session_id: str
    ) -> AsyncIterator[None]:
        """The session lock, taken when no older message of this user is still unanswered
        (those go first: they were acknowledged first), or once ORDER_WAIT has passed."""
        waited, step = 0.0, _ORDER_STEP
        while True:
            async with self._store.session_lock(self._app, user_id, session_id):
                earlier = await self._store.inbox_earlier_pending(
                    incoming.platform, incoming.message_id, user_id
                )
                if not earlier or waited >= ORDER_WAIT:
                    if earlier:
                        log.warning(
                            "%s:%s answered although an older message of its user is still"
                            " unanswered after %.0fs",
                            incoming.platform,
                            incoming.message_id,
                            waited,
                        )
                    yield
                    return
            # Outside the lock, so the older message's worker can take it.
            await asyncio.sleep(step)
            waited += step
            step = min(step * 2, 0.2)

    async def _answer(
        self, incoming: Incoming, user_id: str, session_id: str
    ) -> AsyncIterator[Reply]:
        if incoming.kind != "text":
            yield Reply(NON_TEXT)
            return
        invocation_id = f"{incoming.platform}:{incoming.message_id}"
        if incoming.is_command:
            for reply in await self._command(incoming, user_id, session_id, invocation_id):
                yield reply
            return
        if not incoming.text.strip():
            yield Reply("Say something and I'll answer. /help lists what I can do.")
            return
        if len(incoming.text) > MAX_TEXT:
            log.info("message %s refused: %d characters", invocation_id, len(incoming.text))
            yield Reply(TOO_LONG)
            return
        async for reply in self._turn(incoming, user_id, session_id, invocation_id):
            yield reply

    async def _command(
        self, incoming: Incoming, user_id: str, session_id: str, invocation_id: str
    ) -> list[Reply]:
        cmd = parse_command(incoming.text)
        if cmd is None:
            return [Reply("Send /help to see the commands.")]
        admin = self.is_admin(incoming.platform, incoming.platform_user_id)
        ctx = CommandContext(incoming, user_id, session_id, invocation_id, admin)
        actor = f"{incoming.platform}:{incoming.platform_user_id}"
        if self._admin_commands.handles(cmd.name):
            if not admin:
                log.info("admin command /%s refused for %s", cmd.name, incoming.platform)
                # Ephemeral where the platform can; a Telegram group just sees the refusal
                # (a private message for it would be odd).
                private = incoming.chat_kind is ChatKind.PRIVATE or bool(
                    incoming.extra.get("ephemeral")
                )
                return await self._admin_commands.refuse(actor, cmd, private=private)
            if incoming.chat_kind is ChatKind.GROUP and not incoming.extra.get("ephemeral"):
                return [Reply(GROUP_ADMIN)]
            return await self._admin_commands.run(actor, cmd, user_id)
        if self._user_commands.handles(cmd.name):
            return await self._user_commands.run(ctx, cmd)
        log.info("unknown command /%s", cmd.name[:32])
        return [Reply(f"I don't know /{cmd.name[:32]}. Send /help to see what I can do.")]

    async def _turn(
        self, incoming: Incoming, user_id: str, session_id: str, invocation_id: str
    ) -> AsyncIterator[Reply]:
        streamed = ""
        final: Event | None = None
        async for event in self._runner.run_async(
            user_id, session_id, incoming.text, invocation_id=invocation_id
        ):
            if event.partial and event.text:
                streamed += event.text
                yield Reply(streamed, partial=True)
            elif event.final:
                final = event
        if final is None:
            log.error("turn %s ended without a final event", invocation_id)
            yield Reply(NO_ANSWER)
            return
        if final.error:
            log.warning("turn %s failed: %s", invocation_id, final.error)
        yield Reply(final.text or NO_ANSWER)

    async def _user_of(self, incoming: Incoming) -> str:
        for _ in range(3):
            user_id = await self._store.resolve_user(
                incoming.platform, incoming.platform_user_id, incoming.display_name
            )
            if user_id:
                return user_id
            # Two first messages of a new user racing on PostgreSQL can see no row for one
            # statement (the other insert was not yet visible); the next statement sees it.
            log.warning("resolve_user raced with a concurrent insert; retrying")
        raise RuntimeError("could not resolve the user")

    async def _inbox_put(self, incoming: Incoming, user_id: str) -> InboxStatus:
        return await self._store.inbox_put(
            incoming.platform, incoming.message_id, incoming.to_payload(), user_id
        )

    async def _done_quietly(self, incoming: Incoming) -> None:
        """After an error reply: close the row so a failing message is not replayed forever."""
        try:
            await self._store.inbox_done(incoming.platform, incoming.message_id)
        except Exception:
            log.warning("could not mark %s:%s answered", incoming.platform, incoming.message_id)
