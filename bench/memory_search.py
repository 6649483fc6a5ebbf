"""Memory search benchmark: what one `recall` (the turn's memory lookup) costs when the user has
10,000 memories and the database holds 1,000,000.

    python bench/memory_search.py [--url URL | --fresh-postgres] [--quick] [--calls N] [--json]

Printed: the median and p95 milliseconds of one `store.recall(app, user, message)` call, through
the store's public API (SQLite: the reader thread hop included; PostgreSQL: the round trip), for
messages that share words with the user's memories and for ones that match none (then recall
gives the most recent). The SQLite target is <= 1 ms per call. Default URL: a fresh SQLite file
in a temp directory (removed afterwards); `--fresh-postgres`: a database of its own on the
TEST_POSTGRES_URL server, dropped afterwards. The rows are written in bulk, one transaction per
chunk, through each backend's own memory writes (no million append_event calls); other users
hold 200 memories each (the default MEMORY_LIMIT), all from the same vocabulary, so their rows
would be met by a search that was not scoped to its user.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.databases import print_figures, run_on_database, store_benchmark_parser
from storage import Memory, Store, open_store
from storage.common import memory_terms
from storage.postgres import PostgresStore
from storage.postgres.transfer import upsert_memories
from storage.sqlite import SqliteStore
from storage.sqlite.memories import merge_index

APP = "bench-memory"  # with a suffix per run, so runs on one --url database never collide
USER = "benchuser000"
OTHERS_EACH = 200
CHUNK = 10_000
_SYLLABLES = ("ka", "lo", "mi", "ren", "sto", "vu", "pe", "dra", "xi", "bel", "tor", "na")
_TEMPLATES = (
    "has a {0} called {1}",
    "likes {0} and {1}",
    "lives in {0} near the {1}",
    "works as a {0} at {1} {2}",
    "is allergic to {0}",
    "wants to visit {0} with {1} in {2}",
    "plays {0} every {1}",
    "their favourite {0} is {1} {2}",
)


@dataclass(frozen=True)
class Scale:
    user_memories: int  # memories of the measured user
    total: int  # memories in the database
    calls: int  # timed recall calls per kind of message


FULL = Scale(user_memories=10_000, total=1_000_000, calls=1_000)
QUICK = Scale(user_memories=1_000, total=20_000, calls=200)


def vocabulary(size: int = 5_000) -> list[str]:
    """Deterministic made-up words (four syllables: 12**4 possible), so no real text is
    needed."""
    rng = random.Random(7)
    words: set[str] = set()
    while len(words) < min(size, len(_SYLLABLES) ** 4):
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(4)))
    return sorted(words)


def facts(rng: random.Random, words: Sequence[str], n: int) -> list[str]:
    return [rng.choice(_TEMPLATES).format(*rng.sample(words, 3)) for _ in range(n)]


def messages(rng: random.Random, words: Sequence[str], n: int) -> list[str]:
    """Chat lines naming two vocabulary words, as a turn's message would."""
    return [
        f"what do you remember about my {a} and the {b}? tell me everything!"
        for a, b in (rng.sample(words, 2) for _ in range(n))
    ]


def unmatched(rng: random.Random, n: int) -> list[str]:
    return [
        f"hello there, how is the weather today, friend number {rng.random()}" for _ in range(n)
    ]


def rows_for(user: str, texts: Sequence[str], start: float) -> list[Memory]:
    return [
        Memory(f"{user[-6:]}{i:06x}", text, start + i, start + i, f"bench:{i}")
        for i, text in enumerate(texts)
    ]


# -- bulk writes ------------------------------------------------------------------------------
def _sqlite_chunk(db: sqlite3.Connection, app: str, user: str, rows: Sequence[Memory]) -> None:
    first = db.execute("SELECT coalesce(max(pk), 0) + 1 FROM memories").fetchone()[0]
    db.executemany(
        "INSERT INTO memories (pk, app_name, user_id, id, text, created_at, updated_at,"
        " event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (first + i, app, user, m.id, m.text, m.created_at, m.updated_at, m.event_id)
            for i, m in enumerate(rows)
        ],
    )
    db.executemany(
        "INSERT INTO memory_terms (rowid, terms) VALUES (?, ?)",
        [(first + i, " ".join(memory_terms(app, user, m.text))) for i, m in enumerate(rows)],
    )
    merge_index(db)  # as every write of the store does


