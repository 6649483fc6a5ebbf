"""Two `python -m bot` workers in Telegram webhook mode on one PostgreSQL database (issue 7).

20 users send 10 messages each. Like Telegram, each user's next update goes out only after the
previous one got its 200, and every user's consecutive updates alternate between the workers
(the balancer may send any update anywhere), while all users run at once. One update per user
is also sent, at the same moment, to the other worker (20 duplicates racing on one update id).

Checked once the inbox is empty and both workers stopped cleanly:
- every update answered exactly once: one sendMessage per update in each chat, none for the
  duplicates, and each chat's replies are the stored final answers in order;
- each user's history in order: the user events are the updates in the order they were sent;
- no event lost: 200 user events, each turn with exactly one final event, last, not an error.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest

from storage import Event, Store, open_store
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from testkit.workers import Delivery, Traffic, WorkerPool, run_chat

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(120)]

SEED = 7_2026
USERS = 20
PER_USER = 10
FIRST_CHAT = 830_001
ANSWER_TIMEOUT = 45.0
APP = "multiworker-tests"
TOPICS = ("Python", "databases", "cats", "compilers", "coffee", "git", "Rust", "regex")


def message(user: int, i: int) -> str:
    """A mix of turns: the first sets the user's name (state), then jokes and small talk."""
    if i == 0:
        return f"Hi, my name is User{user % 1000}"
    if i % 3 == 1:
        return f"Tell me a joke about {TOPICS[(user + i) % len(TOPICS)]} (#{i})"
    return f"Message number {i}, how are you?"


def plan(traffic: Traffic) -> dict[int, list[Delivery]]:
    """Each user's deliveries in order; consecutive ones alternate workers; one duplicate per
    user, to the other worker, at a seeded position."""
    rng = random.Random(SEED)
    chats: dict[int, list[Delivery]] = {}
    for n in range(USERS):
        user = FIRST_CHAT + n
        dup_at = rng.randrange(PER_USER)
        deliveries = []
        for i in range(PER_USER):
            update_id = traffic.update(user, message(user, i))
            worker = (n + i) % 2
            deliveries.append(Delivery(user, update_id, message(user, i), worker))
            if i == dup_at:
                deliveries.append(Delivery(user, update_id, "", 1 - worker, duplicate=True))
        chats[user] = deliveries
    return chats


async def history(store: Store, user: int) -> list[Event]:
    user_id = await store.find_user("telegram", str(user))
    assert user_id is not None, f"user {user} was never seen"
    return await store.history(APP, user_id, limit=10 * PER_USER * 4)


def turn_problems(events: list[Event]) -> list[str]:
    """Every invocation: one user event first, exactly one final event, last, not an error."""
    problems = []
    turns: dict[str, list[Event]] = {}
    for event in events:
        turns.setdefault(event.invocation_id, []).append(event)
    for invocation, mine in turns.items():
        finals = [e for e in mine if e.final]
        if mine[0].author != "user" or sum(e.author == "user" for e in mine) != 1:
            problems.append(f"{invocation}: not one user event first")
        if len(finals) != 1 or mine[-1] is not finals[0]:
            problems.append(f"{invocation}: {len(finals)} final events")
        elif finals[0].error:
            problems.append(f"{invocation}: ended with error {finals[0].error}")
    return problems


async def test_two_workers_answer_each_update_once_and_in_order(
    tg: TelegramApiEmulator, postgres_db_url: str, tmp_path: Path
) -> None:
    traffic = Traffic(tg)
    chats = plan(traffic)
    statuses: Counter[int] = Counter()
    async with await open_store(postgres_db_url) as store:
        async with WorkerPool(tg, postgres_db_url, tmp_path, count=2, app_name=APP) as pool:
            await asyncio.gather(
                *(
                    run_chat(pool, traffic, deliveries, lambda d, s: statuses.update([s]))
                    for deliveries in chats.values()
                )
            )
            assert statuses == {200: USERS * PER_USER + USERS}, pool.tails()

            async def answered() -> bool:
                pool.check_alive()
                replies = all(len(tg.sent(user)) >= PER_USER for user in chats)
                return replies and not await store.inbox_pending("telegram")

            try:
                await wait_until(answered, timeout=ANSWER_TIMEOUT)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{pool.tails()}") from None
            codes = await pool.close()
        assert codes == [0, 0], pool.tails()  # SIGTERM: in-flight turns finished, clean exit

        user_events, out_of_order = 0, {}
        for user, deliveries in chats.items():
            sent = [d for d in deliveries if not d.duplicate]
            events = await history(store, user)
            asked = [e for e in events if e.author == "user"]
            user_events += len(asked)
            # Each user's history in the order the updates were sent, each stored once.
            stored = [e.invocation_id for e in asked]
            if stored != [f"telegram:{d.update_id}" for d in sent]:
                out_of_order[user] = stored
                continue
            assert [e.text for e in asked] == [d.text for d in sent]
            assert turn_problems(events) == [], user
            # Answered exactly once, in order: the chat shows the stored final answers.
            assert tg.texts(user) == [e.text for e in events if e.final], user
        assert not out_of_order, (
            f"{len(out_of_order)} users' histories out of order: {out_of_order}"
        )
        assert user_events == USERS * PER_USER  # no event lost
        assert len(tg.sent()) == USERS * PER_USER  # one reply per update, none to the duplicates
        assert not await store.inbox_pending("telegram")
