"""Sending one turn's replies into a Telegram chat: typing, streaming edits, splitting, files.

"typing…" is shown only when the core says the answer is taking a while (`Reply.typing`), never
for a message still waiting its turn, so a quick answer costs one sendMessage.

Text goes out as plain text (no parse mode), so nothing a model writes can break the formatting.
A send that fails on the network is retried with backoff (429s are already retried by PTB's
AIORateLimiter); one that Telegram refuses for good (400/403) is logged and skipped, since retrying
cannot help. If the network stays down, `DeliveryFailed` stops the turn *before* the core marks
the message answered, so it is replayed at the next start instead of being lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from telegram import Bot, Message, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter

from adapters.text import TELEGRAM_LIMIT, split_message, utf16_len
from bot.messages import ChatKind, Incoming, Reply, ReplyFile

log = logging.getLogger(__name__)
T = TypeVar("T")

TYPING_REFRESH = 4.0  # Telegram shows "typing…" for 5 s or until the next message
# A chat action that took longer than this waited in PTB's rate limiter: the bot is at
# Telegram's limit, where every "typing…" refresh delays somebody's answer. Measured with 60
# users on one worker: refreshes were 4 of every 5 calls, and replies/s fell from 15 to 6.
TYPING_PATIENCE = 2.0
EDIT_INTERVAL = 1.0  # at most one streaming edit per second per chat (Telegram's chat limit)
# A streamed answer is shown only once it has been coming for this long: a quick answer goes
# out as one message (no edits to spend the rate limit on, no half-message left behind if the
# process dies before the final edit: the replayed reply would be a second message).
STREAM_AFTER = 1.0
CAPTION_LIMIT = 1024
SEND_ATTEMPTS = 4


class DeliveryFailed(Exception):
    """The platform stayed unreachable: the reply was not delivered."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where replies to one Incoming go."""

    chat_id: int
    user_id: int
    group: bool
    reply_to: int | None = None
    thread_id: int | None = None

    @classmethod
    def of(cls, incoming: Incoming) -> Target:
        group = incoming.chat_kind is ChatKind.GROUP
        reply_to = incoming.extra.get("reply_to")
        return cls(
            chat_id=int(incoming.chat_id),
            user_id=int(incoming.platform_user_id),
            group=group,
            # In groups, answer as a reply so it is clear whom the bot answers.
            reply_to=int(reply_to) if group and reply_to else None,
            thread_id=incoming.extra.get("thread_id"),
        )

    def kwargs(self) -> dict[str, Any]:
        args: dict[str, Any] = {"chat_id": self.chat_id}
        if self.thread_id is not None:
            args["message_thread_id"] = self.thread_id
        if self.reply_to is not None:
            args["reply_parameters"] = ReplyParameters(
                self.reply_to, allow_sending_without_reply=True
            )
        return args


