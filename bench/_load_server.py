"""The far side of bench/e2e.py, in its own process: Telegram, the LLM, quotes, and the users.

Runs the project's emulators (testkit/emulators: Bot API, OpenAI-compatible, Yahoo quotes) on
127.0.0.1 and a closed-loop load driver: N users, each sending a private message, waiting until
the bot's answer is complete in its chat, then sending the next. Latency is measured here, from
the moment an update becomes available to getUpdates until the reply's final text arrives (a
sendMessage, or the editMessageText that completes a streamed answer).

Usage: `python bench/_load_server.py TOKEN`, then JSON lines: it prints {"telegram", "llm",
"quotes"} (base URLs) once it listens; then reads {"op": "run", "users", "per_user", "base",
"offset", "think", "final_text", "llm_delay"} and answers each with the run's figures, until
{"op": "quit"} or end of input. Separate from the bot's process so that the two
event loops do not share one core's time (as Telegram's servers do not share the bot's).
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web

from testkit.emulators.llm import LLMEmulator, Say
from testkit.emulators.quotes import QuotesEmulator
from testkit.emulators.telegram_api import TelegramApiEmulator, UploadedFile

TURN_TIMEOUT = 30.0  # a reply not complete after this long counts as lost
# What the users say (offline model): small talk, jokes, facts, memory, quotes, watchlist.
TEXTS = (
    "hi there!",
    "tell me a joke about python",
    "my name is Ada",
    "what's AAPL at?",
    "tell me a nerdy fact",
    "add TSLA to my watchlist",
    "how are you today?",
    "another one",
    "what's on my watchlist?",
    "tell me a joke about databases",
)


@dataclass
class _Waiter:
    """One user's message waiting for its answer."""

    done: asyncio.Future[float]  # resolves to the time the answer was complete


class BenchTelegram(TelegramApiEmulator):
    """The Bot API emulator with memory bounded over long runs, reporting each bot text."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.calls = deque(maxlen=1_000)  # type: ignore[assignment]
        self.on_text: Callable[[int, str, str], None] = lambda chat, how, text: None
        self._keys: dict[int, list[int]] = defaultdict(list)

    def forget_chat(self, chat_id: int) -> None:
        """Drop a finished turn's messages (nothing edits them any more)."""
        for message_id in self._keys.pop(chat_id, ()):
            self._messages.pop((chat_id, message_id), None)
        if len(self._delivered) > 10_000:  # only needed by deliver_again, unused here
            self._delivered.clear()

    def _message(self, chat: dict[str, Any], user: dict[str, Any], **content: Any) -> dict:
        message = super()._message(chat, user, **content)
        self._keys[int(chat["id"])].append(message["message_id"])
        return message

    def _m_sendMessage(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict:
        message = super()._m_sendMessage(params, files)
        self.on_text(int(params["chat_id"]), "send", message["text"])
        return message

    def _m_editMessageText(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict:
        message = super()._m_editMessageText(params, files)
        self.on_text(int(params["chat_id"]), "edit", message["text"])
        return message


class SlowLLM(LLMEmulator):
    """Answers every request with one fixed text after `delay` seconds, keeping no records."""

    def __init__(self) -> None:
        super().__init__()
        self.delay = 0.2
        self.answer = Say(text="")

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.delay)
        self.script(self.answer)
        try:
            return await super()._completions(request)
        finally:
            self.requests.clear()


@dataclass
class Driver:
    """Closed-loop users. With `final_text` known (the LLM emulator's answer) a turn is complete
    when a bot message in the chat shows exactly that text. Otherwise (the offline model) it is
    complete at the first sendMessage or edit: a quick answer goes out as one message; an answer
    streamed as a preview plus edits would complete at its first part, so edits arriving after a
    turn completed are counted (`streamed`) to show when that happened."""

    tg: BenchTelegram
    final_text: str | None = None
    waiting: dict[int, _Waiter] = field(default_factory=dict)
    streamed: int = 0

    def __post_init__(self) -> None:
        self.tg.on_text = self._seen

    def _seen(self, chat_id: int, how: str, text: str) -> None:
        waiter = self.waiting.get(chat_id)
        if waiter is None or waiter.done.done():
            if how == "edit" and self.final_text is None:
                self.streamed += 1
            return
        if self.final_text is None or text == self.final_text:
            waiter.done.set_result(time.monotonic())

    async def _user(
        self, chat_id: int, first: int, count: int, think: float, latencies: list[float]
    ) -> int:
        lost = 0
        loop = asyncio.get_running_loop()
        # Seeded per user and message: the same pauses in every run.
        rng = random.Random(chat_id * 1_000_003 + first)
        if think:  # users start at random moments, not all in the same millisecond
            await asyncio.sleep(rng.uniform(0, think))
        for i in range(first, first + count):
            waiter = _Waiter(loop.create_future())
            self.waiting[chat_id] = waiter
            start = time.monotonic()
            self.tg.private_text(chat_id, TEXTS[i % len(TEXTS)], first_name=f"User{chat_id}")
            try:
                latencies.append(await asyncio.wait_for(waiter.done, TURN_TIMEOUT) - start)
            except TimeoutError:
                lost += 1
            finally:
                del self.waiting[chat_id]
                self.tg.forget_chat(chat_id)
            if think and i < first + count - 1:  # a person reads the answer, then types
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
        return lost

    async def run(
        self, users: int, per_user: int, base: int, offset: int, think: float = 0.0
    ) -> dict[str, Any]:
        """`users` each send `per_user` messages, pausing `think` seconds on average after
        each answer (0: the next message at once, which measures capacity)."""
        latencies: list[float] = []
        self.streamed = 0
        cpu0 = _cpu()
        start = time.monotonic()
        lost = await asyncio.gather(
            *(self._user(base + u, offset + u, per_user, think, latencies) for u in range(users))
        )
        seconds = time.monotonic() - start
        latencies.sort()
        return {
            "users": users,
            "replies": len(latencies),
            "lost": sum(lost),
            "streamed": self.streamed,
            "seconds": seconds,
            "replies_per_s": len(latencies) / seconds if seconds else 0.0,
            "p50_ms": _pct(latencies, 0.50) * 1e3,
            "p99_ms": _pct(latencies, 0.99) * 1e3,
            "max_ms": (latencies[-1] if latencies else 0.0) * 1e3,
            "driver_cpu_s": _cpu() - cpu0,
        }


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _lines() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main() -> None:
    async with BenchTelegram(sys.argv[1]) as tg, SlowLLM() as llm, QuotesEmulator() as quotes:
        _say({"telegram": tg.base_url, "llm": llm.base_url, "quotes": quotes.base_url})
        driver = Driver(tg)
        reader = await _lines()
        while line := await reader.readline():
            cmd = json.loads(line)
            if cmd["op"] == "quit":
                break
            driver.final_text = cmd.get("final_text")
            llm.answer = Say(text=cmd.get("final_text") or "")
            llm.delay = float(cmd.get("llm_delay", 0.2))
            figures = await driver.run(
                cmd["users"], cmd["per_user"], cmd["base"], cmd["offset"], cmd.get("think", 0.0)
            )
            _say(figures)


if __name__ == "__main__":
    asyncio.run(main())
