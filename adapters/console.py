"""The console chat: the same core, agents and database as the platforms, in a terminal.

stdin is read by a daemon thread that hands lines to the event loop: a blocking `readline` in
the loop would freeze every other task, and one in the default executor would keep the process
alive at exit until the user pressed Enter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from adapters.delivery import deliver_turn
from adapters.markdown import plain, read
from bot.messages import ConversationCore, Incoming, Outgoing, Reply, SendResult
from bot.private_files import write_private

log = logging.getLogger(__name__)

PLATFORM = "console"
BOT_PREFIX = "bot> "
PROMPT = "you> "
THINKING = "thinking…"
# Moves back to the line's start and clears it: a terminal rubs the indicator out.
ERASE_LINE = "\r\x1b[K"


class ConsoleAdapter:
    """Implements bot.messages.Adapter for a terminal (or any pair of text streams)."""

    name = PLATFORM
    connected = True  # the terminal is this process's own

    def __init__(
        self,
        core: ConversationCore,
        user: str,
        stdin: TextIO,
        stdout: TextIO,
        *,
        notice: str | None = None,
        export_dir: Path | None = None,
    ) -> None:
        self._core = core
        self._user = user
        self._stdin = stdin
        self._out = stdout
        self._notice = notice
        self._export_dir = export_dir or Path.cwd()
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._interactive = _isatty(stdin)
        self._erasable = _isatty(stdout)
        self._shown = ""  # the streamed text of the current reply already printed
        self._settled = ""  # the Markdown of the whole paragraphs of the preview printed
        self._thinking = False  # the indicator is on screen
        self._at_prompt = False  # "you> " is on screen, waiting for a line
        self._turn_lock = asyncio.Lock()  # a proactive message waits for the turn in flight

    async def start(self) -> None:
        if self._task is not None:
            return
        loop = asyncio.get_running_loop()
        thread = threading.Thread(target=self._read_lines, args=(loop,), daemon=True)
        thread.start()
        if self._notice:  # shown once per run: e.g. "offline model, no network"
            self._write(f"({self._notice})\n")
        self._write(f"Chatting as {self._user}. /help lists the commands; Ctrl-D ends.\n")
        self._task = asyncio.create_task(self._chat(), name="console-chat")

    async def stop(self) -> None:
        """Stop reading; the turn in flight finishes first."""
        self._stopping = True
        self._lines.put_nowait(None)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _read_lines(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            for line in iter(self._stdin.readline, ""):
                loop.call_soon_threadsafe(self._lines.put_nowait, line)
        except (OSError, ValueError):  # stdin closed under us
            pass
        with contextlib.suppress(RuntimeError):  # the loop is already gone
            loop.call_soon_threadsafe(self._lines.put_nowait, None)

    async def _chat(self) -> None:
        await self._replay_pending()
        while not self._stopping:
            if self._interactive:
                self._write(PROMPT)
                self._at_prompt = True
            line = await self._lines.get()
            self._at_prompt = False
            if line is None or self._stopping:
                if self._interactive:
                    self._write("\n")  # the cursor still sits after the prompt (or a ^C)
                break
            text = line.strip()
            if text:
                await self._turn(text)
        self._write("Bye!\n")

    async def _replay_pending(self) -> None:
        """Messages of this user left unanswered by an earlier run that stopped mid-turn."""
        for incoming in await self._core.pending(PLATFORM):
            if incoming.platform_user_id == self._user:
                self._write(f"(answering from last time: {incoming.text})\n")
                await self._send(incoming)

    async def _turn(self, text: str) -> None:
        incoming = Incoming(
            platform=PLATFORM,
            platform_user_id=self._user,
            chat_id=PLATFORM,
            message_id=uuid.uuid4().hex,  # unique across runs: the inbox dedupes on it
            text=text,
            display_name=self._user,
        )
        await self._send(incoming)

    async def _send(self, incoming: Incoming) -> None:
        async with self._turn_lock:
            self._shown = ""
            await deliver_turn(self._core.handle(incoming), self._show)

    async def send_outgoing(self, item: Outgoing) -> SendResult:
        """bot.messages.OutgoingSender: an alert, reminder or digest, printed between prompts
        (never into a reply being streamed). Another console user's waits for their run."""
        if item.platform_user_id != self._user:
            return SendResult.RETRY
        async with self._turn_lock:
            if self._at_prompt:
                self._write(ERASE_LINE if self._erasable else "\n")
            self._write(BOT_PREFIX + _indent(item.reply.text) + "\n")
            if self._at_prompt:
                self._write(PROMPT)
        return SendResult.SENT

    async def _show(self, reply: Reply) -> bool:
        """Print one reply; a terminal takes every one."""
        if reply.typing:  # the core says the answer is taking a while (a slow model)
            self._show_thinking()
            return True
        if reply.partial and reply.markdown:
            if _settled(reply.text) == self._settled:
                return True  # no new whole paragraph (a preview comes per token): read nothing
            self._settled = _settled(reply.text)
        text = _readable(reply)
        if reply.partial and not text:
            return True  # no whole paragraph yet: "thinking…" stays
        self._end_thinking()
        if reply.partial:
            self._stream(text)
        else:
            self._final(self._shown, replace(reply, text=text))
            self._shown, self._settled = "", ""
        return True

    def _show_thinking(self) -> None:
        if not self._thinking and not self._shown:
            self._write(BOT_PREFIX + THINKING)
            self._thinking = True

    def _end_thinking(self) -> None:
        if self._thinking:
            # A pipe or file cannot rub it out: it stays, as a line of its own.
            self._write(ERASE_LINE if self._erasable else "\n")
            self._thinking = False

    def _stream(self, text: str) -> None:
        if not self._shown:
            self._write(BOT_PREFIX)
        if text.startswith(self._shown):
            self._write(_indent(text[len(self._shown) :]))
            self._shown = text
        # else a rewrite, not an extension: wait for the final text

    def _final(self, shown: str, reply: Reply) -> None:
        if shown and reply.text.startswith(shown):
            self._write(_indent(reply.text[len(shown) :]) + "\n")
        else:
            if shown:
                self._write("\n")
            self._write(BOT_PREFIX + _indent(reply.text) + "\n")
        if reply.actions:  # a terminal has no buttons: the commands they run, to type
            self._write(_actions(reply))
        if reply.file is not None:
            self._save(reply)

    def _save(self, reply: Reply) -> None:
        assert reply.file is not None
        path = self._export_dir / Path(reply.file.filename).name
        try:
            write_private(path, reply.file.data)  # personal data: owner only, from the start
        except OSError as exc:
            log.warning("could not save %s: %s", path.name, exc)
            self._write(f"{' ' * len(BOT_PREFIX)}(could not save {path.name}: {exc.strerror})\n")
            return
        self._write(f"     (saved to {path})\n")

    def _write(self, text: str) -> None:
        try:
            self._out.write(text)
            self._out.flush()
        except (OSError, ValueError):  # the terminal went away; nothing useful to do
            pass


def _actions(reply: Reply) -> str:
    pad = " " * len(BOT_PREFIX)
    return "".join(f"{pad}• {a.label}: {a.command}\n" for a in reply.actions)


def _readable(reply: Reply) -> str:
    """The model's Markdown as plain text (bullets, no asterisks); other text as it is. Of a
    preview, only its whole paragraphs: the rest may still change how it reads (an opening
    ** or ``` changes what follows), and a terminal cannot take back what it printed."""
    if not reply.markdown:
        return reply.text
    return plain(read(_settled(reply.text) if reply.partial else reply.text))


def _settled(markdown: str) -> str:
    """Its whole paragraphs: up to the last blank line."""
    return markdown[: max(markdown.rfind("\n\n"), 0)]


def _indent(text: str) -> str:
    # Continuation lines line up under the text after "bot> ".
    return text.replace("\n", "\n" + " " * len(BOT_PREFIX))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