async def write_rows(store: Store, app: str, user: str, rows: Sequence[Memory]) -> None:
    """One transaction per call, straight into the backend's memory tables (bench only)."""
    if isinstance(store, SqliteStore):
        await store.writer.submit(partial(_sqlite_chunk, app=app, user=user, rows=rows))
    elif isinstance(store, PostgresStore):
        data = [(app, user, m.id, m.text, m.created_at, m.updated_at, m.event_id) for m in rows]
        async with store.pool.acquire() as conn, conn.transaction():
            await upsert_memories(conn, data)
    else:
        raise TypeError(f"no bulk writer for {type(store).__name__}")


async def fill(
    store: Store, app: str, scale: Scale, words: Sequence[str], log: Callable[[str], None]
) -> None:
    rng = random.Random(11)
    started = time.monotonic()
    mine = rows_for(USER, facts(rng, words, scale.user_memories), 1_000_000.0)
    for part in range(0, len(mine), CHUNK):
        await write_rows(store, app, USER, mine[part : part + CHUNK])
    others = max(scale.total - scale.user_memories, 0)
    batch: list[tuple[str, list[Memory]]] = []
    for n in range(0, others, OTHERS_EACH):
        user = f"other{n // OTHERS_EACH:07d}"
        batch.append((user, rows_for(user, facts(rng, words, min(OTHERS_EACH, others - n)), 0.0)))
        if sum(len(rows) for _, rows in batch) >= CHUNK:
            await _write_batch(store, app, batch)
            batch = []
            log(f"  filled {n + OTHERS_EACH + len(mine):,} memories")
    await _write_batch(store, app, batch)
    log(f"filled {scale.total:,} memories in {time.monotonic() - started:.0f}s")


async def _write_batch(store: Store, app: str, batch: Sequence[tuple[str, list[Memory]]]) -> None:
    for user, rows in batch:  # per user: the terms are keyed by their owner
        await write_rows(store, app, user, rows)


# -- measuring --------------------------------------------------------------------------------
async def time_calls(store: Store, app: str, queries: Sequence[str]) -> dict[str, float]:
    """Wall milliseconds of each recall, one after another (a turn makes one): median and p95;
    and this process's CPU milliseconds per call - for SQLite the whole cost (its reader thread
    is ours), and a figure a busy machine's scheduling does not inflate."""
    wall = []
    cpu_began = time.process_time()
    for query in queries:
        began = time.perf_counter()
        await store.recall(app, USER, query)
        wall.append((time.perf_counter() - began) * 1000)
    cpu = (time.process_time() - cpu_began) * 1000 / max(len(queries), 1)
    ordered = sorted(wall)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[max(int(len(ordered) * 0.95) - 1, 0)], 3),
        "cpu_ms": round(cpu, 3),
    }


async def measure(
    target: str | Store,
    scale: Scale = FULL,
    log: Callable[[str], None] = print,
    *,
    app: str | None = None,
) -> dict[str, Any]:
    """Fill under a new app name (or use the rows an earlier call filled under `app`) and time
    `recall`; a URL is opened and closed here, a store is used as it is. Returns the figures
    printed."""
    if isinstance(target, str):
        async with await open_store(target) as store:
            return await measure(store, scale, log, app=app)
    words = vocabulary()
    if app is None:
        app = f"{APP}-{uuid.uuid4().hex[:8]}"
        await fill(target, app, scale, words, log)
    rng = random.Random(13)
    matching, other = messages(rng, words, scale.calls), unmatched(rng, scale.calls)
    found = await target.recall(app, USER, matching[0])
    await time_calls(target, app, matching[:50] + other[:50])  # warm caches and connections
    figures: dict[str, Any] = {
        "backend": type(target).__name__,
        "user_memories": scale.user_memories,
        "total_memories": scale.total,
        "recall_returns": len(found),
        "app": app,
        "matching": await time_calls(target, app, matching),
        "no_match": await time_calls(target, app, other),
    }
    for kind in ("matching", "no_match"):
        log(
            f"recall ({kind.replace('_', ' ')}): median {figures[kind]['median_ms']} ms,"
            f" p95 {figures[kind]['p95_ms']} ms, CPU {figures[kind]['cpu_ms']} ms per call"
            f" ({scale.user_memories:,} memories of the user, {scale.total:,} in the database)"
        )
    return figures


def main() -> int:
    ap = store_benchmark_parser(__doc__)
    ap.add_argument("--calls", type=int, help="timed calls per kind of message")
    args = ap.parse_args()
    scale = QUICK if args.quick else FULL
    if args.calls:
        scale = Scale(scale.user_memories, scale.total, args.calls)
    figures = run_on_database(args, "memory", partial(measure, scale=scale))
    print_figures(args, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
