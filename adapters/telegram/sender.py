"""The Bot API calls one bot makes, and where replies go (`Target`).

Text goes out as plain text (no parse mode), so nothing a model writes can break the formatting.
A call that fails on the network is retried with backoff (429s are already retried by PTB's
AIORateLimiter); one that Telegram refuses for good (400/403) is logged and skipped, since retrying
cannot help. If the network stays down, `DeliveryFailed` says the reply was not delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardMarkup, Message, MessageEntity, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter

from adapters.telegram import entities
from adapters.telegram.entities import Chunk
from bot.messages import ChatKind, Incoming, ReplyFile

log = logging.getLogger(__name__)
T = TypeVar("T")

TYPING_REFRESH = 4.0  # Telegram shows "typing…" for 5 s or until the next message
# A chat action that took longer than this waited in PTB's rate limiter: the bot is at
# Telegram's limit, where every "typing…" refresh delays somebody's answer. Measured with 60
# users on one worker: refreshes were 4 of every 5 calls, and replies/s fell from 15 to 6.
TYPING_PATIENCE = 2.0
EDIT_INTERVAL = 1.0  # at most one streaming edit per second per chat (Telegram's chat limit)
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
        attempts: int = SEND_ATTEMPTS,
    ) -> None:
        """`attempts`: tries per call before DeliveryFailed (1 for messages whose caller
        retries them itself, the scheduler's)."""
        self.bot = bot
        self._attempts = attempts
        self.bot_username = bot_username
        self._retry_delay = retry_delay
        self._typing_refresh = typing_refresh
        self.clock = clock  # paces streaming edits and times "typing…"; tests step it
        self._last_edit: dict[int, float] = {}

    async def call(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        """Run a Bot API call, retrying network errors with backoff; raise DeliveryFailed."""
        delay = self._retry_delay
        for attempt in range(1, self._attempts + 1):
            try:
                return await action()
            except (BadRequest, Forbidden, ChatMigrated):
                raise
            except RetryAfter as exc:  # AIORateLimiter gave up: wait as told, once more
                if attempt == self._attempts:
                    break
                wait = _seconds(exc)
                log.warning("telegram %s: rate limited, retrying in %.0fs", what, wait)
                await asyncio.sleep(wait)
            except NetworkError as exc:
                if attempt == self._attempts:
                    break
                log.warning("telegram %s failed (%s); retry %d in %.1fs", what, exc, attempt, delay)
                await asyncio.sleep(delay)
                delay *= 2
        raise DeliveryFailed(f"telegram {what} failed {self._attempts} times")

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

    async def send_text(
        self,
        target: Target,
        text: str | Chunk,
        *,
        strict: bool = False,
        markup: InlineKeyboardMarkup | None = None,
    ) -> Message | None:
        """Send `text` split at Telegram's limit (a `Chunk`, already one message, as it is, with
        its entities); return the first message sent.
        `strict` raises Telegram's refusals (Forbidden, BadRequest) instead of skipping them.
        `markup` (the reply's buttons) goes under the last part."""
        first: Message | None = None
        chunks = [text] if isinstance(text, Chunk) else entities.chunks(text)
        for n, chunk in enumerate(chunks):
            buttons = markup if n == len(chunks) - 1 else None
            send = partial(
                _formatted,
                partial(
                    self.bot.send_message, text=chunk.text, reply_markup=buttons, **target.kwargs()
                ),
                chunk.entities,
            )
            sent = await self._send("sendMessage", send, strict)
            first = first or sent
            target = replace(target, reply_to=None)  # only the first part is a reply
        return first

    async def edit_text(
        self, message: Message, text: str | Chunk, markup: InlineKeyboardMarkup | None = None
    ) -> bool:
        """Replace a message's text (and put `markup` under it); False if Telegram refused
        (e.g. it was deleted)."""
        chunk = text if isinstance(text, Chunk) else Chunk(text)
        try:
            await self.call(
                "editMessageText",
                lambda: _formatted(
                    partial(
                        self.bot.edit_message_text,
                        chunk.text,
                        chat_id=message.chat_id,
                        message_id=message.message_id,
                        reply_markup=markup,
                    ),
                    chunk.entities,
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
        self,
        target: Target,
        file: ReplyFile,
        caption: str | Chunk | None,
        *,
        strict: bool = False,
        markup: InlineKeyboardMarkup | None = None,
    ) -> None:
        """An image as a photo (sendPhoto), any other file as a document (sendDocument)."""
        if file.is_image:
            send = partial(self.bot.send_photo, photo=file.data, filename=file.filename)
            what = "sendPhoto"
        else:
            send = partial(self.bot.send_document, document=file.data, filename=file.filename)
            what = "sendDocument"
        shown = Chunk(caption) if isinstance(caption, str) else caption
        await self._send(
            what,
            lambda: _formatted(
                partial(
                    send,
                    caption=shown.text if shown else None,
                    reply_markup=markup,
                    **target.kwargs(),
                ),
                shown.entities if shown else (),
                key="caption_entities",
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


async def _formatted(
    send: Callable[..., Awaitable[T]],
    entities: tuple[MessageEntity, ...],
    *,
    key: str = "entities",
) -> T:
    """`send` with its entities; formatting Telegram refuses (e.g. ENTITIES_TOO_LONG, a limit
    its documentation does not state) costs the formatting, never the message: the same text
    goes again without it."""
    if not entities:
        return await send()
    try:
        return await send(**{key: entities})
    except BadRequest as exc:
        if "entit" not in str(exc).lower():
            raise
        log.warning("telegram refused the formatting (%s); sending the text unformatted", exc)
        return await send()


def _seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int form is deprecated
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
