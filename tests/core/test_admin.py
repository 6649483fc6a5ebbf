"""Admin commands: allowed for ADMIN_IDS (audited, private), refused with no data for others."""

from __future__ import annotations

from agents.charts import HEIGHT_PX, WIDTH_PX
from bot.admin_commands import MEMORIES_SHOWN, REFUSAL, digest
from storage import Event, EventActions, MemoryChange
from testkit.databases import audit_log
from testkit.helpers import png_size

from .conftest import ADMIN, incoming, replies, say


async def seed(app) -> str:
    await say(app, "My name is Ada", user="42")
    await say(app, "Tell me a joke about Python", user="42")
    await say(app, "/watchlist add AAPL", user="42")
    user_id = await app.store.find_user("telegram", "42")
    assert user_id is not None
    return user_id


async def admin_says(app, text: str) -> str:
    got = await replies(app, incoming(text, user=ADMIN[1], platform=ADMIN[0], name="Root"))
    assert got and all(r.private for r in got)
    return "\n".join(r.text for r in got)


async def test_admin_commands_for_an_admin(app) -> None:
    user_id = await seed(app)
    history = await admin_says(app, "/history telegram:42 50")
    lines = history.splitlines()
    assert lines[0].startswith(f"History of {user_id}")
    assert any(" user: My name is Ada" in line for line in lines)
    assert any("funny_nerd" in line for line in lines)
    assert "UTC" in lines[1]
    # Newest last.
    assert lines.index(next(x for x in lines if "My name is Ada" in x)) < lines.index(
        next(x for x in lines if "joke about Python" in x)
    )
    # Paging: a small limit points at the older page, which continues where this one stopped.
    page1 = (await admin_says(app, f"/history {user_id} 2")).splitlines()
    assert page1[-1].startswith(f"Older: /history {user_id} 2 ")
    page2 = (await admin_says(app, page1[-1].removeprefix("Older: "))).splitlines()
    assert page2[1:3] != page1[1:3] and page2[0].startswith("History of")
    sessions = await admin_says(app, "/sessions")
    assert user_id in sessions and "turns" in sessions
    stats = await admin_says(app, "/stats")
    assert "Users: 1" in stats and "Turns: 2" in stats  # the admin has no session
    assert "funny_nerd" in stats
    profile = await admin_says(app, f"/user {user_id}")
    assert "name: Ada" in profile and "AAPL" in profile
    assert "No such user" in await admin_says(app, "/user telegram:nobody")
    assert (await admin_says(app, "/history telegram:42 lots")).startswith("Usage: /history")
    assert (await admin_says(app, "/user")).startswith("Usage: /user")
    assert "Erased" in await admin_says(app, "/forget telegram:42")
    assert await app.store.find_user("telegram", "42") is None
    entries = await audit_log(app.settings.database_url)
    commands = [e.get("command") for e in entries]
    assert "/history" in commands and "/forget" in commands
    # Actors are hashed by the store; targets are a digest of our random id, never "telegram:42".
    assert all("1000" not in str(e.get("actor")) for e in entries)
    details = " ".join(str(e.get("detail")) for e in entries)
    assert "telegram:42" not in details and user_id not in details
    assert f"user=#{digest(user_id)}" in details and "user=unknown" in details


async def test_admin_commands_refused_for_everyone_else_with_no_data(app) -> None:
    user_id = await seed(app)
    for text in ("/history", f"/history {user_id}", "/sessions", "/stats", f"/user {user_id}"):
        got = await replies(app, incoming(text, user="42"))
        assert [(r.text, r.private, r.file) for r in got] == [(REFUSAL, True, None)], text
    got = await replies(app, incoming("/forget telegram:42", user="99", platform="discord"))
    assert [r.text for r in got] == [REFUSAL]
    assert await app.store.find_user("telegram", "42") == user_id  # nothing erased
    # Same ids on another platform are not the admin either.
    got = await replies(app, incoming("/stats", user=ADMIN[1], platform="discord"))
    assert [r.text for r in got] == [REFUSAL]
    # In a group: a plain refusal in the chat (no DM); a Discord interaction: ephemeral.
    got = await replies(app, incoming("/stats", user="42", group=True))
    assert [(r.text, r.private) for r in got] == [(REFUSAL, False)]
    got = await replies(app, incoming("/stats", user="42", group=True, extra={"ephemeral": True}))
    assert [(r.text, r.private) for r in got] == [(REFUSAL, True)]
    denied = [
        e for e in await audit_log(app.settings.database_url) if "denied" in str(e["command"])
    ]
    assert len(denied) == 9


async def test_a_username_shared_across_platforms_asks_for_the_platform(app) -> None:
    ada = await app.store.resolve_user("telegram", "42", "Ada", "ada")
    await app.store.resolve_user("discord", "43", "Other Ada", "ada")
    assert await admin_says(app, "/user @ada") == (
        "More than one user is @ada: name them as platform:id"
    )
    assert (await admin_says(app, "/user telegram:42")).startswith(f"User {ada}")


async def test_stats_comes_with_a_picture_for_the_admin_only(app) -> None:
    await seed(app)
    got = await replies(app, incoming("/stats", user=ADMIN[1], platform=ADMIN[0], name="Root"))
    [reply] = [r for r in got if r.file is not None]
    assert reply.private and reply.file.is_image and reply.file.filename == "stats.png"
    assert png_size(reply.file.data) == (WIDTH_PX, HEIGHT_PX)
    assert reply.text.startswith("Users: ")
    refused = await replies(app, incoming("/stats", user="42"))
    assert all(r.file is None for r in refused)


async def test_user_lists_the_users_memories_privately_and_never_in_a_group(app) -> None:
    user_id = await seed(app)
    assert "Memories: none" in await admin_says(app, f"/user {user_id}")
    (info,) = await app.store.list_sessions(app.settings.app_name, user_id)
    session = await app.store.get_session(app.settings.app_name, user_id, info.session_id)
    facts = [f"fact {n} about the cat Pixel" for n in range(MEMORIES_SHOWN + 2)]
    changes = tuple(MemoryChange("add", text) for text in facts)
    await app.store.append_event(
        session,
        Event(author="system", content={"text": ""}, actions=EventActions(memory_changes=changes)),
    )
    mine = await app.store.memories(app.settings.app_name, user_id)
    profile = (await admin_says(app, f"/user {user_id}")).splitlines()
    at = profile.index(f"Memories ({len(facts)}):")
    assert profile[at + 1] == f"1. fact 0 about the cat Pixel [{mine[0].id}]"
    assert profile[at + MEMORIES_SHOWN].startswith(f"{MEMORIES_SHOWN}. fact {MEMORIES_SHOWN - 1} ")
    assert profile[-1] == "… 2 more: python -m bot admin export USER"
    asked = incoming(f"/user {user_id}", user=ADMIN[1], platform=ADMIN[0], group=True)
    got = await replies(app, asked)
    assert got and not any("Pixel" in r.text for r in got if not r.private)
