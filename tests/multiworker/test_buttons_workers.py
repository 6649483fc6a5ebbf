"""Buttons across two `python -m bot` webhook workers on one PostgreSQL database: a button one
worker sent works when its press reaches the other (every worker checks the tag with the same
token), a press POSTed to both runs once, and someone else's press runs nothing on either."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.buttons import NOT_FOR_YOU
from storage import open_store
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from testkit.workers import Traffic, WorkerPool

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(120)]

USER = 860_001
STRANGER = 860_002
TIMEOUT = 45.0


async def test_a_press_works_on_any_worker_and_runs_once(
    tg: TelegramApiEmulator, postgres_db_url: str, tmp_path: Path
) -> None:
    traffic = Traffic(tg)
    async with WorkerPool(tg, postgres_db_url, tmp_path) as pool:

        async def say(worker: int, text: str) -> str:
            count = len(tg.bot_messages(USER))
            update_id = traffic.update(USER, text)
            assert await pool.post(worker, traffic.updates[update_id]) == 200
            await wait_until(lambda: len(tg.bot_messages(USER)) > count, timeout=TIMEOUT)
            return str(tg.shown(USER)[-1])

        await say(0, "/watchlist add AAPL")
        await say(0, "/watchlist add TSLA")
        assert await say(0, "/watchlist") == "Your watchlist: AAPL, TSLA"
        shown = tg.bot_messages(USER)[-1]
        buttons = dict(tg.buttons(USER, shown["message_id"]))
        count = len(tg.bot_messages(USER))

        # Someone else's press, sent to worker 1: answered "not for you", nothing runs.
        stranger = tg.callback_update(USER, shown["message_id"], buttons["Remove TSLA"], STRANGER)
        assert await pool.post(1, stranger) == 200
        await wait_until(lambda: tg.answer_to(stranger["update_id"]), timeout=TIMEOUT)
        assert tg.answer_to(stranger["update_id"])["text"] == NOT_FOR_YOU  # type: ignore[index]

        # The owner's press, POSTed to both workers at once (a retry racing the original).
        press = tg.callback_update(USER, shown["message_id"], buttons["Remove AAPL"], USER)
        statuses = await asyncio.gather(pool.post(1, press), pool.post(0, press))
        assert statuses == [200, 200]
        await wait_until(lambda: len(tg.bot_messages(USER)) > count, timeout=TIMEOUT)
        assert "Removed AAPL" in tg.shown(USER)[-1]
        async with await open_store(postgres_db_url) as store:

            async def settled() -> bool:
                return not await store.inbox_pending("telegram")

            await wait_until(settled, timeout=TIMEOUT)
        assert await say(1, "/watchlist") == "Your watchlist: TSLA"
        # One answer to the press, one to the list: the duplicate ran nothing.
        assert len(tg.bot_messages(USER)) == count + 2
        pool.check_alive()