class Sender:
    """Bot API calls with retries; one per adapter. Knows each chat's last streaming edit."""

    def __init__(
        self,
        bot: Bot,
        bot_username: str,
        *,
        retry_delay: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        typing_refresh: float = TYPING_REFRESH,
    ) -> None:
        self.bot = bot
        self.bot_username = bot_username
        self._retry_delay = retry_delay
        self._typing_refresh = typing_refresh
        self.clock = clock  # paces streaming edits and times "typing…"; tests step it
        self._last_edit: dict[int, float] = {}

    async def call(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        """Run a Bot API call, retrying network errors with backoff; raise DeliveryFailed."""
        delay = self._retry_delay
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await action()
            except (BadRequest, Forbidden, ChatMigrated):
                raise
            except RetryAfter as exc:  # AIORateLimiter gave up: wait as told, once more
                if attempt == SEND_ATTEMPTS:
                    break
                wait = _seconds(exc)
                log.warning("telegram %s: rate limited, retrying in %.0fs", what, wait)
                await asyncio.sleep(wait)
            except NetworkError as exc:
                if attempt == SEND_ATTEMPTS:
                    break
                log.warning("telegram %s failed (%s); retry %d in %.1fs", what, exc, attempt, delay)
                await asyncio.sleep(delay)
                delay *= 2
        raise DeliveryFailed(f"telegram {what} failed {SEND_ATTEMPTS} times")

    async def refresh_typing(self, target: Target, done: asyncio.Event) -> None:
        """Send "typing…" every few seconds until `done` is set."""
        while not done.is_set():
            started = self.clock()
            try:
                await self.bot.send_chat_action(
                    target.chat_id, ChatAction.TYPING, message_thread_id=target.thread_id
                )
            except Exception as exc:  # cosmetic: never let it disturb the turn
                log.debug("telegram typing indicator failed: %s", exc)
            if self.clock() - started > TYPING_PATIENCE:
                log.debug(
                    "telegram: typing… in chat %s not refreshed: calls queue for the rate"
                    " limit, answers go first",
                    target.chat_id,
                )
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self._typing_refresh)

    async def send_text(self, target: Target, text: str, *, strict: bool = False) -> Message | None:
        """Send `text` split at Telegram's limit; return the first message sent.
        `strict` raises Telegram's refusals (Forbidden, BadRequest) instead of skipping them."""
        first: Message | None = None
        for chunk in split_message(text or "…", TELEGRAM_LIMIT, utf16_len):
            send = partial(self.bot.send_message, text=chunk, **target.kwargs())
            sent = await self._send("sendMessage", send, strict)
            first = first or sent
            target = replace(target, reply_to=None)  # only the first part is a reply
        return first

    async def edit_text(self, message: Message, text: str) -> bool:
        """Replace a message's text; False if Telegram refused (e.g. it was deleted)."""
        try:
            await self.call(
                "editMessageText",
                lambda: self.bot.edit_message_text(
                    text, chat_id=message.chat_id, message_id=message.message_id
                ),
            )
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return True
            log.info("telegram edit refused (%s); sending a new message", exc)
            return False
        except (Forbidden, ChatMigrated) as exc:
            log.warning("telegram edit refused: %s", exc)
            return False
        self.started_edit(message.chat_id)
        return True

    def may_edit(self, chat_id: int) -> bool:
        return self.clock() - self._last_edit.get(chat_id, 0.0) >= EDIT_INTERVAL

    def started_edit(self, chat_id: int) -> None:
        now = self.clock()
        if len(self._last_edit) > 1000:  # forget chats whose pacing no longer matters
            self._last_edit = {c: t for c, t in self._last_edit.items() if now - t < EDIT_INTERVAL}
        self._last_edit[chat_id] = now

    async def send_file(
        self, target: Target, file: ReplyFile, caption: str | None, *, strict: bool = False
    ) -> None:
        await self._send(
            "sendDocument",
            lambda: self.bot.send_document(
                document=file.data, filename=file.filename, caption=caption, **target.kwargs()
            ),
            strict,
        )

    async def _send(self, what: str, action: Callable[[], Awaitable[T]], strict: bool) -> T | None:
        """Like `call`, but unless `strict` a refusal for good is logged and skipped."""
        try:
            return await self.call(what, action)
        except (BadRequest, Forbidden, ChatMigrated) as exc:
            if strict:
                raise
            log.warning("telegram refused %s: %s", what, exc)
            return None


class Typing:
    """One turn's "typing…": shown from `start()` (the core said the answer takes a while)
    until `halt()` (the answer goes out next, so "typing…" does not outlive it)."""

    def __init__(self, sender: Sender, target: Target) -> None:
        self._sender = sender
        self._target = target
        self._done = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._tasks and not self._done.is_set():
            return  # already showing
        self._done = asyncio.Event()
        task = asyncio.create_task(
            self._sender.refresh_typing(self._target, self._done),
            name=f"telegram-typing-{self._target.chat_id}",
        )
        self._tasks.append(task)

    def halt(self) -> None:
        self._done.set()

    async def aclose(self) -> None:
        self.halt()
        # Lets a chat action in flight finish rather than cut the connection.
        await asyncio.gather(*self._tasks)


def _seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int form is deprecated
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass
class Progress:
    """What of one turn's replies already reached the chat, shared by the attempts of the turn:
    each message sent, by (reply number, part number) -> what it carried, and the message a
    stream began (with its reply number), which a later attempt edits instead of sending anew."""

    parts: dict[tuple[int, int], str] = field(default_factory=dict)
    stream: tuple[int, Message] | None = None


