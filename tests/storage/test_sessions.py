"""Contract: sessions, scoped state and events (run against every backend)."""

from __future__ import annotations

import asyncio

import pytest

from storage import Event, EventActions, Session, SessionNotFound, Store, TokenUsage
from testkit.helpers import wait_until
from tests.storage.conftest import Backend

APP = "app"


def ev(author: str, text: str, delta: dict | None = None, **kw: object) -> Event:
    return Event(author=author, content={"text": text}, actions=EventActions(delta or {}), **kw)


async def test_create_then_get(store: Store) -> None:
    created = await store.create_session(
        APP, "u1", "s1", {"k": 1, "user:name": "Ann", "app:motd": "hi", "temp:x": 9}
    )
    assert created.session_id == "s1"
    assert dict(created.state) == {"k": 1, "user:name": "Ann", "app:motd": "hi"}
    got = await store.get_session(APP, "u1", "s1")
    assert got is not None
    assert dict(got.state) == {"k": 1, "user:name": "Ann", "app:motd": "hi"}
    assert got.events == ()
    assert got.created_at > 0 and got.updated_at >= got.created_at
    assert await store.get_session(APP, "u1", "nope") is None
    assert await store.get_session(APP, "someone-else", "s1") is None
    assert await store.get_session("other-app", "u1", "s1") is None


async def test_create_generates_an_id_and_is_idempotent(store: Store) -> None:
    fresh = await store.create_session(APP, "u1")
    assert fresh.session_id
    await store.append_event(fresh, ev("user", "hello"))
    again = await store.create_session(APP, "u1", fresh.session_id, {"k": "ignored"})
    assert "k" not in again.state
    got = await store.get_session(APP, "u1", fresh.session_id)
    assert got is not None and [e.text for e in got.events] == ["hello"]


async def test_concurrent_creates_of_one_id_make_one_session(store: Store) -> None:
    made = await asyncio.gather(
        *(store.create_session(APP, "u1", "s1", {"k": k}) for k in range(10))
    )
    assert {m.session_id for m in made} == {"s1"}
    assert len({m.state["k"] for m in made}) == 1  # the first one's state, seen by all
    assert len(await store.list_sessions(APP, "u1")) == 1


async def test_user_scope_is_shared_by_one_users_sessions(store: Store) -> None:
    a = await store.create_session(APP, "u1", "a")
    await store.create_session(APP, "u1", "b")
    await store.create_session(APP, "u2", "c")
    await store.append_event(a, ev("manager", "noted", {"user:name": "Ann", "local": 1}))
    b = await store.get_session(APP, "u1", "b")
    c = await store.get_session(APP, "u2", "c")
    assert b is not None and c is not None
    assert b.state.get("user:name") == "Ann"
    assert "local" not in b.state  # no prefix: this session only
    assert "user:name" not in c.state
    other_app = await store.create_session("other-app", "u1", "a")
    assert "user:name" not in other_app.state


async def test_app_scope_is_seen_by_everyone(store: Store) -> None:
    a = await store.create_session(APP, "u1", "a")
    await store.create_session(APP, "u2", "b")
    await store.append_event(a, ev("manager", "x", {"app:greeting": "hello all"}))
    b = await store.get_session(APP, "u2", "b")
    later = await store.create_session(APP, "u3", "c")
    assert b is not None and b.state["app:greeting"] == "hello all"
    assert later.state["app:greeting"] == "hello all"


