"""Two `python -m bot` webhook workers on one PostgreSQL database, each running its scheduler
(issue 15): every reminder and every alert fires exactly once.

20 users each set, by chat (their updates alternating between the workers), a reminder due in
a few seconds and an alert on TSLA below 150; then the quotes emulator moves TSLA to 149. Both
workers tick every second and poll quotes every second (ALERT_POLL_SECONDS=1), so each job is
seen due by both: the claim (FOR UPDATE SKIP LOCKED, on the version read) lets only one fire
it, and each unsent outbox row is leased by one worker's send pass at a time. Checked after
several more polls of both workers: one reminder and one alert per user, no more, and nothing
left in the outbox. (Before the lease, an alert arrived twice: both send passes read its row.)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from storage import Store, open_store
from storage.types import Job
from testkit.emulators.quotes import Listing, QuotesEmulator
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from testkit.workers import Delivery, Traffic, WorkerPool, run_chat

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(120)]

USERS = 20
FIRST_CHAT = 850_001
APP = "multiworker-tests"
TIMEOUT = 45.0


def fired(tg: TelegramApiEmulator, user: int, mark: str) -> int:
    return sum(text.startswith(mark) for text in tg.texts(user))


async def test_two_workers_fire_every_job_exactly_once(
    tg: TelegramApiEmulator, postgres_db_url: str, tmp_path: Path
) -> None:
    async with QuotesEmulator({"TSLA": Listing(160.0, 158.0)}) as market:
        env = {"ALERT_POLL_SECONDS": "1", "QUOTES_BASE_URL": market.base_url}
        traffic = Traffic(tg)
        users = [FIRST_CHAT + n for n in range(USERS)]
        chats = {
            user: [
                Delivery(user, traffic.update(user, text), text, (n + k) % 2)
                for k, text in enumerate(
                    (f"remind me in 5 seconds to task {n}", "tell me when TSLA drops below 150")
                )
            ]
            for n, user in enumerate(users)
        }
        async with WorkerPool(tg, postgres_db_url, tmp_path, app_name=APP, extra_env=env) as pool:
            await asyncio.gather(*(run_chat(pool, traffic, chat) for chat in chats.values()))

            async def all_set() -> bool:
                pool.check_alive()
                return all(fired(tg, u, "OK:") == 2 for u in users)

            await wait_until(all_set, timeout=TIMEOUT)
            market.prices["TSLA"] = Listing(149.0, 158.0)

            def all_fired() -> bool:
                pool.check_alive()
                return all(fired(tg, u, "⏰") and fired(tg, u, "🔔") for u in users)

            try:
                await wait_until(all_fired, timeout=TIMEOUT)
                # Both workers poll at least three more times: any second firing would show.
                polls = len(market.requests)
                await wait_until(lambda: len(market.requests) >= polls + 6, timeout=TIMEOUT)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{pool.tails()}") from None
            codes = await pool.close()
        assert codes == [0, 0], pool.tails()

    for n, user in enumerate(users):
        assert fired(tg, user, "⏰") == 1, (user, tg.texts(user))
        assert fired(tg, user, "🔔") == 1, (user, tg.texts(user))
        assert f'⏰ Reminder: "task {n}"' in tg.texts(user)
    async with await open_store(postgres_db_url) as store:
        assert await store.pending_outbox(APP, time.time() + 3600, 100) == []
        for user in users:  # each fired, none re-armed (TSLA stayed below)
            assert [j.armed for j in await _alerts(store, user)] == [False]


async def _alerts(store: Store, user: int) -> list[Job]:
    user_id = await store.find_user("telegram", str(user))
    assert user_id is not None
    return [j for j in await store.jobs(APP, user_id) if j.kind == "alert"]
