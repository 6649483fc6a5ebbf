"""Flood benchmark: one user sending far faster than the bot answers, and everyone else.

    python bench/flood.py [--flood N] [--big N] [--database-url URL] [--json]

`python -m bot` runs as a process of its own (offline model, PTB polling, its default Bot API
rate limiter), configured only by environment variables, on the project's Bot API emulator in
this process (testkit/emulators). Two rows: the per-user limits on (the defaults: USER_RATE_LIMIT
20/min, USER_QUEUE_LIMIT 5) and off (USER_RATE_LIMIT=0, USER_QUEUE_LIMIT=1000: the bot without
them). Per row, on a fresh database and process:

- B alone: user B's latency (update available -> answer in the chat), median of 5, no flood;
- B in a flood: A's N messages (default 400) are queued, then B's one: B's latency;
- A answered / refused (the bot's "refused" log lines) once the flood settled (and whether A
  was told to slow down), and the Bot API calls made meanwhile (sendMessage, sendChatAction,
  editMessageText);
- RSS: a second process gets 10,000 messages from A; the growth of its peak RSS (VmHWM) over
  its idle RSS, measured once every update was fetched and the bot settled (at most 20 s later).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.conversation import SLOW_DOWN
from testkit.bot_process import TOKEN, BotProcess, Database
from testkit.emulators.telegram_api import TelegramApiEmulator

A, B = 5001, 5002
ROWS = {
    "limits on": {"USER_RATE_LIMIT": "20/min", "USER_QUEUE_LIMIT": "5"},
    "limits off": {"USER_RATE_LIMIT": "0", "USER_QUEUE_LIMIT": "1000"},
}
SETTLE = 300.0  # the longest a row waits for A's flood to be answered or refused
RSS_WAIT = 20.0
API_METHODS = ("sendMessage", "sendChatAction", "editMessageText")


async def until(check: Callable[[], object], timeout: float) -> float:
    """Seconds until `check()` is true (polled every 2 ms); raises after `timeout`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not within {timeout}s")
        await asyncio.sleep(0.002)
    return time.monotonic() - start


async def ask(tg: TelegramApiEmulator, chat: int, text: str, timeout: float = 120.0) -> float:
    before = len(tg.bot_messages(chat))
    tg.private_text(chat, text)
    return await until(lambda: len(tg.bot_messages(chat)) > before, timeout)


def refused(bot: BotProcess) -> int:
    return bot.log.read_text(errors="replace").count(" refused: ")


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


async def started(tg: TelegramApiEmulator, db: Database, tmp: Path, env: dict) -> BotProcess:
    bot = BotProcess(tg, db, tmp, extra_env=env)
    await bot.start()
    await ask(tg, A, "hello")  # both users exist before anything is measured
    return bot


async def latency_row(env: dict[str, str], flood: int, db: Database, tmp: Path) -> dict:
    async with TelegramApiEmulator(TOKEN) as tg:
        bot = await started(tg, db, tmp, env)
        try:
            alone = statistics.median([await ask(tg, B, f"Tell me a joke {i}") for i in range(5)])
            calls = len(tg.calls)
            for i in range(flood):
                tg.private_text(A, f"flood {i}")
            in_flood = await ask(tg, B, "Tell me a joke about owls")

            def answered() -> int:  # A's answers: not "hello"'s, not the slow-down notice
                return sum(SLOW_DOWN not in text for text in tg.shown(A)) - 1

            await until(lambda: answered() + refused(bot) >= flood, SETTLE)
            methods = Counter(c.method for c in tg.calls[calls:] if c.method in API_METHODS)
            return {"b_alone_ms": alone * 1000, "b_in_flood_ms": in_flood * 1000} | {
                "a_answered": answered(),
                "a_refused": refused(bot),
                "a_told": sum(SLOW_DOWN in text for text in tg.shown(A)),
                "api_calls": dict(methods),
            }
        finally:
            await bot.close()


async def rss_row(env: dict[str, str], big: int, db: Database, tmp: Path) -> dict:
    async with TelegramApiEmulator(TOKEN) as tg:
        bot = await started(tg, db, tmp, env)
        try:
            assert bot.proc is not None
            pid, idle = bot.proc.pid, rss_kb(bot.proc.pid, "VmRSS")
            last = 0
            for i in range(big):
                last = tg.private_text(A, f"flood {i}")
            fetched = await until(lambda: tg.confirmed(last), SETTLE)
            done = f"telegram:{last} refused"
            # Limits off: the turns queue up for minutes; the peak so far is the figure.
            with contextlib.suppress(TimeoutError):
                await until(lambda: done in bot.log.read_text(errors="replace"), RSS_WAIT)
            return {"rss_growth_mb": (rss_kb(pid, "VmHWM") - idle) / 1024, "fetch_s": fetched}
        finally:
            await bot.close()


async def bench(flood: int, big: int, database_url: str | None, tmp: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for n, (name, env) in enumerate(ROWS.items()):
        row: dict[str, Any] = {}
        for part, run in ((0, latency_row), (1, rss_row)):
            where = tmp / f"{n}-{part}"
            where.mkdir()
            url = database_url or f"sqlite:///{where / 'bot.db'}"
            db = Database("sqlite" if url.startswith("sqlite:") else "postgres", url)
            row |= await run(env, flood if part == 0 else big, db, where)
        results[name] = row
        show(name, row, flood, big)
    return results


def show(name: str, r: dict[str, Any], flood: int, big: int) -> None:
    calls = ", ".join(f"{m} {r['api_calls'].get(m, 0)}" for m in API_METHODS)
    print(
        f"{name:>10}: B alone {r['b_alone_ms']:.0f} ms, B during A's {flood} messages "
        f"{r['b_in_flood_ms']:.0f} ms; A answered {r['a_answered']}, refused {r['a_refused']} "
        f"(told {r['a_told']}x); "
        f"Bot API calls during the flood: {calls}; RSS +{r['rss_growth_mb']:.1f} MB for "
        f"{big:,} messages from A",
        flush=True,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flood", type=int, default=400, help="A's messages in the latency run")
    ap.add_argument("--big", type=int, default=10_000, help="A's messages in the RSS run")
    ap.add_argument("--database-url", help="the bot's store (default: SQLite in a temp dir)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    args = ap.parse_args()
    if args.database_url and not args.database_url.startswith("sqlite:"):
        print("note: each row reuses the one PostgreSQL database given", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="switchboard-flood-") as name:
        figures = asyncio.run(bench(args.flood, args.big, args.database_url, Path(name)))
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
