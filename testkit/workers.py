"""N `python -m bot` worker processes in Telegram webhook mode on one database, and the traffic
Telegram would send them: shared by tests/multiworker and bench/workers.py.

Every worker is configured only by environment variables (docs/architecture.md,
"Configuration"): the same token, the same public WEBHOOK_URL (as behind one load balancer;
nothing listens there, setWebhook goes to the Bot API emulator), the same DATABASE_URL, and its
own PORT on 127.0.0.1. The caller POSTs each
update straight to a worker's port, with the secret header, the way the balancer would forward
Telegram's request. Telegram sends one chat's updates one at a time, each after the 200 of the
previous; `ChatScript` does the same per user while many users run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until

REPO = Path(__file__).resolve().parents[1]
# Shaped like a real token (the log redaction's pattern would catch it) and easy to grep for.
TOKEN = "424242424:AAFAKE-multiworker-token-SCALING_01234"
SECRET = "multi-worker-webhook-secret_0123"
HOOK_PATH = "/telegram/hook"
PUBLIC_URL = f"https://bot.example.invalid{HOOK_PATH}"  # the one URL Telegram knows
NO_NETWORK = "http://127.0.0.1:9"  # nothing listens: a quote lookup fails fast, offline
START_TIMEOUT = 30.0  # a cold start on a loaded 2-core machine; normally ~2 s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Worker:
    index: int
    port: int
    log: Path
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{HOOK_PATH}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far (Linux /proc; 0.0 where unavailable)."""
        if self.proc is None:
            return 0.0
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no log)"
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return f"--- worker {self.index} ---\n" + "\n".join(text)


@dataclass
class WorkerPool:
    """`async with WorkerPool(tg, url, workdir, count=2) as pool:` starts the workers and
    returns once each listens; leaving stops them with SIGTERM (a clean shutdown)."""

    tg: TelegramApiEmulator
    database_url: str
    workdir: Path
    count: int = 2
    app_name: str = "multiworker-tests"
    log_level: str = "INFO"
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # What each worker runs after the interpreter: `python -m bot` (a bench may use a launcher
    # that builds the same app).
    command: tuple[str, ...] = ("-m", "bot")
    workers: list[Worker] = field(default_factory=list)
    _http: aiohttp.ClientSession | None = None

    def env(self, port: int) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE": self.tg.base_url,
            "TELEGRAM_MODE": "webhook",
            "WEBHOOK_URL": PUBLIC_URL,
            "WEBHOOK_SECRET": SECRET,
            "PORT": str(port),
            "DATABASE_URL": self.database_url,
            "APP_NAME": self.app_name,
            "QUOTES_BASE_URL": NO_NETWORK,
            "LOG_LEVEL": self.log_level,
            # Per-user limits off: these runs send each user's messages as fast as the bot
            # answers (the limits are measured on their own: tests/reliability/test_fairness*).
            "USER_RATE_LIMIT": "0",
            "USER_QUEUE_LIMIT": "1000",
            **self.extra_env,
        }

    async def __aenter__(self) -> WorkerPool:
        # Many short POSTs at once: one connection pool for all of them, no per-host cap.
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        try:
            for index in range(self.count):
                self.workers.append(await self._spawn(index))
            for worker in self.workers:
                await self._until_listening(worker)
        except BaseException:
            await self.close(kill=True)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close(kill=exc[0] is not None)

    async def _spawn(self, index: int, port: int | None = None) -> Worker:
        port = port or free_port()
        worker = Worker(index, port, self.workdir / f"worker{index}.log")
        with worker.log.open("ab") as out:
            worker.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.command,
                cwd=self.workdir,  # no .env from the checkout: the environment is the config
                env=self.env(port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        return worker

    async def _until_listening(self, worker: Worker) -> None:
        """PTB calls setWebhook, then serves: a GET answered (405, POST only) means ready."""
        http = self._http
        assert http is not None

        async def listening() -> bool:
            if not worker.alive():
                raise AssertionError(f"worker {worker.index} exited before listening")
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with http.get(worker.url) as response:
                    return response.status == 405
            return False

        try:
            await wait_until(listening, timeout=START_TIMEOUT, interval=0.05)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{worker.tail()}") from None

    async def kill(self, index: int) -> None:
        """SIGKILL one worker (a crash: nothing finishes) and wait for it to be gone."""
        worker = self.workers[index]
        assert worker.proc is not None
        with contextlib.suppress(ProcessLookupError):
            worker.proc.kill()
        await asyncio.wait_for(worker.proc.wait(), 20.0)

    async def restart(self, index: int) -> None:
        """Start a dead worker again on its port (its log continues); returns once listening."""
        old = self.workers[index]
        assert not old.alive(), "the worker is still running"
        self.workers[index] = await self._spawn(index, old.port)
        await self._until_listening(self.workers[index])

    async def post(self, worker: int, update: Mapping[str, Any]) -> int:
        """Forward an update to one worker as the balancer would; returns the HTTP status."""
        assert self._http is not None
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": SECRET,
        }
        target = self.workers[worker]
        async with self._http.post(target.url, data=json.dumps(update), headers=headers) as r:
            return r.status

    def check_alive(self) -> None:
        for worker in self.workers:
            if not worker.alive():
                raise AssertionError(f"worker {worker.index} died:\n{worker.tail()}")

    def tails(self) -> str:
        return "\n".join(worker.tail() for worker in self.workers)

    async def close(self, *, kill: bool = False) -> list[int | None]:
        """SIGTERM every worker (SIGKILL when `kill`) and wait; their exit codes."""
        for worker in self.workers:
            if worker.alive():
                assert worker.proc is not None
                worker.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        codes: list[int | None] = []
        for worker in self.workers:
            if worker.proc is not None:
                try:
                    codes.append(await asyncio.wait_for(worker.proc.wait(), 20.0))
                except TimeoutError:
                    worker.proc.kill()
                    codes.append(await worker.proc.wait())
        if self._http is not None:
            await self._http.close()
            self._http = None
        return codes


# -- traffic ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST: an update to a worker; `duplicate` re-sends an update id already sent."""

    user: int
    update_id: int
    text: str
    worker: int
    duplicate: bool = False


class Traffic:
    """Updates of private chats built with the emulator (so its chats know the messages)."""

    def __init__(self, tg: TelegramApiEmulator, first_update_id: int = 900_001) -> None:
        self.tg = tg
        self._ids = itertools.count(first_update_id)
        self.updates: dict[int, dict[str, Any]] = {}

    def update(self, user: int, text: str) -> int:
        update = self.tg.message_update(user, user, text)
        update["update_id"] = next(self._ids)
        self.updates[update["update_id"]] = update
        return int(update["update_id"])


async def run_chat(
    pool: WorkerPool,
    traffic: Traffic,
    deliveries: list[Delivery],
    on_status: Callable[[Delivery, int], None] | None = None,
) -> None:
    """One user's deliveries as Telegram makes them: each after the previous one got its 200.
    A duplicate goes out at the same moment as its original (two workers race on one update)."""
    pending = list(deliveries)
    while pending:
        batch = [pending.pop(0)]
        while pending and pending[0].duplicate and pending[0].update_id == batch[0].update_id:
            batch.append(pending.pop(0))
        statuses = await asyncio.gather(
            *(pool.post(d.worker, traffic.updates[d.update_id]) for d in batch)
        )
        for delivery, status in zip(batch, statuses, strict=True):
            if on_status is not None:
                on_status(delivery, status)
