"""One user flooding the bot cannot starve another, through the real python-telegram-bot against
the Bot API emulator, on both backends.

User A sends 400 messages while a long turn of theirs holds their session; user B then sends
one. With USER_QUEUE_LIMIT=5, five of A's messages wait for their turn (holding no PTB update
slot and sending no "typing…"), the other 395 are recorded, closed and logged as refused, A is
told once to slow down, and B is answered while A's five still wait. Once A's session is free,
the five are answered; nothing is left unanswered in the inbox.

The memory check runs `python -m bot` as a process (its own RSS, not the test's): 10,000
messages from one user add less than 30 MB.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.conversation import SLOW_DOWN
from bot.settings import Settings
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from tests.e2e.telegram.conftest import TOKEN, RunningBot, bot_env, start_bot
from tests.reliability.conftest import BotProcess, Database

pytestmark = pytest.mark.e2e

A, B = 4001, 4002
FLOOD = 400
QUEUE = 5
BIG_FLOOD = 10_000
RSS_GROWTH_LIMIT_KB = 30 * 1024
LIMITS = {"USER_RATE_LIMIT": "20/min", "USER_QUEUE_LIMIT": str(QUEUE)}


@pytest.fixture
async def running(any_db_url: str, tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with TelegramApiEmulator(TOKEN) as tg:
        env = bot_env(tg, tmp_path) | {"DATABASE_URL": any_db_url, **LIMITS}
        async for bot in start_bot(Settings.from_env(env, dotenv_path=None), tg):
            yield bot


async def hold_session(running: RunningBot, chat: int) -> tuple[asyncio.Event, asyncio.Task]:
    """The user's private-chat session stays locked (a long turn) until the event is set."""
    user_id = await running.app.store.find_user("telegram", str(chat))
    assert user_id is not None
    release, locked = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        app = running.app
        async with app.store.session_lock(app.settings.app_name, user_id, f"telegram:{chat}"):
            locked.set()
            await release.wait()

    task = asyncio.create_task(hold())
    await locked.wait()
    return release, task


async def test_a_flood_from_one_user_does_not_starve_another(
    running: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    tg, store = running.tg, running.app.store
    caplog.set_level(logging.INFO, logger="bot.conversation")
    await running.ask(A, A, "hello")  # A exists, with a session
    release, holder = await hold_session(running, A)

    def typing_to_a() -> int:
        return sum(int(c.params["chat_id"]) == A for c in tg.calls_to("sendChatAction"))

    typing_before = typing_to_a()  # "hello" may have shown it, on a loaded machine
    try:
        for i in range(FLOOD):
            tg.private_text(A, f"flood {i}")
        tg.private_text(B, "Tell me a joke about owls")

        def refused() -> int:
            return sum("refused" in r.getMessage() for r in caplog.records)

        # B is answered while A's accepted messages still wait for A's busy session.
        await wait_until(lambda: tg.bot_messages(B) and refused() == FLOOD - QUEUE, 60)
        assert len(tg.shown(B)) == 1 and tg.shown(B)[0] != SLOW_DOWN

        async def only_a_waits() -> bool:
            # B's row is marked answered just after its reply went out.
            pending = await store.inbox_pending("telegram")
            return all(int(p.payload["platform_user_id"]) == A for p in pending)

        await wait_until(only_a_waits, 10)
        pending = await store.inbox_pending("telegram")
        assert len(pending) == QUEUE  # A's five, waiting; everything else closed
        assert tg.shown(A) == [tg.shown(A)[0], SLOW_DOWN]  # "hello"'s answer, one notice
        # Waiting messages show no "typing…" (and spend no Bot API call on it).
        assert typing_to_a() == typing_before
    finally:
        release.set()
        await holder
    await wait_until(running.settled, 60)
    shown = tg.shown(A)
    assert len(shown) == 2 + QUEUE and shown.count(SLOW_DOWN) == 1  # nothing lost for A
    assert all(text.strip() for text in shown)


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
async def test_a_10000_message_flood_adds_under_30_mb(
    tg: TelegramApiEmulator, database: Database, tmp_path: Path
) -> None:
    bot = BotProcess(tg, database, tmp_path, extra_env=LIMITS)
    try:
        proc = await bot.start()
        tg.private_text(A, "hello")
        await bot.until(lambda: tg.bot_messages(A), 30)
        before = rss_kb(proc.pid)
        started = time.monotonic()
        for i in range(BIG_FLOOD):
            tg.private_text(A, f"flood {i}")
        tg.private_text(B, "Tell me a joke about owls")
        last = tg.private_text(A, "after the flood")
        # The last message is refused (A is past the limits) once all before it were handled.
        done = f"telegram:{last} refused"
        await bot.until(lambda: tg.bot_messages(B) and done in bot.log.read_text(), 240)
        elapsed = time.monotonic() - started
        growth = rss_kb(proc.pid, "VmHWM") - before  # the peak, against the idle bot
        print(f"\n[{database.kind}] {BIG_FLOOD:,} messages in {elapsed:.1f}s: RSS +{growth} kB")
        assert growth < RSS_GROWTH_LIMIT_KB
        assert tg.shown(A).count(SLOW_DOWN) == 1
        assert await bot.terminate() == 0
    finally:
        await bot.close()
