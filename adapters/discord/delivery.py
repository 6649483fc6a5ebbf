"""Sending the core's replies to Discord: channel messages (streamed by edits) and slash-command
follow-ups. Every text goes out split at 2000 characters and with mentions disabled.

Idempotent sends: part n of a turn's answer (the n-th message it needs, numbered the same way
on every attempt) carries the nonce "<incoming id>:<n>" with `enforce_nonce` (discord.py sets it
with any nonce), so a POST retried after a timeout returns the message Discord already has
instead of a duplicate. Discord checks nonces only for a few minutes, so parts are also
remembered: an attempt in this run skips the parts an earlier one sent, and a turn replayed for a
message older than NONCE_TRUST first looks for its parts among the bot's messages after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol

import discord

from adapters.discord.buttons import Buttons
from adapters.text import DISCORD_LIMIT, split_message
from bot.messages import Reply, ReplyFile

log = logging.getLogger(__name__)

EDIT_INTERVAL = 1.2  # seconds between edits of a streaming message (Discord allows ~5 per 5 s)
TYPING_EVERY = 8.0  # a typing indicator lasts ~10 s
TYPING_WAIT = 3.0  # the longest a reply waits for its typing indicator to be shown
NONCE_LIMIT = 25  # Discord rejects longer string nonces
NO_MENTIONS = discord.AllowedMentions.none()
_FENCE = re.compile(r"^ {0,3}```[ \t]*([^\s`]*)", re.MULTILINE)  # a code fence and its language
FENCE_LANGUAGE = 16  # the longest language kept when a block is opened again
FENCE_ROOM = len("```\n\n```") + FENCE_LANGUAGE  # what closing and reopening a block adds
NONCE_TRUST = 120.0  # seconds Discord's nonce check is relied on ("the past few minutes")
LOOKBACK = 100  # bot messages after the user's that a replay looks through (one request)
CANNOT_MESSAGE_USER = 50007  # Discord's code for a DM the user's settings refuse

Lookup = Callable[[], Awaitable[list[discord.Message]]]


class Undeliverable(Exception):
    """Discord refuses this reply for good (no access, channel or interaction gone, a request
    it rejects): retrying cannot help."""


class DirectMessagesClosed(Undeliverable):
    """The user's privacy settings refuse a DM from the bot (403, code 50007)."""


class PrivateRoute(Protocol):
    """Where a private reply to a message in a shared channel goes instead (the author's DMs).
    `send` returns the note the shared channel gets in its place, without the content."""

    def begin(self) -> None: ...
    async def send(self, reply: Reply) -> str: ...


class Replies(Protocol):
    """Where one turn's replies go (a channel, a slash command's response, nowhere), kept across
    the attempts at the turn in this run: `begin` starts one."""

    def begin(self) -> None: ...
    def working(self) -> None: ...
    async def stop_working(self) -> None: ...
    async def partial(self, text: str) -> None: ...
    async def final(self, reply: Reply) -> None: ...
    async def finish(self) -> None: ...


@contextlib.contextmanager
def refusals_are_final() -> Iterator[None]:
    """A 4xx other than 429 (discord.py retries those) is Discord's final word."""
    try:
        yield
    except discord.HTTPException as exc:
        if 400 <= exc.status < 500 and exc.status != 429:
            closed = exc.code == CANNOT_MESSAGE_USER
            kind = DirectMessagesClosed if closed else Undeliverable
            raise kind(f"{exc.status} {exc.text or ''}".strip()) from exc
        raise


def earlier_replies(channel: discord.abc.Messageable, message_id: str, me: int) -> Lookup:
    """The bot's messages in `channel` after the message `message_id`, oldest first."""

    async def lookup() -> list[discord.Message]:
        after = discord.Object(id=int(message_id))
        history = channel.history(limit=LOOKBACK, after=after, oldest_first=True)
        return [m async for m in history if m.author.id == me]

    return lookup


def _shows(message: discord.Message, part: int, text: str, message_id: str) -> bool:
    """Whether an earlier bot message is `part` of the answer to `message_id`: the same text;
    for the first part also the message replying to it, or a streamed preview of the text."""
    if text and message.content == text:
        return True
    if part != 0:
        return False
    ref = message.reference
    if ref is not None and str(ref.message_id) == message_id:
        return True
    shown = message.content.removesuffix("…")
    return bool(shown) and text.startswith(shown)


def _files(file: ReplyFile | None) -> list[discord.File]:
    """A reply's file as discord.py's `files`/`attachments` argument: MISSING (typed Any)
    when there is none, which leaves a message's attachments as they are."""
    if file is None:
        return discord.utils.MISSING
    return [discord.File(io.BytesIO(file.data), filename=file.filename)]


