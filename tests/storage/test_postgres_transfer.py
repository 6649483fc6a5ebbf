"""storage.transfer.copy_store: an SQLite store copied into PostgreSQL, twice.

The proof is the stores' own views: after the copy both backends answer every admin view and
export identically; a second run adds nothing; a grown source adds just the new rows.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from storage import Event, EventActions, MemoryChange, Store, TokenUsage, open_store
from storage.transfer import TABLES, copy_store
from testkit.databases import audit_log, dump_postgres

pytestmark = pytest.mark.postgres
APP = "app"
OLD_APP = "Multi-Agent System"  # the app name in the version-1 fixture
FIXTURE_V1 = Path(__file__).resolve().parent.parent / "fixtures" / "sqlite_v1.sql"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.db'}"


def ev(author: str, content: dict[str, Any], **kw: Any) -> Event:
    return Event(author=author, content=content, **kw)


_bob_facts = (MemoryChange("add", "lives in Lisbon"), MemoryChange("add", "vegetarian"))


async def fill(store: Store) -> dict[str, str]:
    """Some of everything a store holds, sessions interleaved as real chats are."""
    ann = await store.resolve_user("telegram", "100", "Ann", "Ann_TG")
    bob = await store.resolve_user("discord", "200", "Bob")
    await store.resolve_user("discord", "101", None)  # an identity with no sessions yet
    a1 = await store.create_session(
        APP, ann, "telegram:100", {"user:name": "Ann", "app:motd": "hi"}
    )
    a2 = await store.create_session(APP, ann, "console", {"mood": "ok"})
    b1 = await store.create_session(APP, bob, "discord:200")
    turn = [
        (a1, ev("user", {"text": "tell me a joke\x00"}, invocation_id="i1")),
        (b1, ev("user", {"text": "AAPL?"}, invocation_id="i2")),
        (
            a1,
            ev(
                "manager",
                {"tool_calls": [{"id": "c1", "name": "transfer", "arguments": "{}"}]},
                invocation_id="i1",
                actions=EventActions(transfer_to_agent="funny_nerd"),
                usage=TokenUsage(10, 2),
            ),
        ),
        (
            b1,
            ev(
                "stock_analyst",
                {"tool_result": {"id": "c2", "name": "quote", "result": {"price": 1.5}}},
                invocation_id="i2",
                actions=EventActions(state_delta={"user:stock_watchlist": ["AAPL"], "temp:x": 1}),
            ),
        ),
        (
            a1,
            ev(
                "funny_nerd",
                {"text": "a joke"},
                invocation_id="i1",
                actions=EventActions(state_delta={"user:joke_topics": ["python"], "n": 1}),
                usage=TokenUsage(20, 7),
                final=True,
            ),
        ),
        (b1, ev("stock_analyst", {"text": "no quote"}, invocation_id="i2", final=True, error="x")),
        (a2, ev("user", {"text": "hello"}, actions=EventActions(state_delta={"app:motd": None}))),
        (
            a1,
            ev(
                "manager",
                {"tool_result": {"id": "c3", "name": "remember", "result": "ok"}},
                invocation_id="i3",
                actions=EventActions(
                    memory_changes=(MemoryChange("add", "has a cat called Pixel\x00"),)
                ),
            ),
        ),
        (b1, ev("manager", {"text": "ok"}, actions=EventActions(memory_changes=_bob_facts))),
    ]
    for session, event in turn:
        assert await store.append_event(session, event)
    code = await store.create_link_code(bob)
    # A second identity joins Ann: a notice waits for her Telegram identity.
    joined = await store.redeem_link_code(
        await store.create_link_code(ann), "discord", "102", notice="a new account was linked"
    )
    assert joined == ann
    await store.inbox_put("telegram", "u1", {"update_id": 1, "text": "tell me a joke"}, ann)
    await store.inbox_put("discord", "m2", {"id": "m2"}, bob)
    await store.inbox_done("telegram", "u1")
    await store.inbox_put("telegram", "u9", {"update_id": 9})  # before the user was known
    await store.audit("telegram:100", "/stats")
    await store.audit("telegram:100", "/history", f"user {bob}")
    return {"ann": ann, "bob": bob, "code": code}


async def views(store: Store, url: str, users: dict[str, str], app: str = APP) -> dict[str, Any]:
    """Everything the protocol can show (and the audit log as stored), for comparing two
    stores."""
    out: dict[str, Any] = {
        "stats": await store.stats(app),
        "sessions": await store.list_sessions(app),
        "identities": [await store.identities(users[name]) for name in ("ann", "bob")],
        "pending": await store.inbox_pending(),
        "audit": await audit_log(url),
        "audited": [await store.audit_count("telegram:100", c, 0) for c in ("/stats", "/history")],
        "found": [
            await store.find_user(p, u) for p, u in [("telegram", "100"), ("discord", "101")]
        ],
        "notices": await store.notices("telegram", "100"),
    }
    for name in ("ann", "bob"):
        user = users[name]
        export = await store.export_user(app, user)
        export.pop("exported_at")
        out[name] = {
            "export": export,
            "recall": await store.recall(app, user, "where does the cat live?"),
            "history": await store.history(app, user),
            "stats": await store.stats(app, user),
        }
    session = await store.get_session(app, users["ann"], "telegram:100", recent_events=2)
    out["session"] = session
    return out


async def test_a_copy_answers_every_view_like_the_source_and_a_second_run_adds_nothing(
    sqlite_url: str, postgres_db_url: str
) -> None:
    async with await open_store(sqlite_url) as sqlite:
        users = await fill(sqlite)
        expected = await views(sqlite, sqlite_url, users)
    assert expected["stats"].events == 9 and expected["session"] is not None
    assert len(expected["ann"]["export"]["memories"]) == 1 and expected["bob"]["recall"]

    calls: list[tuple[int, int]] = []
    report = await copy_store(
        sqlite_url, postgres_db_url, lambda done, total: calls.append((done, total))
    )
    assert set(report.source) == set(TABLES)
    assert report.source["events"] == 9 and report.source["sessions"] == 3
    assert report.source["memories"] == 3
    assert report.added == report.source and report.skipped == 0
    assert calls[0] == (0, report.rows) and calls[-1] == (report.rows, report.rows)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)

    async with await open_store(postgres_db_url) as pg:
        assert await views(pg, postgres_db_url, users) == expected
    rows_once = Counter(repr(row) for row in await dump_postgres(postgres_db_url))

    again = await copy_store(sqlite_url, postgres_db_url)
    assert again.source == report.source
    assert set(again.added.values()) == {0}
    assert Counter(repr(row) for row in await dump_postgres(postgres_db_url)) == rows_once

    async with await open_store(postgres_db_url) as pg:
        assert await views(pg, postgres_db_url, users) == expected
        # The copy is a working store: the link code redeems, the audit salt came along.
        assert await pg.redeem_link_code(users["code"], "telegram", "300") == users["bob"]
        await pg.audit("telegram:100", "/sessions")
        actors = {entry["actor"] for entry in await audit_log(postgres_db_url)}
        assert len(actors) == 1


async def test_a_grown_source_adds_only_its_new_rows_in_order(
    sqlite_url: str, postgres_db_url: str
) -> None:
    async with await open_store(sqlite_url) as sqlite:
        users = await fill(sqlite)
    await copy_store(sqlite_url, postgres_db_url)
    async with await open_store(sqlite_url) as sqlite:
        session = await sqlite.get_session(APP, users["ann"], "telegram:100")
        assert session is not None
        for text in ("later", "later still"):
            await sqlite.append_event(session, ev("user", {"text": text}))
        await sqlite.inbox_done("discord", "m2")
        expected = await views(sqlite, sqlite_url, users)
    report = await copy_store(sqlite_url, postgres_db_url)
    assert report.added["events"] == 2
    assert sum(report.added.values()) == 2
    async with await open_store(postgres_db_url) as pg:
        assert await views(pg, postgres_db_url, users) == expected
        history = await pg.history(APP, users["ann"], "telegram:100", limit=2)
        assert [e.text for e in history] == ["later", "later still"]
        # Appending on PostgreSQL continues the copied counters.
        session = await pg.get_session(APP, users["ann"], "telegram:100")
        assert session is not None
        await pg.append_event(session, ev("user", {"text": "on postgres"}))
        stats = await pg.stats(APP, users["ann"])
        assert stats.turns == expected["ann"]["stats"].turns + 1


async def test_bad_arguments_get_a_clear_error(sqlite_url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no SQLite database"):
        await copy_store(f"sqlite:///{tmp_path / 'missing.db'}", "postgresql://x@127.0.0.1/db")
    assert not (tmp_path / "missing.db").exists()  # not created by the attempt
    async with await open_store(sqlite_url):
        pass
    with pytest.raises(ValueError, match="postgresql://"):
        await copy_store(sqlite_url, f"sqlite:///{tmp_path / 'other.db'}")


async def test_an_old_version_1_sqlite_file_is_upgraded_then_copied(
    tmp_path: Path, postgres_db_url: str
) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as db:
        db.executescript(FIXTURE_V1.read_text())
    report = await copy_store(f"sqlite:///{path}", postgres_db_url)
    assert report.added["events"] == report.source["events"] > 0
    users = {"ann": "a1b2c3d4e5f6", "bob": "0f0f0f0f0f0f"}
    async with await open_store(f"sqlite:///{path}") as sqlite:
        expected = await views(sqlite, f"sqlite:///{path}", users, OLD_APP)
    assert (expected["stats"].turns, expected["stats"].events) == (3, 7)  # not a vacuous match
    async with await open_store(postgres_db_url) as pg:
        assert await views(pg, postgres_db_url, users, OLD_APP) == expected
        stats = await pg.stats(OLD_APP)
        assert dict(stats.delegations) == {"funny_nerd": 1, "stock_analyst": 1}
