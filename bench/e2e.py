"""End-to-end benchmark: the whole bot through the real python-telegram-bot, replies per second.

    python bench/e2e.py [--quick] [--runs N] [--long] [--database-url URL] [--json]

The bot runs in this process exactly as `python -m bot` composes it (bot.app.open_app + the
TelegramAdapter: PTB polling, inbox, core, runner, agents, SQLite store in a temp directory).
Everything it talks to runs in a second process (bench/_load_server.py): the project's Bot API,
OpenAI-compatible and quotes emulators, and N closed-loop users (each sends a private message,
waits for the complete answer, sends the next). Latency is measured there, from the update being
available to getUpdates until the answer's final text arrived. Printed per row (median of
--runs runs, after one warm-up message per user): replies/s, p50/p99 latency, the bot process's
CPU per reply and RSS.

Rows: the offline model at 1, 100 and 1,000 users; the OpenAI-compatible emulator answering
after a fixed 200 ms at 1, 100 and 1,000 users; both with PTB's overall rate limit off (the bot's
own capacity). Last, 50 users under the adapter's default limit (Telegram's ~30 Bot API calls/s,
shared by typing, send and edit). `--long`: 50,000 messages from 1,000 users (offline), RSS after
every 5,000.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.telegram.adapter import TelegramAdapter
from bot.app import open_app
from bot.logging_setup import setup_logging
from bot.settings import Settings

TOKEN = "123456789:AAbench-e2e-token-not-a-real-one_0123"
LLM_TEXT = "Here is a short answer from the emulated model, streamed to you in small pieces."
SERVER = Path(__file__).resolve().parent / "_load_server.py"


@dataclass(frozen=True)
class Row:
    name: str
    model: str  # "offline" | "llm"
    users: int
    per_user: int  # messages per user in one measured run
    think: float = 0.0  # mean pause after an answer before the next message (0: at once)
    limited: bool = False  # the adapter's default PTB rate limit (else off)
    max_runs: int = 99  # the 1,000-user rows are long: fewer runs keep the default under 5 min


# Rows of one model run against one bot and database, in this order: the users of a row are
# warmed up (first message: user and session rows) once, before their first measured row.
FULL = (
    Row("offline", "offline", 1, 100),
    Row("offline", "offline", 100, 8),
    Row("offline, think 2s", "offline", 100, 3, think=2.0),
    Row("offline", "offline", 1000, 1, max_runs=2),
    Row("llm 200ms", "llm", 1, 8),
    Row("llm 200ms", "llm", 100, 4),
    Row("llm 200ms, think 2s", "llm", 100, 3, think=2.0),
    Row("llm 200ms", "llm", 1000, 1, max_runs=2),
    Row("offline, TG limit", "offline", 30, 2, limited=True),
)
QUICK = (
    Row("offline", "offline", 1, 50),
    Row("offline", "offline", 100, 5),
    Row("llm 200ms, think 2s", "llm", 100, 2, think=2.0),
)


class FarSide:
    """The emulator process: start it, ask it to run users, read its figures."""

    def __init__(self, proc: asyncio.subprocess.Process, urls: dict[str, str]) -> None:
        self.proc, self.urls = proc, urls
        self._offset = 0

    @classmethod
    @asynccontextmanager
    async def start(cls) -> AsyncIterator[FarSide]:
        pipe = asyncio.subprocess.PIPE
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(SERVER), TOKEN, stdin=pipe, stdout=pipe
        )
        try:
            far = cls(proc, json.loads(await cls._line(proc)))
            yield far
            await far._send({"op": "quit"})
            await asyncio.wait_for(proc.wait(), 10)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    @staticmethod
    async def _line(proc: asyncio.subprocess.Process) -> bytes:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process ended; see its error above")
        return line

    async def _send(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()

    async def run(
        self, users: int, per_user: int, base: int, final_text: str | None, think: float = 0.0
    ) -> dict:
        await self._send(
            {
                "op": "run",
                "users": users,
                "per_user": per_user,
                "base": base,
                "think": think,
                "offset": self._offset,  # varies the message mix between runs
                "final_text": final_text,
                "llm_delay": 0.2,
            }
        )
        self._offset += per_user
        return json.loads(await self._line(self.proc))


def bot_settings(far: FarSide, model: str, database_url: str) -> Settings:
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": far.urls["telegram"],
        "DATABASE_URL": database_url,
        "QUOTES_BASE_URL": far.urls["quotes"],
        "APP_NAME": f"bench-e2e-{time.time_ns()}",
        "LOG_LEVEL": "INFO",
        # Per-user limits off: each simulated user sends as fast as the bot answers
        # (bench/flood.py measures the limits).
        "USER_RATE_LIMIT": "0",
        "USER_QUEUE_LIMIT": "1000",
    }
    if model == "llm":
        env |= {"OPENAI_API_KEY": "sk-bench-not-a-key", "LLM_BASE_URL": far.urls["llm"]}
        env["MEMORY_EXTRACTION"] = "tools"  # turns only: an extraction call would double them
    return Settings.from_env(env, dotenv_path=None)


@asynccontextmanager
async def running_bot(settings: Settings, limited: bool) -> AsyncIterator[None]:
    async with open_app(settings) as app:
        adapter = (
            TelegramAdapter(settings, app.core)
            if limited
            else TelegramAdapter(settings, app.core, overall_max_rate=0)
        )
        await adapter.start()
        try:
            yield
        finally:
            await adapter.stop()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(far: FarSide, row: Row, base: int, runs: int, warm: int) -> dict[str, Any]:
    """`warm`: how many of the row's users (chat ids from `base`) have already talked."""
    final = LLM_TEXT if row.model == "llm" else None
    lost = 0
    if row.users > warm:  # first contact creates user and session rows: not steady state
        lost += (await far.run(row.users - warm, 1, base + warm, final))["lost"]
    results, cpu = [], 0.0
    for _ in range(min(runs, row.max_runs)):
        cpu0 = cpu_s()
        results.append(await far.run(row.users, row.per_user, base, final, row.think))
        cpu += cpu_s() - cpu0
    replies = sum(r["replies"] for r in results)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in results)

    return {
        "row": row.name,
        "think_s": row.think,
        "users": row.users,
        "replies_per_s": med("replies_per_s"),
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "max_ms": max(r["max_ms"] for r in results),
        "bot_cpu_ms_per_reply": cpu / replies * 1e3 if replies else 0.0,
        "rss_mb": rss_mb(),
        "lost": lost + sum(r["lost"] for r in results),
        "streamed": sum(r["streamed"] for r in results),
        "replies": replies,
    }