def parts(reply: Reply) -> list[str]:
    """The messages a reply needs. Plain text is escaped (`escape_markdown`), so text quoted
    from users never formats; the model's Markdown goes as it is, Discord renders it, and a
    code block cut by a split is closed at the cut and opened again in the next part."""
    if not reply.markdown:
        return split_message(discord.utils.escape_markdown(reply.text), DISCORD_LIMIT)
    return _fences_closed(split_message(reply.text, DISCORD_LIMIT - FENCE_ROOM))


def _fences_closed(chunks: list[str]) -> list[str]:
    closed, reopen = [], ""
    for chunk in chunks:
        text = reopen + chunk
        fences = _FENCE.findall(text)
        reopen = ""
        if len(fences) % 2:  # the last fence opened a block that goes on in the next part
            text, reopen = text + "\n```", f"```{fences[-1][:FENCE_LANGUAGE]}\n"
        closed.append(text)
    return closed


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
        if self._task is None or self._task.done():
            self.shown.clear()
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def settle(self) -> None:
        """Before the answer: a typing call still in flight lands first (landing after the
        answer, it would show "typing…" under it for 10 s), then the indicator stops."""
        await self.wait_shown()
        await self.stop()

    async def wait_shown(self) -> None:
        if self._task is None:
            return  # not started: nothing to wait for
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
    files follow as new messages. A private reply in a shared channel goes by `private` (the
    author's DMs) and the channel gets only its note. One object serves every attempt at the
    turn in this run (`begin` starts one), so parts already sent are not sent again."""

    def __init__(
        self,
        channel: discord.abc.Messageable,
        message_id: str,
        *,
        reference: discord.MessageReference | None = None,
        typing: TypingIndicator | None = None,
        clock: Callable[[], float] = time.monotonic,
        tag: str = "",
        private: PrivateRoute | None = None,
        earlier: Lookup | None = None,
        wall: Callable[[], float] = time.time,
        buttons: Buttons | None = None,
    ) -> None:
        """`buttons` makes a reply's actions buttons only the asking user may press."""
        self._channel = channel
        self._buttons = buttons
        self._typing = typing
        self._message_id = message_id
        self._reference = reference
        self._clock = clock
        self._tag = tag  # tells this channel's nonces apart from another's for the same message
        self._private = private
        self._earlier = earlier
        self._wall = wall
        self._sent: dict[int, discord.Message] = {}  # part number -> the message showing it
        self._found: list[discord.Message] | None = None  # earlier bot messages, once looked up
        self._next = 0  # the part number of the attempt's next message
        self._stream: discord.Message | None = None
        self._shown = ""
        self._edited_at = 0.0

    def begin(self) -> None:
        """A new attempt at the turn: parts are numbered from 0 again."""
        self._next, self._stream, self._shown, self._found = 0, None, "", None
        if self._private is not None:
            self._private.begin()

    def working(self) -> None:
        if self._typing is not None:
            self._typing.start()

    async def stop_working(self) -> None:
        if self._typing is not None:
            await self._typing.settle()

    async def partial(self, text: str) -> None:
        preview = _preview(text)
        if not preview.strip() or preview == self._shown:
            return
        if self._stream is not None and self._clock() - self._edited_at < EDIT_INTERVAL:
            return  # too soon: the next partial or the final reply shows it
        self._stream = await self._put(self._next, preview)
        self._shown, self._edited_at = preview, self._clock()

    async def final(self, reply: Reply) -> None:
        await self.stop_working()
        if reply.private and self._private is not None:
            # The shared channel gets the note only: the buttons went with the answer.
            reply = Reply(await self._private.send(reply))
        chunks = [c for c in parts(reply) if c.strip()]
        if reply.file is not None and not chunks:
            chunks = [""]
        view = self._buttons.view(reply.actions) if self._buttons and reply.actions else None
        first = self._next  # a streamed message is this part: its final text replaces it
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            await self._put(
                first + index, chunk, reply.file if last else None, view if last else None
            )
        self._next = first + max(len(chunks), int(self._stream is not None))
        self._stream, self._shown = None, ""

    async def finish(self) -> None:
        return None  # the final reply already replaced the streamed message

    async def _put(
        self,
        part: int,
        text: str,
        file: ReplyFile | None = None,
        view: discord.ui.View | None = None,
    ) -> discord.Message:
        """Show `text` as this part: the message already showing it (edited if its text
        differs), or a new one."""
        message = self._sent.get(part) or await self._already_there(part, text)
        if message is None:
            message = await self._post(part, text, file, view)
        stale = bool(text) and message.content != text
        missing = file is not None and not message.attachments  # e.g. a streamed preview
        unbuttoned = view is not None and not message.components
        if stale or missing or unbuttoned:
            # An earlier attempt's or the preview's message for this part: bring it up to date.
            with refusals_are_final():
                message = await message.edit(
                    content=text or message.content,
                    attachments=_files(file) if missing else discord.utils.MISSING,
                    allowed_mentions=NO_MENTIONS,
                    view=view if unbuttoned else discord.utils.MISSING,
                )
        self._sent[part] = message
        return message

    async def _already_there(self, part: int, text: str) -> discord.Message | None:
        """For a message older than Discord's nonce window: the bot's message after it that
        shows this part already (posted by a run that ended before recording it)."""
        if self._earlier is None or not self._beyond_nonce_window():
            return None
        if self._found is None:
            try:
                self._found = await self._earlier()
            except discord.HTTPException as exc:  # e.g. no Read Message History permission
                log.warning("discord: cannot look for earlier replies: %s", exc)
                self._found = []
        match = next((m for m in self._found if _shows(m, part, text, self._message_id)), None)
        if match is not None:
            self._found.remove(match)
        return match

    def _beyond_nonce_window(self) -> bool:
        made = discord.utils.snowflake_time(int(self._message_id)).timestamp()
        return self._wall() - made >= NONCE_TRUST

    async def _post(
        self, part: int, text: str, file: ReplyFile | None, view: discord.ui.View | None = None
    ) -> discord.Message:
        if part == 0 and self._typing is not None:
            await self._typing.wait_shown()
        nonce = f"{self._message_id}:{self._tag}{part}"[-NONCE_LIMIT:]
        reference = self._reference if part == 0 else None
        with refusals_are_final():
            # discord.py's overloads leave out the None that send() itself defaults
            # `reference` and `mention_author` to (no reference, the client's default).
            return await self._channel.send(
                text or None,
                nonce=nonce,
                allowed_mentions=NO_MENTIONS,
                reference=reference,  # type: ignore[arg-type]
                mention_author=False if reference else None,  # type: ignore[arg-type]
                files=_files(file),
                view=view or discord.utils.MISSING,
            )


class InteractionReplies:
    """Replies to a deferred slash command, with the visibility chosen at defer time (every
    part: the deferred response and each follow-up carry it).

    The first message is written by editing the deferred response ("thinking…") in place: that
    PATCH is idempotent, whereas a follow-up POST has no nonce and discord.py retries a 5xx by
    itself, so a 502 after Discord stored it would post the answer twice. Only overflow past
    the first message (over 2000 characters) goes out as follow-ups; a later attempt skips the
    parts an earlier one sent."""

    def __init__(
        self, interaction: discord.Interaction, *, ephemeral: bool, buttons: Buttons | None = None
    ) -> None:
        """`buttons`: a reply's actions become buttons only the asking user may press."""
        self._interaction = interaction
        self._ephemeral = ephemeral
        self._buttons = buttons
        self._done: set[int] = set()  # parts sent
        self._next = 0

    @property
    def sent(self) -> int:
        return len(self._done)

    def begin(self) -> None:
        self._next = 0

    def working(self) -> None:
        """Discord already shows "thinking…" for a deferred command."""

    async def stop_working(self) -> None:
        return None

    async def partial(self, text: str) -> None:
        """Commands answer at once; nothing is streamed into a deferred response."""

    async def final(self, reply: Reply) -> None:
        chunks = [c for c in parts(reply) if c.strip()] or [""]
        view = self._buttons.view(reply.actions) if self._buttons and reply.actions else None
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            file = reply.file if last else None
            if not chunk and file is None:
                continue
            part, self._next = self._next, self._next + 1
            if part not in self._done:
                await self._send(part, chunk, file, view if last else None)
                self._done.add(part)

    async def _send(
        self, part: int, chunk: str, file: ReplyFile | None, view: discord.ui.View | None
    ) -> None:
        # NotFound here: the interaction token expired (15 min) or the defer never landed.
        buttons = view or discord.utils.MISSING
        with refusals_are_final():
            if part == 0:
                await self._interaction.edit_original_response(
                    content=chunk or None,
                    attachments=_files(file),
                    allowed_mentions=NO_MENTIONS,
                    view=buttons,
                )
            else:
                await self._interaction.followup.send(
                    chunk or discord.utils.MISSING,
                    ephemeral=self._ephemeral,
                    allowed_mentions=NO_MENTIONS,
                    files=_files(file),
                    view=buttons,
                )

    async def finish(self) -> None:
        """A command that produced no answer (e.g. a duplicate) must not leave "thinking…"
        spinning until Discord times it out."""
        if not self._done:
            with contextlib.suppress(discord.HTTPException, OSError):
                await self._interaction.delete_original_response()


class DroppedReplies:
    """Replies to a slash command replayed after a restart: its token (valid 15 min, never
    stored) is gone, so the answer cannot be delivered — the turn still completes."""

    def __init__(self, message_id: str) -> None:
        self._message_id = message_id

    def begin(self) -> None:
        return None

    def working(self) -> None:
        return None

    async def stop_working(self) -> None:
        return None

    async def partial(self, text: str) -> None:
        return None

    async def final(self, reply: Reply) -> None:
        log.info("reply to replayed interaction %s dropped (token expired)", self._message_id)

    async def finish(self) -> None:
        return None
