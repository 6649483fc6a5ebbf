"""Sending the core's replies to Discord: channel messages (streamed by edits) and slash-command
follow-ups. Every text goes out split at 2000 characters and with mentions disabled.

Idempotent sends: each message a turn creates carries the nonce "<incoming id>:<n>" with
`enforce_nonce` (discord.py sets it with any nonce), so a POST retried after a timeout, or a turn
replayed after a restart, returns the message Discord already has instead of a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import Callable, Iterator

import discord

from adapters.text import DISCORD_LIMIT, split_message
from bot.messages import Reply, ReplyFile

log = logging.getLogger(__name__)

EDIT_INTERVAL = 1.2  # seconds between edits of a streaming message (Discord allows ~5 per 5 s)
TYPING_EVERY = 8.0  # a typing indicator lasts ~10 s
TYPING_WAIT = 3.0  # the longest a reply waits for its typing indicator to be shown
NONCE_LIMIT = 25  # Discord rejects longer string nonces
NO_MENTIONS = discord.AllowedMentions.none()


class Undeliverable(Exception):
    """Discord refuses this reply for good (no access, channel or interaction gone, a request
    it rejects): retrying cannot help."""


@contextlib.contextmanager
def _refusals_are_final() -> Iterator[None]:
    """A 4xx other than 429 (discord.py retries those) is Discord's final word."""
    try:
        yield
    except discord.HTTPException as exc:
        if 400 <= exc.status < 500 and exc.status != 429:
            raise Undeliverable(f"{exc.status} {exc.text or ''}".strip()) from exc
        raise


def _file(file: ReplyFile) -> discord.File:
    return discord.File(io.BytesIO(file.data), filename=file.filename)


def _preview(text: str) -> str:
    """What a streaming message shows: the text so far, cut to one message."""
    return text if len(text) <= DISCORD_LIMIT else text[: DISCORD_LIMIT - 1] + "…"


class TypingIndicator:
    """Shows "typing…" in a channel while a turn runs. Started without awaiting anything, so the
    core's per-chat FIFO lock is taken in message order; replies wait for `shown` instead, so
    the indicator still comes first. A failed typing call is only logged: it is cosmetic."""

    def __init__(self, channel: discord.abc.Messageable) -> None:
        self._channel = channel
        self._task: asyncio.Task[None] | None = None
        self.shown = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_shown(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.shown.wait(), TYPING_WAIT)

    async def _run(self) -> None:
        while True:
            try:
                await self._channel.typing()
            except (discord.HTTPException, OSError) as exc:
                log.debug("typing indicator failed: %s", exc)
            self.shown.set()
            await asyncio.sleep(TYPING_EVERY)


