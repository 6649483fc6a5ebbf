"""Contract: /link joins whole users, /unlink detaches one identity, notices wait for an
identity, audit entries can be counted (every backend)."""

from __future__ import annotations

import time

from storage import Event, EventActions, Store
from tests.storage.conftest import Backend

APP = "app"


def ev(author: str, text: str, delta: dict | None = None) -> Event:
    return Event(author=author, content={"text": text}, actions=EventActions(delta or {}))


async def linked_pair(store: Store, platform_ids: tuple[str, str], secret: str) -> str:
    """A user on Telegram and Discord (linked), with a preference and a session each."""
    tg, dc = platform_ids
    user = await store.resolve_user("telegram", tg, f"tg-{tg}")
    other = await store.resolve_user("discord", dc, f"dc-{dc}")
    session = await store.create_session(APP, other, f"discord:{dc}")
    await store.append_event(session, ev("user", f"my secret is {secret}", {"user:name": secret}))
    assert await store.redeem_link_code(await store.create_link_code(user), "discord", dc) == user
    return user


async def test_redeeming_moves_every_identity_of_the_absorbed_user(
    backend: Backend, store: Store
) -> None:
    absorbed = await linked_pair(store, ("1", "9"), "blue-banana")
    target = await store.resolve_user("telegram", "2", "tg-2")
    code = await store.create_link_code(target)
    assert await store.redeem_link_code(code, "discord", "9") == target
    # Telegram 1 went along with Discord 9: nothing is left on an emptied user.
    assert await store.find_user("telegram", "1") == target
    assert await store.identities(absorbed) == []
    assert {(i.platform, i.platform_user_id) for i in await store.identities(target)} == {
        ("telegram", "1"),
        ("telegram", "2"),
        ("discord", "9"),
    }
    # So erasing the account from any identity reaches everything.
    await store.delete_user(APP, await store.find_user("telegram", "1") or "")
    rows = "\n".join(repr(row) for row in await backend.dump_rows())
    for trace in (absorbed, target, "blue-banana", "tg-1", "dc-9"):
        assert trace not in rows, f"{trace!r} survived"


async def test_peek_leaves_the_code_valid(store: Store) -> None:
    owner = await store.resolve_user("telegram", "1")
    code = await store.create_link_code(owner)
    assert await store.peek_link_code(code.lower()) == owner
    assert await store.peek_link_code(code) == owner  # not used up by looking
    assert await store.peek_link_code("NOPE2345") is None
    expired = await store.create_link_code(owner, ttl_seconds=-1)
    assert await store.peek_link_code(expired) is None
    assert await store.redeem_link_code(code, "discord", "9") == owner


async def test_notices_wait_for_every_other_identity(store: Store) -> None:
    target = await linked_pair(store, ("1", "9"), "x")
    await store.resolve_user("telegram", "2")
    code = await store.create_link_code(target)
    assert (
        await store.redeem_link_code(code, "telegram", "2", notice="joined: Telegram 2") == target
    )
    assert [n.text for n in await store.notices("telegram", "1")] == ["joined: Telegram 2"]
    assert [n.text for n in await store.notices("discord", "9")] == ["joined: Telegram 2"]
    assert await store.notices("telegram", "2") == []  # the redeeming chat is told directly
    (shown,) = await store.notices("telegram", "1")
    await store.drop_notices("telegram", "1", shown.id)
    assert await store.notices("telegram", "1") == []
    # Erasing the account takes its notices too.
    exported = await store.export_user(APP, target)
    assert [n["platform_user_id"] for n in exported["notices"]] == ["9"]
    await store.delete_user(APP, target)
    assert await store.notices("discord", "9") == []


async def test_detach_keeps_a_copy_of_the_preferences_not_the_history(store: Store) -> None:
    user = await linked_pair(store, ("1", "9"), "blue-banana")
    prefs = {"user:name": "Ann", "user:stock_watchlist": ["AAPL"], "user:gone": None}
    alone = await store.detach_identity(APP, "discord", "9", prefs, notice="detached")
    assert alone is not None and alone != user
    assert await store.find_user("discord", "9") == alone
    assert await store.find_user("telegram", "1") == user
    assert await store.list_sessions(APP, alone) == []  # the history stayed
    assert {s.session_id for s in await store.list_sessions(APP, user)} == {"discord:9"}
    fresh = await store.create_session(APP, alone, "discord:9")
    assert {k: v for k, v in fresh.state.items() if k.startswith("user:")} == {
        "user:name": "Ann",
        "user:stock_watchlist": ["AAPL"],
    }
    assert [n.text for n in await store.notices("discord", "9")] == ["detached"]
    # The last identity of a user, or an unknown one, cannot be detached.
    assert await store.detach_identity(APP, "telegram", "1", {}) is None
    assert await store.detach_identity(APP, "telegram", "404", {}) is None


async def test_audit_entries_are_counted_by_actor_command_and_time(store: Store) -> None:
    start = time.time()
    for _ in range(3):
        await store.audit("telegram:7", "/link failed")
    await store.audit("telegram:8", "/link failed")
    await store.audit("telegram:7", "/link")
    assert await store.audit_count("telegram:7", "/link failed", start - 1) == 3
    assert await store.audit_count("telegram:8", "/link failed", start - 1) == 1
    assert await store.audit_count("telegram:7", "/link failed", time.time() + 60) == 0
