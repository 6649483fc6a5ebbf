"""Contract: export/delete, identities and /link codes, inbox, audit log (every backend)."""

from __future__ import annotations

import asyncio
import json
import re

from storage import Event, EventActions, InboxStatus, Store
from testkit.databases import audit_log
from tests.storage.conftest import Backend

APP = "app"


def ev(author: str, text: str, delta: dict | None = None) -> Event:
    return Event(author=author, content={"text": text}, actions=EventActions(delta or {}))


async def _populate(store: Store, platform_id: str, name: str, secret: str) -> str:
    """A user with everything the store can hold about someone; returns the user id."""
    uid = await store.resolve_user("telegram", platform_id, name)
    s = await store.create_session(APP, uid, f"chat-{platform_id}", {"mood": "ok"})
    await store.append_event(s, ev("user", f"my secret is {secret}", {"user:name": name}))
    await store.append_event(s, ev("manager", "noted", {"user:stock_watchlist": ["AAPL"]}))
    await store.create_link_code(uid)
    await store.inbox_put("telegram", f"msg-{platform_id}", {"text": secret}, uid)
    await store.audit("telegram:1", "/user", f"looked at {uid}")
    return uid


async def test_export_is_json_and_holds_everything_about_the_user(store: Store) -> None:
    uid = await _populate(store, "555", "Zed", "blue-banana")
    other = await _populate(store, "666", "Yan", "red-cherry")
    exported = await store.export_user(APP, uid)
    text = json.dumps(exported)  # JSON-serialisable as is
    assert "blue-banana" in text and "Zed" in text and "555" in text
    assert other not in text and "red-cherry" not in text and "Yan" not in text
    assert exported["user_id"] == uid
    assert exported["user_state"] == {"user:name": "Zed", "user:stock_watchlist": ["AAPL"]}
    assert [(i["platform"], i["platform_user_id"]) for i in exported["identities"]] == [
        ("telegram", "555")
    ]
    (session,) = exported["sessions"]
    assert session["session_id"] == "chat-555" and session["state"] == {"mood": "ok"}
    assert [e["content"]["text"] for e in session["events"]] == [
        "my secret is blue-banana",
        "noted",
    ]


async def test_delete_user_leaves_no_row_about_them(backend: Backend, store: Store) -> None:
    uid = await _populate(store, "555", "Zed", "blue-banana")
    other = await _populate(store, "666", "Yan", "red-cherry")
    await store.delete_user(APP, uid)
    rows = "\n".join(repr(row) for row in await backend.dump_rows())
    for trace in (uid, "blue-banana", "Zed", "chat-555", "msg-555"):
        assert trace not in rows, f"{trace!r} survived delete_user"
    for trace in (other, "red-cherry", "Yan"):
        assert trace in rows, f"{trace!r} of another user was deleted"
    assert await store.get_session(APP, uid, "chat-555") is None
    assert await store.find_user("telegram", "555") is None
    assert await store.history(APP, uid) == []
    assert (await store.stats(APP)).users == 1
    assert (await store.export_user(APP, uid))["sessions"] == []
    # The person can come back: a new, empty user.
    again = await store.resolve_user("telegram", "555")
    assert again != uid


async def test_resolve_user_creates_once_and_finds_again(store: Store) -> None:
    assert await store.find_user("telegram", "42") is None
    ids = await asyncio.gather(*(store.resolve_user("telegram", "42", "Ann") for _ in range(10)))
    assert len(set(ids)) == 1 and re.fullmatch(r"[0-9a-f]{12}", ids[0])
    assert await store.find_user("telegram", "42") == ids[0]
    assert await store.resolve_user("discord", "42") != ids[0]  # platforms are separate


