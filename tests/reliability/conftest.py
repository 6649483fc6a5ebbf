"""Fixtures of the crash and SIGTERM tests: `python -m bot` as a real process on the Telegram
emulator, a database per test (SQLite file or a fresh PostgreSQL database), and the checks a
database must pass after the process was killed: the backend's own integrity check, counters
that agree with the events, state that is exactly the fold of the stored deltas.

The bot process itself is testkit.bot_process.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agents.memory_extraction import MEMORY_AUTHOR
from storage import Event, Store
from storage.types import SUMMARY_AUTHOR
from testkit.bot_process import (  # noqa: F401 (tests import them from here)
    APP,
    NO_NETWORK,
    REPO,
    START_TIMEOUT,
    TOKEN,
    BotProcess,
    Database,
)
from testkit.databases import postgres_database  # noqa: F401 (tests/multiworker, bench import it here)
from testkit.emulators.discord_api import DiscordEmulator
from testkit.emulators.telegram_api import TelegramApiEmulator


@pytest.fixture
def database(any_db_url: str) -> Database:
    return Database("sqlite" if any_db_url.startswith("sqlite:") else "postgres", any_db_url)


@pytest.fixture
async def tg() -> AsyncIterator[TelegramApiEmulator]:
    async with TelegramApiEmulator(TOKEN) as emulator:
        yield emulator


@pytest.fixture
async def bot(
    tg: TelegramApiEmulator, database: Database, tmp_path: Path
) -> AsyncIterator[BotProcess]:
    process = BotProcess(tg, database, tmp_path)
    try:
        yield process
    finally:
        await process.close()


async def start_on_discord(bot: BotProcess, emu: DiscordEmulator, timeout: float) -> None:
    """Start the process (configured for Discord only) and wait until this run has identified
    on the emulator's gateway (an IDENTIFY more than the runs before) and is connected."""
    identified = sum(op["op"] == 2 for op in emu.gateway_ops)
    await bot.start(wait_polling=False)
    await bot.until(
        lambda: sum(op["op"] == 2 for op in emu.gateway_ops) > identified and emu.connected,
        timeout,
    )


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
    for inv, everything in by_invocation.items():
        # A summary or a memory update is appended after the turn was answered (under the turn's
        # invocation id, so a replay cannot add it twice): the turn itself ends at its final.
        mine = [e for e in everything if e.author not in (SUMMARY_AUTHOR, MEMORY_AUTHOR)]
        finals = [e for e in mine if e.final]
        if len(finals) != 1 or mine[-1] is not finals[0]:
            problems.append(f"invocation {inv}: {len(finals)} final events, last {mine[-1].id}")
        elif everything.index(finals[0]) != len(mine) - 1:
            problems.append(f"invocation {inv}: an after-turn event came before its final")
        elif finals[0].error:
            problems.append(f"invocation {inv} ended with error {finals[0].error}")
        if sum(e.author == "user" for e in mine) != 1:
            problems.append(f"invocation {inv}: not exactly one user event")
    return problems
