"""Multi-worker throughput: `python -m bot` x N in Telegram webhook mode on one PostgreSQL
database, replies per second for 1 and 2 workers (issue 7).

    python bench/workers.py [--updates N] [--users U] [--workers 1,2] [--runs R]
                            [--limiter on,off] [--postgres-url URL] [--json]

The same setup as tests/multiworker: each worker is a real `python -m bot` configured only by
environment variables (offline model, webhook mode, its own port), all on one fresh PostgreSQL
database created for each run and dropped after it; the Bot API emulator runs in this process.
U users send N updates in all; like Telegram, a user's next update goes out once the previous
one got its 200, and a user's consecutive updates go to the workers in turn. Measured: from the
first POST until every update is answered (one sendMessage each, inbox empty): replies/s, and the
median over R runs. Workers start (and the database is migrated) before the clock starts.

Two rows per worker count. `limiter on`: exactly `python -m bot`, whose PTB AIORateLimiter
paces each process's Bot API calls at Telegram's ~30/s (a "typing…" and a sendMessage per reply,
more "typing…" while a reply waits its turn) - note Telegram applies that limit to the whole bot,
not per process. `limiter off`: the same app and adapter (bench/_webhook_worker.py) with that
limiter off, i.e. the bot's own capacity. Also printed: the workers' CPU time per reply (all
workers together), which says what each added core would buy. Mind the machine: on 2 shared
cores the workers, PostgreSQL and this process compete for CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import open_store
from testkit.databases import postgres_database
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.workers import TOKEN, Delivery, Traffic, WorkerPool, run_chat

REPO = Path(__file__).resolve().parent.parent
FIRST_CHAT = 950_001
TIMEOUT = 600.0


def plan(traffic: Traffic, updates: int, users: int, workers: int) -> list[list[Delivery]]:
    chats: list[list[Delivery]] = [[] for _ in range(users)]
    for k in range(updates):
        n, i = k % users, k // users
        user = FIRST_CHAT + n
        text = f"Tell me a joke about topic {i}" if i % 2 else f"Message {i}, how are you?"
        chats[n].append(Delivery(user, traffic.update(user, text), text, (n + i) % workers))
    return chats


LAUNCHER = ("bench/_webhook_worker.py",)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def one_run(
    url: str, workers: int, updates: int, users: int, workdir: Path, limiter: bool
) -> tuple[float, float]:
    """(replies/s, the workers' CPU milliseconds per reply)."""
    command = ("-m", "bot") if limiter else (str(REPO / LAUNCHER[0]),)
    async with TelegramApiEmulator(TOKEN) as tg, await open_store(url) as store:
        traffic = Traffic(tg)
        chats = plan(traffic, updates, users, workers)
        async with WorkerPool(
            tg, url, workdir, count=workers, log_level="WARNING", command=command
        ) as pool:
            cpu_before = sum(w.cpu_seconds() for w in pool.workers)
            own_before = _own_cpu()
            start = time.perf_counter()
            await asyncio.gather(*(run_chat(pool, traffic, chat) for chat in chats))
            deadline = start + TIMEOUT
            while len(tg.sent()) < updates or await store.inbox_pending("telegram"):
                pool.check_alive()
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"not all answered in {TIMEOUT}s\n{pool.tails()}")
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - start
            cpu = sum(w.cpu_seconds() for w in pool.workers) - cpu_before
            own = _own_cpu() - own_before
        typing = len(tg.calls_to("sendChatAction")) / updates
        print(
            f"  this process (users, Bot API emulator): {own / updates * 1000:.1f} ms CPU/reply;"
            f" 'typing…' calls per reply: {typing:.1f}",
            file=sys.stderr,
        )
        if len(tg.sent()) != updates:
            raise RuntimeError(f"{len(tg.sent())} replies for {updates} updates")
        return updates / elapsed, cpu / updates * 1000


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--updates", type=int, default=600, help="updates per run (default 600)")
    ap.add_argument("--users", type=int, default=60, help="users sending them (default 60)")
    ap.add_argument("--workers", default="1,2", help="worker counts to measure (default 1,2)")
    ap.add_argument("--runs", type=int, default=3, help="runs per row (median)")
    ap.add_argument("--limiter", default="on,off", help="rows with PTB's rate limiter on/off")
    ap.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a server where a database may be created (default TEST_POSTGRES_URL)",
    )
    ap.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    args = ap.parse_args()
    os.environ["TEST_POSTGRES_URL"] = args.postgres_url
    counts = [int(c) for c in args.workers.split(",") if c.strip()]
    limiters = [part.strip() == "on" for part in args.limiter.split(",") if part.strip()]
    rows = [(limiter, count) for limiter in limiters for count in counts]
    results: dict[tuple[bool, int], list[float]] = {row: [] for row in rows}
    cpu_ms: dict[tuple[bool, int], list[float]] = {row: [] for row in rows}
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        # Rows take turns within each run, so a burst of load elsewhere on this shared
        # machine hits every row alike.
        for r in range(args.runs):
            for limiter, count in rows:
                workdir = Path(tmp) / f"run{r}-w{count}-{limiter}"
                workdir.mkdir()
                async with postgres_database("bench_workers") as url:
                    rate, cpu = await one_run(
                        url, count, args.updates, args.users, workdir, limiter
                    )
                results[(limiter, count)].append(rate)
                cpu_ms[(limiter, count)].append(cpu)
                name = f"limiter {'on' if limiter else 'off'}, {count} worker(s)"
                print(f"run {r + 1}: {name}: {rate:6.1f} replies/s", file=sys.stderr)
    figures: dict[str, Any] = {"updates": args.updates, "users": args.users, "runs": args.runs}
    print(f"\n{args.updates} updates from {args.users} users, PostgreSQL, median of {args.runs}")
    print("limiter  workers  replies/s  worker CPU ms/reply  (runs)")
    for limiter, count in rows:
        median = statistics.median(results[(limiter, count)])
        cpu = statistics.median(cpu_ms[(limiter, count)])
        runs = ", ".join(f"{r:.1f}" for r in results[(limiter, count)])
        on = "on" if limiter else "off"
        print(f"{on:>7}  {count:7d}  {median:9.1f}  {cpu:19.1f}  ({runs})")
        figures[f"limiter_{on}_workers_{count}"] = {
            "median": round(median, 1),
            "cpu_ms_per_reply": round(cpu, 2),
            "runs": runs,
        }
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
