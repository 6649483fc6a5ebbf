"""Fixtures of the crash and SIGTERM tests: `python -m bot` as a real process on the Telegram
emulator, a database per test (SQLite file or a fresh PostgreSQL database), and the checks a
database must pass after the process was killed: the backend's own integrity check, counters
that agree with the events, state that is exactly the fold of the stored deltas.

The bot process is configured only by environment variables (DESIGN §4), runs the offline model
(no LLM key) and never reaches a network: the Bot API and everything else are on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from storage import Event, Store
from tests.databases import postgres_database  # noqa: F401 (tests/multiworker, bench import it here)
from tests.emulators.telegram_api import TelegramApiEmulator

REPO = Path(__file__).resolve().parents[2]
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


@pytest.fixture
def database(any_db_url: str) -> Database:
    return Database("sqlite" if any_db_url.startswith("sqlite:") else "postgres", any_db_url)


@pytest.fixture
async def tg() -> AsyncIterator[TelegramApiEmulator]:
    async with TelegramApiEmulator(TOKEN) as emulator:
        yield emulator


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


@pytest.fixture
async def bot(
    tg: TelegramApiEmulator, database: Database, tmp_path: Path
) -> AsyncIterator[BotProcess]:
    process = BotProcess(tg, database, tmp_path)
    try:
        yield process
    finally:
        await process.close()


# -- checks after a crash ----------------------------------------------------------------------
async def integrity_problems(db: Database) -> list[str]:
    """The backend's own integrity check: SQLite's integrity and foreign-key checks; on
    PostgreSQL, amcheck over every B-tree index (when the extension is installed)."""
    if db.kind == "sqlite":
        path = db.url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            problems = [] if rows == ["ok"] else rows
            problems += [repr(r) for r in conn.execute("PRAGMA foreign_key_check")]
            return problems
        finally:
            conn.close()
    import asyncpg

    conn = await asyncpg.connect(db.url, timeout=5)
    try:
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        except asyncpg.PostgresError:
            return []  # contrib not installed: the consistency checks below still run
        problems = []
        indexes = await conn.fetch(
            "SELECT c.oid, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE a.amname = 'btree' AND n.nspname = current_schema()"
        )
        if not indexes:
            problems.append("amcheck found no B-tree index to check")
        for index in indexes:
            try:
                await conn.execute("SELECT bt_index_check($1::oid::regclass, true)", index["oid"])
            except asyncpg.PostgresError as exc:
                problems.append(f"{index['relname']}: {exc}")
        return problems
    finally:
        await conn.close()


def folded_state(events: list[Event], prefixes: tuple[str, ...] = ("user:",)) -> dict[str, Any]:
    """The state the stored deltas add up to (keys with these prefixes), in event order."""
    state: dict[str, Any] = {}
    for event in events:
        for key, value in event.actions.state_delta.items():
            if not key.startswith(prefixes):
                continue
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return state


async def consistency_problems(store: Store, user_id: str, events: list[Event]) -> list[str]:
    """What a half-written turn would leave behind: counters that disagree with the events,
    state that is not the fold of the deltas, an invocation without exactly one final event
    (last), a final event that is an error."""
    problems = []
    sessions = await store.list_sessions(APP, user_id)
    if sum(s.events for s in sessions) != len(events):
        problems.append(f"session counters say {sum(s.events for s in sessions)} events")
    if sum(s.turns for s in sessions) != sum(e.author == "user" for e in events):
        problems.append("session turn counters disagree with the user events")
    stats = await store.stats(APP, user_id)
    transfers: dict[str, int] = {}
    for event in events:
        if event.actions.transfer_to_agent:
            agent = event.actions.transfer_to_agent
            transfers[agent] = transfers.get(agent, 0) + 1
    if dict(stats.delegations) != transfers:
        problems.append(f"delegations {dict(stats.delegations)} != transfer events {transfers}")
    for info in sessions:
        session = await store.get_session(APP, user_id, info.session_id, recent_events=0)
        assert session is not None
        stored = {k: v for k, v in session.state.items() if k.startswith("user:")}
        if stored != folded_state(events):
            problems.append(f"user state {stored} != fold of the deltas {folded_state(events)}")
    by_invocation: dict[str, list[Event]] = {}
    for event in events:
        by_invocation.setdefault(event.invocation_id, []).append(event)
    for inv, mine in by_invocation.items():
        finals = [e for e in mine if e.final]
        if len(finals) != 1 or mine[-1] is not finals[0]:
            problems.append(f"invocation {inv}: {len(finals)} final events, last {mine[-1].id}")
        elif finals[0].error:
            problems.append(f"invocation {inv} ended with error {finals[0].error}")
        if sum(e.author == "user" for e in mine) != 1:
            problems.append(f"invocation {inv}: not exactly one user event")
    return problems