HEADER = (
    f"{'row':<18} {'users':>5} {'replies/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
    f"{'CPU ms/reply':>13} {'RSS MB':>7}"
)


def show(r: dict[str, Any]) -> None:
    flags = []
    if r["lost"]:
        flags.append(f"{r['lost']} LOST")
    if r["streamed"]:
        flags.append(f"{r['streamed']} edits after the first part")
    print(
        f"{r['row']:<18} {r['users']:>5} {r['replies_per_s']:>10.0f} {r['p50_ms']:>8.1f} "
        f"{r['p99_ms']:>8.1f} {r['bot_cpu_ms_per_reply']:>13.2f} {r['rss_mb']:>7.1f}"
        + (f"  ({', '.join(flags)})" if flags else ""),
        flush=True,
    )


async def bench(rows: tuple[Row, ...], runs: int, tmp: Path, db_url: str | None) -> list[dict]:
    figures: list[dict] = []
    print(HEADER, flush=True)
    async with FarSide.start() as far:
        for i, group in enumerate(_groups(rows)):
            base, warm = 1_000_000 * (i + 1), 0
            first = group[0]
            url = db_url or f"sqlite:///{tmp / f'bot{i}.db'}"
            async with running_bot(bot_settings(far, first.model, url), first.limited):
                for row in group:
                    figures.append(await measure(far, row, base, runs, warm))
                    warm = max(warm, row.users)
                    show(figures[-1])
    return figures


def _groups(rows: tuple[Row, ...]) -> list[list[Row]]:
    """Consecutive rows with the same model and limit share one bot (and its users)."""
    groups: list[list[Row]] = []
    for row in rows:
        if groups and (groups[-1][0].model, groups[-1][0].limited) == (row.model, row.limited):
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


async def long_run(tmp: Path, db_url: str | None, users: int, total: int) -> list[float]:
    """`total` messages from `users` users (offline model); RSS after every tenth."""
    chunk = max(1, total // 10 // users)
    samples: list[float] = []
    async with FarSide.start() as far:
        url = db_url or f"sqlite:///{tmp / 'long.db'}"
        async with running_bot(bot_settings(far, "offline", url), limited=False):
            await far.run(users, 1, 5_000_000, None)
            print(f"after warm-up ({users} users): RSS {rss_mb():.1f} MB", flush=True)
            done = 0
            for _ in range(10):
                r = await far.run(users, chunk, 5_000_000, None)
                done += r["replies"]
                samples.append(rss_mb())
                print(
                    f"{done:>7,} messages: RSS {samples[-1]:6.1f} MB, {r['replies_per_s']:.0f}/s, "
                    f"p99 {r['p99_ms']:.1f} ms" + (f", {r['lost']} LOST" if r["lost"] else ""),
                    flush=True,
                )
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run of a few rows")
    ap.add_argument("--runs", type=int, default=3, help="measured runs per row (median)")
    ap.add_argument("--long", action="store_true", help="50,000 messages, RSS along the way")
    ap.add_argument("--long-messages", type=int, default=50_000)
    ap.add_argument("--only", help="rows whose 'name:users' contains this (e.g. offline:100)")
    ap.add_argument("--database-url", help="the bot's store (default: SQLite in a temp dir)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="switchboard-e2e-") as name:
        tmp = Path(name)
        # The bot logs as in production (INFO, tokens redacted), to a file: not the terminal.
        with open(tmp / "bot.log", "w") as log_file:
            setup_logging("INFO", (TOKEN,), stream=log_file)
            logging.getLogger("bench").info("e2e benchmark starting")
            start = time.monotonic()
            if args.long:
                samples = long_run(tmp, args.database_url, 1000, args.long_messages)
                figures: Any = asyncio.run(samples)
                half = len(figures) // 2 - 1
                print(
                    f"RSS after the first tenth {figures[0]:.1f} MB, at half-time "
                    f"{figures[half]:.1f} MB, at the end {figures[-1]:.1f} MB "
                    f"(second half: {(figures[-1] / figures[half] - 1) * 100:+.1f}%)"
                )
            else:
                rows: tuple[Row, ...] = QUICK if args.quick else FULL
                if args.only:
                    rows = tuple(r for r in rows if args.only in f"{r.name}:{r.users}")
                figures = asyncio.run(bench(rows, args.runs, tmp, args.database_url))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"peak RSS of the bot process: {peak:.1f} MB; {time.monotonic() - start:.0f} s")
        lines = (tmp / "bot.log").read_text().splitlines()
        problems = [
            line
            for line in lines
            if (" WARNING " in line or " ERROR " in line) and "offline model" not in line
        ]
        if problems:
            print(f"{len(problems)} warning/error line(s) in the bot's log, e.g.:")
            for line in problems[:5]:
                print("  " + line[:200])
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
