"""One of two webhook workers dies (SIGKILL) after it acknowledged updates and before their
replies reached Telegram; the other keeps serving, and the dead one's updates are answered once
it is back. PostgreSQL, `python -m bot` processes configured only by environment variables.

What it shows about ordering across workers (docs/scaling.md): the survivor answers a user's
next message after a bounded wait for the older unanswered one (logged), so the reply to the
older one arrives late, after the restart: late and out of order in the chat, but not lost and
not twice; the stored history stays in the order the messages were sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import open_store
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from testkit.workers import Traffic, WorkerPool

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(120)]

APP = "multiworker-crash"
NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald")
USERS = len(NAMES)
FIRST_CHAT = 870_001
TIMEOUT = 30.0


async def test_a_dead_workers_updates_are_answered_once_after_its_restart(
    tg: TelegramApiEmulator, postgres_db_url: str, tmp_path: Path
) -> None:
    traffic = Traffic(tg, first_update_id=970_001)
    users = [FIRST_CHAT + n for n in range(USERS)]
    name = dict(zip(users, NAMES, strict=True))
    first = {u: traffic.update(u, f"Hi, my name is {name[u]}") for u in users}
    second = {u: traffic.update(u, "Tell me a joke about crashes") for u in users}
    async with await open_store(postgres_db_url) as store:
        async with WorkerPool(tg, postgres_db_url, tmp_path, count=2, app_name=APP) as pool:
            # Worker 0 takes every user's first message and gets as far as sending the reply.
            tg.hold("sendMessage")
            for user in users:
                assert await pool.post(0, traffic.updates[first[user]]) == 200
            await wait_until(lambda: len(tg.holding) == USERS, timeout=TIMEOUT)
            await pool.kill(0)
            tg.drop_held()  # the held sends fail: none of those replies reached Telegram
            assert not tg.sent()

            # The survivor answers each user's next message, after the bounded wait.
            for user in users:
                assert await pool.post(1, traffic.updates[second[user]]) == 200
            await wait_until(lambda: len(tg.sent()) == USERS, timeout=TIMEOUT)
            assert {int(c.params["chat_id"]) for c in tg.sent()} == set(users)
            assert "older message of its user is still unanswered" in pool.workers[1].tail(200)

            # Back up, worker 0 answers what it had acknowledged: the stored answer, sent once.
            await pool.restart(0)

            async def settled() -> bool:
                pool.check_alive()
                return len(tg.sent()) >= 2 * USERS and not await store.inbox_pending()

            await wait_until(settled, timeout=TIMEOUT)
            assert await pool.close() == [0, 0], pool.tails()

        for user in users:
            user_id = await store.find_user("telegram", str(user))
            assert user_id is not None
            events = await store.history(APP, user_id, limit=100)
            asked = [e.invocation_id for e in events if e.author == "user"]
            assert asked == [f"telegram:{first[user]}", f"telegram:{second[user]}"]
            finals = [e for e in events if e.final]
            assert len(finals) == 2 and not any(e.error for e in finals)
            # Each update answered exactly once; the late one arrives last.
            assert sorted(tg.texts(user)) == sorted(e.text for e in finals), user
            assert tg.texts(user)[-1] == finals[0].text
            assert name[user] in finals[0].text
