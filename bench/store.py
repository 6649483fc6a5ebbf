"""Session-store benchmark: per-turn cost as history grows, and turns/s under concurrency.

    python bench/store.py [--url URL | --fresh-postgres] [--quick] [--runs N] [--json]

A turn is what the runner asks of the store: get_session with the last 20 events, append the
user event, append the reply event with a state delta. Printed (median of --runs runs):
  * per-turn cost with 0, 10k and 100k events already in the session, 1M in the database;
  * turns/s for 1 user, and for 100 concurrent users (each holding its session lock);
  * peak RSS of this process.
Default URL: a fresh SQLite file in a temp directory (removed afterwards). With --url (e.g.
postgresql://postgres@127.0.0.1:5432/bench) the data goes under a unique app name and is
deleted at the end. `--fresh-postgres`: a database of its own on the TEST_POSTGRES_URL server,
dropped afterwards (what `./scripts/bench.sh store --postgres` runs). Filling uses the
backend's tables directly, one transaction per chunk (bench/fill.py), else concurrent
append_event calls (much slower).
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.databases import print_figures, run_on_database, store_benchmark_parser
from bench.fill import append_fresh
from storage import Event, EventActions, Session, Store, open_store

FILLER_TEXT = "a history message of ordinary length, about as long as a chat line usually is"


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]  # events already in the measured sessions
    total: int  # events in the database
    turns: int  # turns per per-turn run
    users: int  # concurrent users
    turns_per_user: int
    runs: int


FULL = Plan(
    sizes=(0, 10_000, 100_000), total=1_000_000, turns=200, users=100, turns_per_user=30, runs=5
)
QUICK = Plan(sizes=(0, 1_000, 10_000), total=50_000, turns=50, users=100, turns_per_user=5, runs=3)


def history_event(i: int, sid: str) -> Event:
    author = "user" if i % 2 == 0 else "manager"
    return Event(
        author=author,
        content={"text": f"{FILLER_TEXT} #{i}"},
        invocation_id=f"{sid}-{i // 2}",
        id=f"{sid}-{i}",
        timestamp=1_700_000_000.0 + i,
    )


async def fill(store: Store, session: Session, n: int, chunk: int = 5_000) -> None:
    for start in range(0, n, chunk):
        events = [history_event(i, session.session_id) for i in range(start, min(n, start + chunk))]
        await append_fresh(store, session, events)


async def chat_turn(store: Store, app: str, user: str, sid: str, i: int) -> None:
    """One turn's store work (bench/compare_adk.py runs the same against ADK)."""
    session = await store.get_session(app, user, sid, recent_events=20)
    assert session is not None
    await store.append_event(session, Event(author="user", content={"text": f"message {i}"}))
    await store.append_event(
        session,
        Event(
            author="manager",
            content={"text": f"reply {i}"},
            actions=EventActions(state_delta={"user:last_topic": f"topic {i}", "turns": i}),
        ),
    )


async def per_turn_ms(store: Store, app: str, session: Session, turns: int) -> float:
    start = time.perf_counter()
    for i in range(turns):
        await chat_turn(store, app, session.user_id, session.session_id, i)
    return (time.perf_counter() - start) / turns * 1000


async def concurrent_tps(store: Store, app: str, users: int, turns: int, tag: str) -> float:
    sessions = [await store.create_session(app, f"{tag}-u{u}", f"{tag}-s{u}") for u in range(users)]

    async def one_user(s: Session) -> None:
        for i in range(turns):
            async with store.session_lock(app, s.user_id, s.session_id):
                await chat_turn(store, app, s.user_id, s.session_id, i)

    start = time.perf_counter()
    await asyncio.gather(*(one_user(s) for s in sessions))
    return users * turns / (time.perf_counter() - start)


async def bench(url: str, plan: Plan, log: Any) -> dict[str, Any]:
    app = f"bench-{uuid.uuid4().hex[:8]}"
    figures: dict[str, Any] = {"url": url.split("@")[-1], "plan": plan.__dict__}
    async with await open_store(url) as store:
        t0 = time.perf_counter()
        measured = {}
        for size in plan.sizes:
            measured[size] = await store.create_session(app, f"h{size}", f"h{size}")
            await fill(store, measured[size], size)
        rest, k = plan.total - sum(plan.sizes), 0
        while rest > 0:
            n = min(rest, 10_000)
            filler = await store.create_session(app, f"f{k % 30}", f"f{k}")
            await fill(store, filler, n)
            rest, k = rest - n, k + 1
        figures["fill_seconds"] = round(time.perf_counter() - t0, 1)
        log(f"filled {plan.total:,} events in {figures['fill_seconds']} s")
        # Warm up (caches, and the checkpoint the fill left pending) before measuring.
        await per_turn_ms(store, app, await store.create_session(app, "warm", "warm"), plan.turns)

        # Sizes take turns within each run, so a burst of load on this shared machine hits
        # every size alike instead of skewing whichever was measured during it.
        runs: dict[int, list[float]] = {size: [] for size in plan.sizes}
        for r in range(plan.runs):
            for size in plan.sizes:
                session = measured[size]
                if size == 0:  # a fresh empty session each run
                    session = await store.create_session(app, "h0", f"h0-run{r}")
                runs[size].append(await per_turn_ms(store, app, session, plan.turns))
        figures["per_turn_ms"] = {}
        for size in plan.sizes:
            figures["per_turn_ms"][size] = round(statistics.median(runs[size]), 3)
            log(
                f"per-turn cost, {size:>7,} events in session: "
                f"{figures['per_turn_ms'][size]:.3f} ms (median of {plan.runs})"
            )
        base = figures["per_turn_ms"][plan.sizes[0]]
        figures["growth_ratio"] = round(figures["per_turn_ms"][plan.sizes[-1]] / base, 2)
        log(f"cost at {plan.sizes[-1]:,} / cost at 0: {figures['growth_ratio']}x")

        one = [await concurrent_tps(store, app, 1, plan.turns, f"one{r}") for r in range(plan.runs)]
        figures["turns_per_s_1_user"] = round(statistics.median(one))
        log(f"1 user:    {figures['turns_per_s_1_user']:>6} turns/s")
        writer = getattr(store, "writer", None)
        jobs0, batches0 = (writer.jobs, writer.batches) if writer else (0, 0)
        many = [
            await concurrent_tps(store, app, plan.users, plan.turns_per_user, f"many{r}")
            for r in range(plan.runs)
        ]
        figures["turns_per_s_concurrent"] = round(statistics.median(many))
        log(f"{plan.users} users: {figures['turns_per_s_concurrent']:>6} turns/s")
        if writer and writer.batches > batches0:
            figures["appends_per_commit"] = round(
                (writer.jobs - jobs0) / (writer.batches - batches0), 1
            )
            log(f"  group commit: {figures['appends_per_commit']} writes per COMMIT on average")

        sessions = await store.list_sessions(app, limit=100_000)
        for user_id in {s.user_id for s in sessions}:
            await store.delete_user(app, user_id)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    log(f"peak RSS: {figures['peak_rss_mb']} MB")
    return figures


def main() -> int:
    ap = store_benchmark_parser(__doc__)
    ap.add_argument("--runs", type=int, help="runs per figure (median is printed)")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    if args.runs:
        plan = Plan(**{**plan.__dict__, "runs": args.runs})
    figures = run_on_database(args, "store", lambda url: bench(url, plan, print))
    print_figures(args, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