async def test_temp_keys_are_never_persisted(backend: Backend, store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1", {"temp:a": 1})
    await store.append_event(s, ev("manager", "x", {"temp:scratch": [1, 2], "kept": True}))
    got = await store.get_session(APP, "u1", "s1")
    assert got is not None
    assert dict(got.state) == {"kept": True}
    assert dict(got.events[0].actions.state_delta) == {"kept": True}
    assert not any("temp:" in repr(row) for row in await backend.dump_rows())


async def test_none_deletes_a_key_in_every_scope(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1", {"k": 1, "user:u": 2, "app:a": 3})
    await store.append_event(s, ev("manager", "x", {"k": None, "user:u": None, "app:a": None}))
    got = await store.get_session(APP, "u1", "s1")
    assert got is not None and dict(got.state) == {}


async def test_values_round_trip_as_json(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    value = {"list": [1, 2.5, "three", None, True], "nested": {"ü": "ñ"}, "empty": {}}
    await store.append_event(s, ev("manager", "x", {"user:prefs": value, "n": 0, "s": ""}))
    got = await store.get_session(APP, "u1", "s1")
    assert got is not None
    assert got.state["user:prefs"] == value and got.state["n"] == 0 and got.state["s"] == ""


async def test_event_fields_round_trip(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    event = Event(
        author="stock_analyst",
        content={"tool_calls": [{"id": "c1", "name": "get_quote", "arguments": '{"t": "AAPL"}'}]},
        invocation_id="inv-1",
        id="e-1",
        timestamp=1_700_000_000.25,
        actions=EventActions({"user:last": "AAPL"}, transfer_to_agent="stock_analyst"),
        usage=TokenUsage(prompt_tokens=11, completion_tokens=7),
        final=True,
        error="model_timeout",
    )
    assert await store.append_event(s, event) is True
    got = await store.get_session(APP, "u1", "s1")
    assert got is not None and got.events == (event,)


async def test_failing_append_leaves_neither_event_nor_delta(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1", {"k": "before"})
    bad = ev("manager", "x", {"k": "after", "user:z": 1, "broken": object()})
    with pytest.raises((TypeError, ValueError)):
        await store.append_event(s, bad)
    got = await store.get_session(APP, "u1", "s1")
    assert got is not None
    assert got.events == () and dict(got.state) == {"k": "before"}
    assert (await store.stats(APP)).events == 0


async def test_partial_events_are_refused(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    with pytest.raises(ValueError):
        await store.append_event(s, Event(author="m", content={"text": "de"}, partial=True))
    got = await store.get_session(APP, "u1", "s1")
    assert got is not None and got.events == ()


async def test_append_to_a_missing_session_raises(store: Store) -> None:
    s = Session(APP, "u1", "never-created")
    with pytest.raises(SessionNotFound):
        await store.append_event(s, ev("user", "hello?"))


async def test_append_is_idempotent_by_event_id(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    first = ev("user", "once", {"user:count": 1}, id="inv-9:u")
    assert await store.append_event(s, first) is True
    replay = ev("user", "twice", {"user:count": 2}, id="inv-9:u")
    assert await store.append_event(s, replay) is False
    got = await store.get_session(APP, "u1", "s1")
    assert got is not None
    assert [e.text for e in got.events] == ["once"] and got.state["user:count"] == 1
    stats = await store.stats(APP)
    assert (stats.turns, stats.events) == (1, 1)


async def test_recent_events_are_the_last_n_in_order(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")
    for i in range(30):
        await store.append_event(s, ev("user" if i % 2 == 0 else "manager", f"m{i}"))
    got = await store.get_session(APP, "u1", "s1", recent_events=20)
    assert got is not None and [e.text for e in got.events] == [f"m{i}" for i in range(10, 30)]
    none = await store.get_session(APP, "u1", "s1", recent_events=0)
    assert none is not None and none.events == ()
    default = await store.get_session(APP, "u1", "s1")
    assert default is not None and len(default.events) == 20


async def test_reopen_after_close_keeps_everything(backend: Backend) -> None:
    store = await backend.open()
    s = await store.create_session(APP, "u1", "s1", {"k": 1})
    await store.append_event(s, ev("user", "remember me", {"user:name": "Ann", "app:v": 2}))
    uid = await store.resolve_user("telegram", "42", "Ann")
    await store.inbox_put("telegram", "m1", {"text": "hi"}, uid)
    await store.audit("telegram:1", "/stats")
    await store.close()
    await store.close()  # closing twice is harmless

    reopened = await backend.open()
    try:
        got = await reopened.get_session(APP, "u1", "s1")
        assert got is not None
        assert dict(got.state) == {"k": 1, "user:name": "Ann", "app:v": 2}
        assert [e.text for e in got.events] == ["remember me"]
        assert await reopened.find_user("telegram", "42") == uid
        assert [i.message_id for i in await reopened.inbox_pending()] == ["m1"]
        assert await reopened.audit_count("telegram:1", "/stats", 0) == 1
    finally:
        await reopened.close()


async def test_50_appenders_to_50_sessions_lose_nothing(store: Store) -> None:
    sessions = [await store.create_session(APP, f"u{k}", f"s{k}") for k in range(50)]

    async def appender(k: int) -> None:
        for i in range(20):
            await store.append_event(sessions[k], ev("user", f"{k}:{i}", {"user:n": i}))

    await asyncio.gather(*(appender(k) for k in range(50)))
    for k, s in enumerate(sessions):
        got = await store.get_session(APP, s.user_id, s.session_id, recent_events=100)
        assert got is not None
        assert [e.text for e in got.events] == [f"{k}:{i}" for i in range(20)]
        assert got.state["user:n"] == 19
    assert (await store.stats(APP)).events == 1000


async def test_20_appenders_to_one_session_lose_nothing_and_keep_order(store: Store) -> None:
    s = await store.create_session(APP, "u1", "s1")

    async def appender(k: int) -> None:
        for i in range(10):
            await store.append_event(s, ev("user", f"{k}:{i}", {f"last{k}": i}))

    await asyncio.gather(*(appender(k) for k in range(20)))
    got = await store.get_session(APP, "u1", "s1", recent_events=1000)
    assert got is not None and len(got.events) == 200
    for k in range(20):
        mine = [e.text for e in got.events if e.text.startswith(f"{k}:")]
        assert mine == [f"{k}:{i}" for i in range(10)]
        assert got.state[f"last{k}"] == 9
    assert [e.text for e in await store.history(APP, "u1", "s1", limit=200)] == [
        e.text for e in got.events
    ]


async def test_session_lock_serialises_one_session_only(store: Store) -> None:
    trying, entered = asyncio.Event(), asyncio.Event()

    async def second_writer() -> None:
        trying.set()  # the lock attempt follows in this same step
        async with store.session_lock(APP, "u1", "s1"):
            entered.set()

    async with store.session_lock(APP, "u1", "s1"):
        task = asyncio.create_task(second_writer())
        async with asyncio.timeout(10):  # another session's lock is free meanwhile
            async with store.session_lock(APP, "u1", "s2"):
                pass
        await wait_until(trying.is_set)
        assert not entered.is_set()
    await wait_until(entered.is_set)
    await task
