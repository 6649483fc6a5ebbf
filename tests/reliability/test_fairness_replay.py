"""Replay after a restart and the cross-worker order wait, on both backends.

- `inbox_pending` returns every unanswered message (not the 1,000 oldest), interleaved across
  users: one user's backlog does not hold up another user's single message.
- `inbox_earlier_pending(..., since=)` leaves out a message stuck long ago, so one message that
  was never answered does not slow each later message of its user.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from storage import Store, open_store
from testkit.helpers import wait_until

BACKLOG = 1_500  # more than the 1,000 rows a replay used to stop at


@pytest.fixture
async def store(any_db_url: str) -> AsyncIterator[Store]:
    async with await open_store(any_db_url) as opened:
        yield opened


async def test_replay_returns_every_pending_message_with_other_users_first(store: Store) -> None:
    for i in range(BACKLOG):
        await store.inbox_put("telegram", f"a{i}", {"text": f"flood {i}"}, "alice")
    await store.inbox_put("telegram", "b0", {"text": "a single question"}, "bob")
    pending = [item.message_id for item in await store.inbox_pending("telegram")]
    assert len(pending) == BACKLOG + 1
    # Bob's one message comes right after Alice's oldest, not after her whole backlog.
    assert pending[:3] == ["a0", "b0", "a1"]
    assert pending[2:] == [f"a{i}" for i in range(1, BACKLOG)]  # oldest first within a user
    assert len(await store.inbox_pending("telegram", limit=10)) == 10


async def test_replay_interleaves_users_round_robin_oldest_first(store: Store) -> None:
    for message_id, user in [
        ("1", "alice"),
        ("2", "alice"),
        ("3", "alice"),
        ("4", "bob"),
        ("5", "carol"),
        ("6", "carol"),
    ]:
        await store.inbox_put("telegram", message_id, {"text": message_id}, user)
    await store.inbox_put("discord", "7", {"text": "elsewhere"}, "bob")
    await store.inbox_done("telegram", "2")
    pending = [i.message_id for i in await store.inbox_pending("telegram")]
    assert pending == ["1", "4", "5", "3", "6"]
    everywhere = [i.message_id for i in await store.inbox_pending()]
    assert everywhere == ["1", "4", "5", "3", "6", "7"]  # "7" is bob's second


async def test_a_message_stuck_before_since_does_not_count_as_earlier(store: Store) -> None:
    await store.inbox_put("telegram", "stuck", {"text": "never answered"}, "alice")
    [stuck] = await store.inbox_pending("telegram")
    await wait_until(lambda: time.time() > stuck.received_at)
    await store.inbox_put("telegram", "live", {"text": "in a worker's hands"}, "alice")
    await store.inbox_put("telegram", "new", {"text": "the next message"}, "alice")
    live = next(i for i in await store.inbox_pending("telegram") if i.message_id == "live")
    since = live.received_at
    assert await store.inbox_earlier_pending("telegram", "live", "alice")  # no bound: it counts
    assert not await store.inbox_earlier_pending("telegram", "live", "alice", since=since)
    # A message younger than the bound still goes first.
    assert await store.inbox_earlier_pending("telegram", "new", "alice", since=since)
    await store.inbox_done("telegram", "live")
    assert not await store.inbox_earlier_pending("telegram", "new", "alice", since=since)
