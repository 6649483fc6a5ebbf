"""Price alerts at scale: 100,000 alerts of 20,000 users on 5,000 distinct tickers.

Prints, per poll: quote requests (one per distinct ticker), the quoting time, and the evaluation
time (reading the alerts, evaluating each against its fresh quote, claiming what fired with its
outbox row); then the scheduler's cost per tick when idle (nothing due, no poll due: the due-job
and outbox lookups). Quotes come from the quotes emulator over HTTP (testkit), so the requests
are real ones, counted by the emulator. The store is the real one (SQLite by default, or
`--database postgresql://...`); alerts are set through `append_event` with schedule_changes,
as the commands set them.

    ./scripts/bench.sh alerts [--users 20000] [--alerts-per-user 5] [--tickers 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from agents.quotes import QuoteProvider
from bot.messages import Outgoing, SendResult
from bot.scheduler import PollReport, Scheduler
from storage import Event, EventActions, Store, open_store
from storage.types import Job, ScheduleChange
from testkit.emulators.quotes import Listing, QuotesEmulator

APP = "bench"
CHUNK = 250  # users set up concurrently (the SQLite writer commits them in groups)


class NullSender:
    """Takes every message (the bench measures the scheduler, not a platform)."""

    name = "telegram"

    def __init__(self) -> None:
        self.sent = 0

    async def send_outgoing(self, item: Outgoing) -> SendResult:
        self.sent += 1
        return SendResult.SENT


def tickers(count: int) -> list[str]:
    return [f"TK{n:05d}" for n in range(count)]


def alert(rng: random.Random, user: int, n: int, symbol: str, price: float) -> Job:
    op = rng.choice(("above", "below", "move"))
    value = {"above": price * 1.05, "below": price * 0.95, "move": 5.0}[op]
    return Job(
        id=f"u{user}a{n}",
        kind="alert",
        platform="telegram",
        chat_id=None,
        platform_user_id=str(user),
        created_at=time.time(),
        symbol=symbol,
        op=op,
        value=round(value, 2),
    )


async def set_up_user(store: Store, user: int, jobs: list[Job]) -> None:
    session = await store.create_session(APP, f"user{user}", f"telegram:{user}")
    changes = tuple(ScheduleChange("add", job) for job in jobs)
    actions = EventActions(schedule_changes=changes)
    event = Event(author="system", content={"text": "alerts"}, actions=actions)
    await store.append_event(session, event)


async def fill(store: Store, args: argparse.Namespace, prices: dict[str, float]) -> float:
    rng = random.Random(7)
    symbols = list(prices)
    started = time.perf_counter()
    for first in range(0, args.users, CHUNK):
        batch = []
        for user in range(first, min(first + CHUNK, args.users)):
            first_pick = user * args.alerts_per_user
            picks = [symbols[(first_pick + n) % len(symbols)] for n in range(args.alerts_per_user)]
            jobs = [alert(rng, user, n, s, prices[s]) for n, s in enumerate(picks)]
            batch.append(set_up_user(store, user, jobs))
        await asyncio.gather(*batch)
    return time.perf_counter() - started


def move_market(
    market: QuotesEmulator, rng: random.Random, base: dict[str, float], drift: float
) -> None:
    for symbol, price in base.items():
        change = rng.uniform(-drift, drift)
        market.set_price(symbol, round(price * (1 + change / 100), 2), change)


def show(n: int, report: PollReport, requests: int) -> None:
    print(
        f"poll {n}: {requests} quote requests for {report.symbols} distinct tickers;"
        f" quoting {report.fetch_seconds:.2f}s; evaluating {report.alerts} alerts"
        f" {report.evaluate_seconds:.2f}s ({report.fired} fired)"
    )


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(11)
    base = {s: round(rng.uniform(10, 500), 2) for s in tickers(args.tickers)}
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'alerts.db'}"
        prices = {s: Listing(p, p) for s, p in base.items()}
        async with QuotesEmulator(prices) as market, await open_store(url) as store:
            took = await fill(store, args, base)
            total = args.users * args.alerts_per_user
            backend = url.split(":")[0]
            print(f"set {total} alerts of {args.users} users on {args.tickers} tickers", end="")
            print(f" in {took:.1f}s ({backend})")
            await measure(store, market, rng, base, args)


async def measure(
    store: Store,
    market: QuotesEmulator,
    rng: random.Random,
    base: dict[str, float],
    args: argparse.Namespace,
) -> None:
    clock_now = [time.time()]
    sender = NullSender()
    async with QuoteProvider(market.base_url, timeout=30) as quotes:
        sched = Scheduler(
            store, APP, quotes, [sender], poll_seconds=60, clock=lambda: clock_now[0], jitter=0
        )
        for n in range(1, args.polls + 1):
            clock_now[0] += 60
            move_market(market, rng, base, drift=6.0)
            market.requests.clear()
            report = await sched.poll_alerts(clock_now[0])
            show(n, report, len(market.requests))
        started = time.perf_counter()
        await drain(store, sched, clock_now[0])
        took = time.perf_counter() - started
        print(f"sent {sender.sent} alert messages in {took:.1f}s (outbox lease + mark each)")
        await idle(store, sched, clock_now)


async def drain(store: Store, sched: Scheduler, now: float) -> None:
    """Send everything in the outbox (a lease and a delete per message)."""
    while await store.pending_outbox(APP, now + 1e6, 1):
        await sched.flush(now + 1e6)


async def idle(store: Store, sched: Scheduler, clock_now: list[float]) -> None:
    """Ticks with nothing due and no poll due: what the scheduler costs between polls."""
    clock_now[0] += 60
    await sched.tick()  # takes the poll turn (claim_poll) and polls: the next is 60 s away
    await drain(store, sched, clock_now[0])  # what that poll fired
    requests = sched.quote_requests
    walls, cpu0 = [], time.process_time()
    for _ in range(50):  # a minute's ticks minus the one that polls
        clock_now[0] += 1
        started = time.perf_counter()
        await sched.tick()
        walls.append(time.perf_counter() - started)
    cpu = (time.process_time() - cpu0) / len(walls)
    assert sched.quote_requests == requests  # no poll among them
    print(
        f"idle tick (every 1 s): median {statistics.median(walls) * 1000:.2f} ms,"
        f" max {max(walls) * 1000:.2f} ms,"
        f" CPU {cpu * 1000:.2f} ms per tick (~{cpu * 100:.2f}% of one core)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--alerts-per-user", type=int, default=5)
    parser.add_argument("--tickers", type=int, default=5_000)
    parser.add_argument("--polls", type=int, default=3)
    parser.add_argument("--database", help="a store URL (default: a fresh SQLite file)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
