"""`python -m bot` as a real process for tests and benchmarks: configured only by environment
variables (docs/architecture.md, Configuration), on the offline model (no LLM key), the Telegram
Bot API emulator and a database of its own; it never reaches a network (everything is on
127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from testkit.emulators.telegram_api import TelegramApiEmulator

REPO = Path(__file__).resolve().parents[1]
APP = "crash-tests"
# Shaped like a real token (the log redaction's pattern would catch it) and easy to grep for.
TOKEN = "555000111:AAFAKE-crash-token-RELIABILITY_0123456"
# Nothing listens on port 9: a quote lookup fails fast instead of reaching a network.
NO_NETWORK = "http://127.0.0.1:9"
START_TIMEOUT = 30.0  # a cold start on a loaded 2-core machine; normally ~1.5 s


@dataclass(frozen=True, slots=True)
class Database:
    kind: str  # "sqlite" | "postgres"
    url: str


# -- the bot as a process ----------------------------------------------------------------------
@dataclass
class BotProcess:
    """`python -m bot` runs, each started after the previous one ended; logs in one file."""

    tg: TelegramApiEmulator | None  # None: the platform comes in `extra_env` (Discord)
    db: Database
    workdir: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    start_times: list[float] = field(default_factory=list)  # spawn -> first getUpdates

    @property
    def log(self) -> Path:
        return self.workdir / "bot.log"

    def env(self) -> dict[str, str]:
        telegram = (
            {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE": self.tg.base_url}
            if self.tg is not None
            else {}
        )
        return {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            **telegram,
            "DATABASE_URL": self.db.url,
            "APP_NAME": APP,
            "QUOTES_BASE_URL": NO_NETWORK,
            "LOG_LEVEL": "INFO",
            # Per-user limits off: these runs send each user's messages as fast as the bot
            # answers (the limits are measured on their own: tests/reliability/test_fairness*).
            "USER_RATE_LIMIT": "0",
            "USER_QUEUE_LIMIT": "1000",
            **self.extra_env,
        }

    async def start(self, *, wait_polling: bool = True) -> asyncio.subprocess.Process:
        assert self.proc is None or self.proc.returncode is not None, "the last run is alive"
        tg = self.tg
        polls = len(tg.calls_to("getUpdates")) if tg is not None else 0
        began = time.monotonic()
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                cwd=self.workdir,  # no .env from the checkout: the environment is the whole config
                env=self.env(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        self.starts += 1
        if wait_polling and tg is not None:
            await self.until(lambda: len(tg.calls_to("getUpdates")) > polls, START_TIMEOUT)
            self.start_times.append(time.monotonic() - began)
        return self.proc

    def kill(self) -> None:
        """SIGKILL now (callable from the emulator's request hook, synchronously)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    async def wait(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait(timeout)

    async def until(self, predicate: Callable[[], object], timeout: float) -> None:
        """Wait for `predicate` (sync or async), failing early (with the log's tail) if the
        process died first."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return
            if self.proc is not None and self.proc.returncode is not None:
                raise AssertionError(f"the bot exited ({self.proc.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s:\n{self.tail()}")
            await asyncio.sleep(0.01)

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.kill()
            await self.wait()
