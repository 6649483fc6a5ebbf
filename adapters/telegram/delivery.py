"""One turn's replies into a Telegram chat: "typing…", streaming edits, split messages, files,
private answers to group messages, and what went out when a turn is tried again.

"typing…" is shown only when the core says the answer is taking a while (`Reply.typing`), never
for a message still waiting its turn, so a quick answer costs one sendMessage. The calls
themselves, with their retries, are `adapters/telegram/sender.py`'s: when one raises
`DeliveryFailed`, the turn stops *before* the core marks the message answered, so it is tried
again instead of being lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial

from telegram import InlineKeyboardMarkup, Message
from telegram.error import BadRequest, Forbidden

from adapters.buttons import ButtonKey
from adapters.telegram import entities
from adapters.telegram.buttons import keyboard
from adapters.telegram.entities import Chunk
from adapters.telegram.sender import Sender, Target
from bot.messages import Reply

log = logging.getLogger(__name__)

# A streamed answer is shown only once it has been coming for this long: a quick answer goes
# out as one message (no edits to spend the rate limit on, no half-message left behind if the
# process dies before the final edit: the replayed reply would be a second message).
STREAM_AFTER = 1.0
CAPTION_LIMIT = 1024


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

    def __init__(
        self,
        sender: Sender,
        target: Target,
        progress: Progress | None = None,
        *,
        buttons: ButtonKey | None = None,
    ) -> None:
        """`buttons` signs a reply's actions for the user it answers (none: no buttons)."""
        self._sender = sender
        self._buttons = buttons
        self._target = target
        self._progress = Progress() if progress is None else progress
        self._sent = self._progress.parts
        self._stream: Message | None = None
        self._shown: Chunk | None = None
        # A retried turn whose reply partly went out shows no new stream: it would repeat part 1.
        self._streaming = not self._sent and self._progress.stream is None
        self._first_partial: float | None = None
        self._reply = 0  # the number of the current final reply
        self._part = 0  # the next message's number within it

    async def write(self, reply: Reply) -> None:
        if reply.partial:
            if not (reply.private and self._target.group):  # private text never streams there
                await self._partial(reply)
            return
        # The buttons are bound to the user answered: in a shared chat only they may press.
        markup = self._keyboard(reply)
        if reply.private and self._target.group:
            await self._private(reply, markup)
        elif reply.file is not None:
            await self._file(self._target, reply, strict=False, markup=markup)
        else:
            await self._final(reply, markup)
        self._stream, self._shown, self._first_partial = None, None, None
        self._progress.stream = None
        self._reply, self._part = self._reply + 1, 0

    async def _partial(self, reply: Reply) -> None:
        now = self._sender.clock()
        if self._first_partial is None:
            self._first_partial = now
        if self._stream is None and now - self._first_partial < STREAM_AFTER:
            return  # typing… still shows; the final reply or a later partial shows the text
        chat = self._target.chat_id
        if not self._streaming or not reply.text.strip():
            return
        if self._stream is not None and not self._sender.may_edit(chat):
            return  # too soon: a later partial or the final reply shows this text
        # Read only when it may be shown (a preview comes per token). Half-written Markdown
        # reads as text (an unclosed ** stays): every preview is valid.
        preview = entities.chunks(reply.text, markdown=reply.markdown)[0]
        if preview == self._shown:
            return
        if self._stream is None:
            self._stream = await self._sender.send_text(self._target, preview)
            self._sender.started_edit(chat)
            self._streaming = self._stream is not None
            if self._stream is not None:
                self._progress.stream = (self._reply, self._stream)
        else:
            self._streaming = await self._sender.edit_text(self._stream, preview)
        self._shown = preview

    def _keyboard(self, reply: Reply) -> InlineKeyboardMarkup | None:
        if self._buttons is None or not reply.actions:
            return None
        return keyboard(self._buttons, reply.actions, self._target.user_id)

    async def _final(self, reply: Reply, markup: InlineKeyboardMarkup | None = None) -> None:
        chunks = entities.chunks(reply.text, markdown=reply.markdown)
        target = self._target
        stream = self._stream or self._earlier_stream()
        if stream is not None:
            first = chunks[0]
            # The buttons go under the last part: the streamed message when it is the only one.
            buttons = markup if len(chunks) == 1 else None
            unchanged = first == self._shown and buttons is None
            if unchanged or await self._sender.edit_text(stream, first, buttons):
                self._done_part(first.text)
                chunks, target = chunks[1:], replace(target, reply_to=None)
        await self._texts(target, chunks, markup=markup)

    def _earlier_stream(self) -> Message | None:
        """The message an earlier attempt's stream of this reply left in the chat."""
        earlier = self._progress.stream
        return earlier[1] if earlier is not None and earlier[0] == self._reply else None

    async def _texts(
        self,
        target: Target,
        chunks: list[Chunk],
        *,
        strict: bool = False,
        markup: InlineKeyboardMarkup | None = None,
    ) -> None:
        """Send each chunk not already sent; only the first one quotes the user's message,
        only the last one carries the buttons."""
        for n, chunk in enumerate(chunks):
            to = target if n == 0 else replace(target, reply_to=None)
            buttons = markup if n == len(chunks) - 1 else None
            send = partial(self._sender.send_text, to, chunk, strict=strict, markup=buttons)
            await self._once(chunk.text, send)

    async def _file(
        self,
        target: Target,
        reply: Reply,
        *,
        strict: bool,
        markup: InlineKeyboardMarkup | None = None,
    ) -> None:
        assert reply.file is not None
        file, text = reply.file, reply.text
        captions = entities.chunks(text, markdown=reply.markdown, limit=CAPTION_LIMIT)
        caption = captions[0] if text and len(captions) == 1 else None
        under_file = markup if not text or caption is not None else None
        await self._once(
            f"file:{file.filename}:{len(file.data)}",
            lambda: self._sender.send_file(target, file, caption, strict=strict, markup=under_file),
        )
        if text and caption is None:
            chunks = entities.chunks(text, markdown=reply.markdown)
            await self._texts(replace(target, reply_to=None), chunks, strict=strict, markup=markup)

    async def _once(self, what: str, send: Callable[[], Awaitable[object]]) -> None:
        """Send the next part of this reply unless an earlier attempt already sent it."""
        if self._sent.get((self._reply, self._part)) != what:
            await send()
        self._done_part(what)

    def _done_part(self, what: str) -> None:
        self._sent[(self._reply, self._part)] = what
        self._part += 1

    async def _private(self, reply: Reply, markup: InlineKeyboardMarkup | None) -> None:
        """Answer in the user's private chat and say so in the group (the note has no
        buttons: they belong to the private answer)."""
        dm = Target(chat_id=self._target.user_id, user_id=self._target.user_id, group=False)
        try:
            if reply.file is not None:
                await self._file(dm, reply, strict=True, markup=markup)
            else:
                chunks = entities.chunks(reply.text, markdown=reply.markdown)
                await self._texts(dm, chunks, strict=True, markup=markup)
            note = "I sent you the answer in a private chat."
        except (Forbidden, BadRequest) as exc:  # the user never started a chat with the bot
            log.info("telegram private reply refused (%s); asking the user to start a chat", exc)
            note = (
                f"I can only answer that privately: open a chat with me "
                f"(https://t.me/{self._sender.bot_username}), press Start and ask again."
            )
        await self._texts(self._target, [Chunk(note)])
