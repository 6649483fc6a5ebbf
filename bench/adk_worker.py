"""Runs the chat-turn workload on Google ADK's SqliteSessionService; prints JSON figures.

Runs inside a separate virtualenv that has google-adk (see bench/compare_adk.py, which starts
it); it imports nothing from this project. The workload is the one bench/compare_adk.py runs on
our store: load the session, append the user event, append the reply with a state delta.
`--recent N` passes GetSessionConfig(num_recent_events=N); by default ADK's Runner passes no
config, so it loads every event of the session on every turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.genai import types

APP = "bench"

# The history text of bench/store.py, so both stores hold the same payload.
FILLER_TEXT = "a history message of ordinary length, about as long as a chat line usually is"


def _event(author: str, text: str, delta: dict | None = None) -> Event:
    return Event(
        invocation_id="inv",
        author=author,
        content=types.Content(
            role="user" if author == "user" else "model", parts=[types.Part(text=text)]
        ),
        actions=EventActions(state_delta=delta or {}),
    )


def _prefill(db_path: str, user: str, session_id: str, n: int) -> None:
    """Insert n events the way append_event stores them (its own JSON), in one transaction."""
    rows = []
    base = time.time() - n
    for i in range(n):
        ev = _event("user" if i % 2 == 0 else "manager", f"{FILLER_TEXT} #{i}")
        ev.id = f"pre-{session_id}-{i}"
        ev.timestamp = base + i
        rows.append(
            (
                ev.id,
                APP,
                user,
                session_id,
                ev.invocation_id,
                ev.timestamp,
                ev.model_dump_json(exclude_none=True),
            )
        )
    with sqlite3.connect(db_path) as db:
        db.executemany(
            "INSERT INTO events (id, app_name, user_id, session_id, invocation_id, timestamp,"
            " event_data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.execute("UPDATE sessions SET update_time=? WHERE id=?", (time.time(), session_id))


async def _turn(
    svc: SqliteSessionService, user: str, sid: str, cfg: GetSessionConfig | None, i: int
) -> None:
    session = await svc.get_session(app_name=APP, user_id=user, session_id=sid, config=cfg)
    assert session is not None
    await svc.append_event(session, _event("user", f"message {i}"))
    await svc.append_event(
        session, _event("manager", f"reply {i}", {"user:last_topic": f"topic {i}", "turns": i})
    )


async def per_turn(db: str, sizes: list[int], turns: int, runs: int, recent: int | None) -> dict:
    svc = SqliteSessionService(db)
    cfg = GetSessionConfig(num_recent_events=recent) if recent is not None else None
    out: dict[str, float] = {}
    for size in sizes:
        user, sid = f"u{size}", f"s{size}"
        await svc.create_session(app_name=APP, user_id=user, session_id=sid)
        _prefill(db, user, sid, size)
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            for i in range(turns):
                await _turn(svc, user, sid, cfg, i)
            samples.append((time.perf_counter() - start) / turns)
        out[str(size)] = statistics.median(samples)
    await svc.close()
    return out


async def concurrent(db: str, users: int, turns: int, recent: int | None) -> tuple[float, int]:
    """Turns/s that completed, and how many turns failed. ADK's service opens a connection per
    call; under concurrency SQLite answers some with "database is locked", which a chat bot
    would turn into an error reply: counted, not fatal, so the run still yields figures."""
    svc = SqliteSessionService(db)
    cfg = GetSessionConfig(num_recent_events=recent) if recent is not None else None
    for u in range(users):
        await svc.create_session(app_name=APP, user_id=f"c{u}", session_id=f"c{u}")
    failed = 0

    async def user_loop(u: int) -> None:
        nonlocal failed
        for i in range(turns):
            try:
                await _turn(svc, f"c{u}", f"c{u}", cfg, i)
            except sqlite3.OperationalError:
                failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(user_loop(u) for u in range(users)))
    elapsed = time.perf_counter() - start
    await svc.close()
    return (users * turns - failed) / elapsed, failed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--sizes", default="10,1000,10000")
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--user-turns", type=int, default=5)
    ap.add_argument("--recent", type=int, default=None)
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    d = Path(a.dir)
    tps, failed = asyncio.run(concurrent(str(d / "adk_conc.db"), a.users, a.user_turns, a.recent))
    res = {
        "per_turn_s": asyncio.run(
            per_turn(str(d / "adk_turns.db"), sizes, a.turns, a.runs, a.recent)
        ),
        "concurrent_turns_per_s": tps,
        "concurrent_failed_turns": failed,
    }
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
