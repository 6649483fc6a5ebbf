"""A database another process keeps locked for 5 s, and a market-data provider that is down or
talks nonsense: the bot answers (or says "busy, try again"), never crashes, loses no message,
and everything that does not need the broken part keeps working."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from bot.conversation import BUSY, FAILED
from testkit.emulators.quotes import QuotesEmulator
from tests.reliability.fault_fixtures import ask, message, running_app, user_events

LOCK_SECONDS = 5.0
HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")  # the write lock, as a second bot process mid-write holds it
db.execute("CREATE TABLE IF NOT EXISTS other_process (x)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
print("released", flush=True)
"""


async def test_a_database_locked_by_another_process_for_5s(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with running_app(f"sqlite:///{path}") as app:
        users = [f"60{i}" for i in range(4)]
        for user in users:  # they exist before the lock (their first message is no special case)
            assert (await ask(app, message("hello", user=user))).text
        locker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            HOLD_LOCK,
            str(path),
            str(LOCK_SECONDS),
            stdout=asyncio.subprocess.PIPE,
        )
        assert locker.stdout is not None
        assert await asyncio.wait_for(locker.stdout.readline(), 10) == b"locked\n"
        texts = {u: f"Tell me a joke about locks, says {u}" for u in users}
        answers = await asyncio.gather(*(ask(app, message(texts[u], user=u)) for u in users))
        assert await asyncio.wait_for(locker.wait(), 10) == 0
        for user, answer in zip(users, answers, strict=True):
            # One clean reply each: the answer (waited for the lock) or "busy, try again".
            assert len(answer.final) == 1 and answer.text != FAILED, answer.text
            if answer.text == BUSY:
                again = await ask(app, message(texts[user], user=user))
                assert again.text not in (BUSY, FAILED)
            asked = [e.text for e in await user_events(app, "telegram", user) if e.author == "user"]
            assert asked == ["hello", texts[user]]  # stored once, whichever way it went
        assert not await app.store.inbox_pending("telegram")
        # The bot still works for everyone, new users included.
        assert (await ask(app, message("Tell me a joke", user="699"))).text not in (BUSY, FAILED)


@pytest.mark.parametrize("mode", ["down", "error", "garbage", "bad_shape", "hang"])
async def test_quote_provider_down_or_talking_garbage(tmp_path: Path, mode: str) -> None:
    async with QuotesEmulator() as market:
        market.mode = "ok" if mode == "down" else mode
        base = "http://127.0.0.1:9" if mode == "down" else market.base_url
        async with running_app(f"sqlite:///{tmp_path / 'bot.db'}", QUOTES_BASE_URL=base) as app:
            price = await ask(app, message("What's AAPL at?"))
            assert "unavailable" in price.text.lower(), price.text
            assert "187.42" not in price.text  # no price made up
            if mode == "hang":
                assert price.seconds < 10  # the provider's own timeout, well inside the turn
            watch = await ask(app, message("add TSLA to my watchlist"))
            assert "TSLA" in watch.text and "unavailable" not in watch.text.lower()
            if mode != "hang":  # (one 5 s provider timeout is enough)
                quotes = await ask(app, message("how is my watchlist doing?"))
                assert "unavailable" in quotes.text.lower(), quotes.text
            joke = await ask(app, message("Tell me a joke about Python"))
            assert joke.text and joke.text not in (BUSY, FAILED)
            assert "TSLA" in (await ask(app, message("/watchlist"))).text
            assert not await app.store.inbox_pending("telegram")