async def test_link_code_joins_a_second_identity(store: Store) -> None:
    main = await store.resolve_user("telegram", "1", "Ann")
    side = await store.resolve_user("discord", "9", "ann#9")
    s_main = await store.create_session(APP, main, "tg-chat")
    s_side = await store.create_session(APP, side, "dc-dm")
    await store.append_event(s_main, ev("manager", "x", {"user:name": "Ann"}))
    await store.append_event(
        s_side, ev("manager", "y", {"user:name": "Annie", "user:joke_topics": ["cats"]})
    )
    code = await store.create_link_code(main)
    assert 4 <= len(code) <= 12 and code.isalnum()
    assert await store.redeem_link_code(code.lower(), "discord", "9") == main  # typed by hand
    assert await store.find_user("discord", "9") == main
    moved = await store.get_session(APP, main, "dc-dm")
    assert moved is not None and [e.text for e in moved.events] == ["y"]
    # The target's own values win; the old user's fill the gaps.
    assert moved.state["user:name"] == "Ann" and moved.state["user:joke_topics"] == ["cats"]
    assert {r.session_id for r in await store.list_sessions(APP, main)} == {"tg-chat", "dc-dm"}
    assert await store.list_sessions(APP, side) == []
    assert await store.redeem_link_code(code, "discord", "77") is None  # one-time


async def test_unknown_and_expired_link_codes_are_refused(store: Store) -> None:
    uid = await store.resolve_user("telegram", "1")
    assert await store.redeem_link_code("NOPE1234", "discord", "9") is None
    expired = await store.create_link_code(uid, ttl_seconds=-1)
    assert await store.redeem_link_code(expired, "discord", "9") is None
    assert await store.find_user("discord", "9") is None
    first, second = await store.create_link_code(uid), await store.create_link_code(uid)
    assert first != second


async def test_inbox_records_once_and_tracks_answers(store: Store) -> None:
    assert await store.inbox_put("telegram", "10", {"text": "a"}, "u1") is InboxStatus.NEW
    assert await store.inbox_put("telegram", "11", {"text": "b"}, "u1") is InboxStatus.NEW
    assert await store.inbox_put("discord", "10", {"text": "c"}) is InboxStatus.NEW
    assert await store.inbox_put("telegram", "10", {"text": "a"}, "u1") is InboxStatus.PENDING
    pending = await store.inbox_pending()
    # Round-robin over users: u1's second message after the other group's first.
    assert [(i.platform, i.message_id) for i in pending] == [
        ("telegram", "10"),
        ("discord", "10"),
        ("telegram", "11"),
    ]
    assert dict(pending[0].payload) == {"text": "a"} and not pending[0].done
    await store.inbox_done("telegram", "10")
    assert await store.inbox_put("telegram", "10", {"text": "a"}) is InboxStatus.DONE
    assert [i.message_id for i in await store.inbox_pending("telegram")] == ["11"]
    assert len(await store.inbox_pending(limit=1)) == 1
    await store.inbox_done("telegram", "never-seen")  # harmless


async def test_inbox_status_reads_without_recording(store: Store) -> None:
    assert await store.inbox_status("telegram", "20") is None  # never recorded: not recorded now
    assert await store.inbox_put("telegram", "20", {"text": "a"}, "u1") is InboxStatus.NEW
    assert await store.inbox_status("telegram", "20") is InboxStatus.PENDING
    assert await store.inbox_status("discord", "20") is None  # ids are per platform
    await store.inbox_done("telegram", "20")
    assert await store.inbox_status("telegram", "20") is InboxStatus.DONE
    assert [i.message_id for i in await store.inbox_pending()] == []


async def test_audit_log_hashes_the_actor(backend: Backend, store: Store) -> None:
    await store.audit("telegram:123456", "/stats")
    await store.audit("telegram:123456", "/history", "u1 20")
    await store.audit("discord:987654", "/forget", "u2")
    entries = await audit_log(backend.url)
    assert [e["command"] for e in entries] == ["/forget", "/history", "/stats"]
    assert entries[1]["detail"] == "u1 20"
    assert entries[1]["actor"] == entries[2]["actor"] != entries[0]["actor"]
    rows = "\n".join(repr(row) for row in await backend.dump_rows())
    assert "123456" not in rows and "987654" not in rows
    assert await store.audit_count("telegram:123456", "/history", 0) == 1