class ChannelReplies:
    """Replies to one incoming message in its channel: partial replies are one message edited as
    the text grows (at most every EDIT_INTERVAL s); the final reply replaces it, overflow and
    files follow as new messages."""

    def __init__(
        self,
        channel: discord.abc.Messageable,
        message_id: str,
        *,
        reference: discord.MessageReference | None = None,
        typing: TypingIndicator | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._channel = channel
        self._typing = typing
        self._message_id = message_id
        self._reference = reference
        self._clock = clock
        self._count = 0  # messages created so far (numbers the nonces)
        self._stream: discord.Message | None = None
        self._shown = ""
        self._edited_at = 0.0

    async def partial(self, text: str) -> None:
        preview = _preview(text)
        if not preview.strip() or preview == self._shown:
            return
        if self._stream is None:
            self._stream = await self._post(preview)
        elif self._clock() - self._edited_at >= EDIT_INTERVAL:
            await self._edit(self._stream, preview)
        else:
            return  # too soon: the next partial or the final reply shows it
        self._shown, self._edited_at = preview, self._clock()

    async def final(self, reply: Reply) -> None:
        chunks = [c for c in split_message(reply.text, DISCORD_LIMIT) if c.strip()]
        if self._stream is not None and chunks:
            if chunks[0] != self._shown:
                await self._edit(self._stream, chunks[0])
            chunks = chunks[1:]
        self._stream, self._shown = None, ""
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            await self._post(chunk, reply.file if last else None)
        if reply.file is not None and not chunks:
            await self._post("", reply.file)

    async def finish(self) -> None:
        return None  # the final reply already replaced the streamed message

    async def _post(self, text: str, file: ReplyFile | None = None) -> discord.Message:
        if self._typing is not None and self._count == 0:
            await self._typing.wait_shown()
        nonce = f"{self._message_id}:{self._count}"[-NONCE_LIMIT:]
        reference = self._reference if self._count == 0 else None
        self._count += 1
        extra = {"file": _file(file)} if file is not None else {}
        with _refusals_are_final():
            sent = await self._channel.send(
                text or None,
                nonce=nonce,
                allowed_mentions=NO_MENTIONS,
                reference=reference,  # type: ignore[arg-type]
                mention_author=False if reference else None,
                **extra,  # type: ignore[arg-type]
            )
        if text and sent.content != text:
            # Discord returned an earlier message with this nonce (a replayed turn): bring it
            # up to date instead of posting a duplicate.
            await self._edit(sent, text)
        return sent

    async def _edit(self, message: discord.Message, text: str) -> None:
        with _refusals_are_final():
            await message.edit(content=text, allowed_mentions=NO_MENTIONS)


class InteractionReplies:
    """Replies to a deferred slash command, with the visibility chosen at defer time.

    The first message is written by editing the deferred response ("thinking…") in place: that
    PATCH is idempotent, whereas a follow-up POST has no nonce and discord.py retries a 5xx by
    itself, so a 502 after Discord stored it would post the answer twice. Only overflow past
    the first message (over 2000 characters) goes out as follow-ups."""

    def __init__(self, interaction: discord.Interaction, *, ephemeral: bool) -> None:
        self._interaction = interaction
        self._ephemeral = ephemeral
        self.sent = 0

    async def partial(self, text: str) -> None:
        """Commands answer at once; nothing is streamed into a deferred response."""

    async def final(self, reply: Reply) -> None:
        chunks = [c for c in split_message(reply.text, DISCORD_LIMIT) if c.strip()] or [""]
        for index, chunk in enumerate(chunks):
            file = reply.file if index == len(chunks) - 1 else None
            extra = {"file": _file(file)} if file is not None else {}
            if not chunk and not extra:
                continue
            # NotFound here: the interaction token expired (15 min) or the defer never landed.
            with _refusals_are_final():
                if self.sent == 0:
                    await self._interaction.edit_original_response(
                        content=chunk or None,
                        attachments=[extra["file"]] if extra else discord.utils.MISSING,
                        allowed_mentions=NO_MENTIONS,
                    )
                else:
                    await self._interaction.followup.send(
                        chunk or discord.utils.MISSING,
                        ephemeral=self._ephemeral,
                        allowed_mentions=NO_MENTIONS,
                        **extra,  # type: ignore[arg-type]
                    )
            self.sent += 1

    async def finish(self) -> None:
        """A command that produced no answer (e.g. a duplicate) must not leave "thinking…"
        spinning until Discord times it out."""
        if self.sent == 0:
            with contextlib.suppress(discord.HTTPException, OSError):
                await self._interaction.delete_original_response()


class DroppedReplies:
    """Replies to a slash command replayed after a restart: its token (valid 15 min, never
    stored) is gone, so the answer cannot be delivered — the turn still completes."""

    def __init__(self, message_id: str) -> None:
        self._message_id = message_id

    async def partial(self, text: str) -> None:
        return None

    async def final(self, reply: Reply) -> None:
        log.info("reply to replayed interaction %s dropped (token expired)", self._message_id)

    async def finish(self) -> None:
        return None
