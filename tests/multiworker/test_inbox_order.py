"""Store contract of `inbox_earlier_pending` on both backends: what a worker asks, under the
session lock, before answering a message that may have overtaken an older one of the same user
(recorded by another worker, not yet answered)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage import Store, open_store


@pytest.fixture
async def store(any_db_url: str) -> AsyncIterator[Store]:
    async with await open_store(any_db_url) as opened:
        yield opened


async def test_an_older_unanswered_message_of_the_same_user_is_seen(store: Store) -> None:
    for message_id in ("1", "2", "3"):
        await store.inbox_put("telegram", message_id, {"text": message_id}, "alice")
    await store.inbox_put("telegram", "4", {"text": "other user"}, "bob")
    assert not await store.inbox_earlier_pending("telegram", "1", "alice")  # the oldest
    assert await store.inbox_earlier_pending("telegram", "3", "alice")
    await store.inbox_done("telegram", "1")
    assert await store.inbox_earlier_pending("telegram", "3", "alice")  # "2" still waits
    await store.inbox_done("telegram", "2")
    assert not await store.inbox_earlier_pending("telegram", "3", "alice")
    # Other users, other platforms and unknown messages never wait.
    assert not await store.inbox_earlier_pending("telegram", "4", "bob")
    await store.inbox_put("discord", "5", {"text": "elsewhere"}, "alice")
    await store.inbox_put("telegram", "6", {"text": "later"}, "alice")
    assert not await store.inbox_earlier_pending("discord", "5", "alice")
    assert not await store.inbox_earlier_pending("telegram", "404", "alice")


async def test_unaddressed_rows_without_a_user_never_hold_anyone_up(store: Store) -> None:
    await store.inbox_put("telegram", "10", {"text": "group chatter"})
    await store.inbox_put("telegram", "11", {"text": "hi"}, "alice")
    assert not await store.inbox_earlier_pending("telegram", "11", "alice")
