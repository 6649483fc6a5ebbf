"""Contract: paged admin views derived from events and session rows (every backend)."""

from __future__ import annotations

import time

import pytest

from storage import Event, EventActions, EventNotFound, Store, TokenUsage

APP = "app"


def ev(author: str, text: str, **kw: object) -> Event:
    return Event(author=author, content={"text": text}, **kw)


async def test_history_pages_backwards_newest_last(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    for i in range(25):
        await store.append_event(s, ev("user" if i % 2 == 0 else "manager", f"m{i}"))
    page = await store.history(APP, "u1", "s1", limit=10)
    assert [e.text for e in page] == [f"m{i}" for i in range(15, 25)]
    page2 = await store.history(APP, "u1", "s1", before=page[0].id, limit=10)
    assert [e.text for e in page2] == [f"m{i}" for i in range(5, 15)]
    page3 = await store.history(APP, "u1", "s1", before=page2[0].id, limit=10)
    assert [e.text for e in page3] == [f"m{i}" for i in range(5)]
    assert await store.history(APP, "u1", "s1", before=page3[0].id, limit=10) == []


async def test_history_of_all_a_users_sessions_in_append_order(store: Store) -> None:
    a = await store.create_session(APP, "u1", "a")
    b = await store.create_session(APP, "u1", "b")
    other = await store.create_session(APP, "u2", "a")
    for i in range(6):
        await store.append_event(a if i % 2 == 0 else b, ev("user", f"m{i}"))
        await store.append_event(other, ev("user", f"not-u1-{i}"))
    everything = await store.history(APP, "u1")
    assert [e.text for e in everything] == [f"m{i}" for i in range(6)]
    newest = await store.history(APP, "u1", limit=4)
    assert [e.text for e in newest] == ["m2", "m3", "m4", "m5"]
    older = await store.history(APP, "u1", before=newest[0].id, limit=4)
    assert [e.text for e in older] == ["m0", "m1"]
    assert [e.text for e in await store.history(APP, "u1", "b")] == ["m1", "m3", "m5"]


async def test_history_of_unknown_things_is_empty(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    await store.append_event(s, ev("user", "hello"))
    assert await store.history(APP, "nobody") == []
    assert await store.history(APP, "u1", "no-such-session") == []


async def test_a_page_before_an_unknown_event_is_an_error_not_an_empty_page(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    await store.append_event(s, ev("user", "hello"))
    await store.create_session(APP, "u2", "s2")
    only = (await store.history(APP, "u1"))[0]
    assert await store.history(APP, "u1", before=only.id) == []  # nothing older: empty
    for user, session in (("u1", "other"), ("u2", None), ("nobody", None)):
        with pytest.raises(EventNotFound):  # not an event of these sessions
            await store.history(APP, user, session, before=only.id)
    with pytest.raises(EventNotFound):
        await store.history(APP, "u1", before="no-such-event")


async def test_list_sessions_by_last_activity_with_counts(store: Store) -> None:
    s1 = await store.create_session(APP, "u1", "s1")
    await store.create_session(APP, "u1", "s2")
    await store.create_session(APP, "u2", "s3")
    later = time.time() + 100  # explicit: ordering must not hang on clock resolution
    await store.append_event(s1, ev("user", "q", timestamp=later))
    await store.append_event(s1, ev("manager", "a", timestamp=later + 1))
    rows = await store.list_sessions(APP)
    assert rows[0].session_id == "s1"
    assert {r.session_id for r in rows} == {"s1", "s2", "s3"}
    first = rows[0]
    assert (first.user_id, first.turns, first.events) == ("u1", 1, 2)
    assert first.updated_at >= first.created_at
    mine = await store.list_sessions(APP, "u1")
    assert mine[0].session_id == "s1" and len(mine) == 2
    paged = await store.list_sessions(APP, limit=2) + await store.list_sessions(
        APP, limit=2, offset=2
    )
    assert [r.session_id for r in paged] == [r.session_id for r in rows]
    assert await store.list_sessions("other-app") == []


async def test_stats_for_the_app_and_for_one_user(store: Store) -> None:
    s1 = await store.create_session(APP, "u1", "s1")
    s2 = await store.create_session(APP, "u2", "s2")
    await store.append_event(s1, ev("user", "joke please"))
    await store.append_event(
        s1,
        ev(
            "manager",
            "",
            actions=EventActions(transfer_to_agent="funny_nerd"),
            usage=TokenUsage(10, 2),
        ),
    )
    await store.append_event(s1, ev("funny_nerd", "a joke", usage=TokenUsage(20, 8)))
    await store.append_event(s2, ev("user", "AAPL?"))
    await store.append_event(
        s2, ev("manager", "", actions=EventActions(transfer_to_agent="stock_analyst"))
    )
    await store.append_event(
        s2, ev("manager", "", actions=EventActions(transfer_to_agent="stock_analyst"))
    )
    total = await store.stats(APP)
    assert (total.users, total.sessions, total.turns, total.events) == (2, 2, 2, 6)
    assert dict(total.delegations) == {"funny_nerd": 1, "stock_analyst": 2}
    assert (total.prompt_tokens, total.completion_tokens) == (30, 10)
    one = await store.stats(APP, "u1")
    assert (one.users, one.sessions, one.turns, one.events) == (1, 1, 1, 3)
    assert dict(one.delegations) == {"funny_nerd": 1}
    assert (one.prompt_tokens, one.completion_tokens) == (30, 10)
    nobody = await store.stats(APP, "nobody")
    assert (nobody.users, nobody.sessions, nobody.turns, nobody.events) == (0, 0, 0, 0)
    assert dict(nobody.delegations) == {} and nobody.prompt_tokens == 0
    empty = await store.stats("other-app")
    assert (empty.users, empty.events) == (0, 0)


async def test_turns_per_day_counts_user_events_by_utc_day(store: Store) -> None:
    day = 20_000  # a UTC day number (epoch seconds // 86400)
    mine = await store.create_session(APP, "u1", "s1")
    elsewhere = await store.create_session("other-app", "u1", "s1")
    for offset, author in [(0.5, "user"), (0.6, "manager"), (1.2, "user"), (1.9, "user")]:
        await store.append_event(mine, ev(author, "hi", timestamp=(day + offset) * 86_400))
    await store.append_event(elsewhere, ev("user", "hi", timestamp=(day + 1.5) * 86_400))
    assert await store.turns_per_day(APP, since=day * 86_400) == [(day, 1), (day + 1, 2)]
    assert await store.turns_per_day(APP, since=(day + 1) * 86_400) == [(day + 1, 2)]
    assert await store.turns_per_day("nobody", since=0) == []