class TurnWriter:
    """Writes the replies of one turn into its chat.

    Partial replies (a streaming model) become one message edited as the text grows, at most
    once per EDIT_INTERVAL, once the answer has been streaming for STREAM_AFTER; the final reply
    replaces it (and continues in more messages when longer than the limit). A `private` reply
    to a group message goes to the user's private chat; the group gets a note without content.

    What went out is noted in `progress` (shared by the attempts of one turn): when a turn is
    tried again after a part of its reply failed, only the parts that did not go out are sent.
    """

    def __init__(self, sender: Sender, target: Target, progress: Progress | None = None) -> None:
        self._sender = sender
        self._target = target
        self._progress = Progress() if progress is None else progress
        self._sent = self._progress.parts
        self._stream: Message | None = None
        self._shown = ""
        # A retried turn whose reply partly went out shows no new stream: it would repeat part 1.
        self._streaming = not self._sent and self._progress.stream is None
        self._first_partial: float | None = None
        self._reply = 0  # the number of the current final reply
        self._part = 0  # the next message's number within it

    async def write(self, reply: Reply) -> None:
        if reply.partial:
            if not (reply.private and self._target.group):  # private text never streams there
                await self._partial(reply.text)
            return
        if reply.private and self._target.group:
            await self._private(reply)
        elif reply.file is not None:
            await self._file(self._target, reply, strict=False)
        else:
            await self._final(reply.text)
        self._stream, self._shown, self._first_partial = None, "", None
        self._progress.stream = None
        self._reply, self._part = self._reply + 1, 0

    async def _partial(self, text: str) -> None:
        now = self._sender.clock()
        if self._first_partial is None:
            self._first_partial = now
        if self._stream is None and now - self._first_partial < STREAM_AFTER:
            return  # typing… still shows; the final reply or a later partial shows the text
        preview = split_message(text, TELEGRAM_LIMIT, utf16_len)[0]
        if not self._streaming or not preview.strip() or preview == self._shown:
            return
        chat = self._target.chat_id
        if self._stream is None:
            self._stream = await self._sender.send_text(self._target, preview)
            self._sender.started_edit(chat)
            self._streaming = self._stream is not None
            if self._stream is not None:
                self._progress.stream = (self._reply, self._stream)
        elif self._sender.may_edit(chat):
            self._streaming = await self._sender.edit_text(self._stream, preview)
        else:
            return  # too soon: a later partial or the final reply shows this text
        self._shown = preview

    async def _final(self, text: str) -> None:
        chunks = split_message(text or "…", TELEGRAM_LIMIT, utf16_len)
        target = self._target
        stream = self._stream or self._earlier_stream()
        if stream is not None:
            first = chunks[0]
            if first == self._shown or await self._sender.edit_text(stream, first):
                self._done_part(first)
                chunks, target = chunks[1:], replace(target, reply_to=None)
        await self._texts(target, chunks)

    def _earlier_stream(self) -> Message | None:
        """The message an earlier attempt's stream of this reply left in the chat."""
        earlier = self._progress.stream
        return earlier[1] if earlier is not None and earlier[0] == self._reply else None

    async def _texts(self, target: Target, chunks: list[str], *, strict: bool = False) -> None:
        """Send each chunk not already sent; only the first one quotes the user's message."""
        for n, chunk in enumerate(chunks):
            to = target if n == 0 else replace(target, reply_to=None)
            await self._once(chunk, partial(self._sender.send_text, to, chunk, strict=strict))

    async def _file(self, target: Target, reply: Reply, *, strict: bool) -> None:
        assert reply.file is not None
        file, text = reply.file, reply.text
        caption = text if text and utf16_len(text) <= CAPTION_LIMIT else None
        await self._once(
            f"file:{file.filename}:{len(file.data)}",
            lambda: self._sender.send_file(target, file, caption, strict=strict),
        )
        if text and caption is None:
            chunks = split_message(text, TELEGRAM_LIMIT, utf16_len)
            await self._texts(replace(target, reply_to=None), chunks, strict=strict)

    async def _once(self, what: str, send: Callable[[], Awaitable[object]]) -> None:
        """Send the next part of this reply unless an earlier attempt already sent it."""
        if self._sent.get((self._reply, self._part)) != what:
            await send()
        self._done_part(what)

    def _done_part(self, what: str) -> None:
        self._sent[(self._reply, self._part)] = what
        self._part += 1

    async def _private(self, reply: Reply) -> None:
        """Answer in the user's private chat and say so in the group."""
        dm = Target(chat_id=self._target.user_id, user_id=self._target.user_id, group=False)
        try:
            if reply.file is not None:
                await self._file(dm, reply, strict=True)
            else:
                await self._texts(
                    dm, split_message(reply.text or "…", TELEGRAM_LIMIT, utf16_len), strict=True
                )
            note = "I sent you the answer in a private chat."
        except (Forbidden, BadRequest) as exc:  # the user never started a chat with the bot
            log.info("telegram private reply refused (%s); asking the user to start a chat", exc)
            note = (
                f"I can only answer that privately: open a chat with me "
                f"(https://t.me/{self._sender.bot_username}), press Start and ask again."
            )
        await self._texts(self._target, [note])
