"""/memory (list, forget N, clear with confirmation) and /prefs' dislikes, on both backends,
through the real core; every reply private, in a group chat too."""

from __future__ import annotations

import pytest

from agents.memory_extraction import extraction_event
from agents.profile import DISLIKES_KEY
from bot.admin_commands import describe_event
from bot.app import App
from bot.memory_commands import MEMORY_USAGE, NOTHING
from bot.messages import Action, Reply
from storage import Event, EventActions
from storage.types import MemoryChange

from .conftest import AppFactory, incoming, replies

FACTS = ("lives in Lisbon", "has a cat called Pixel", "is vegetarian")


@pytest.fixture
async def app(app_factory: AppFactory, any_db_url: str):  # type: ignore[no-untyped-def]
    async with app_factory(any_db_url) as opened:
        yield opened


async def one(app: App, text: str, **kwargs) -> Reply:  # type: ignore[no-untyped-def]
    [reply] = await replies(app, incoming(text, **kwargs))
    assert reply.private, text
    return reply


async def seed(app: App, *texts: str, delta: dict | None = None) -> str:
    """The user (telegram 42) with these memories, added the one way: an event's changes."""
    await replies(app, incoming("/start"))
    user_id = await app.store.find_user("telegram", "42")
    assert user_id is not None
    session = await app.store.get_session(app.settings.app_name, user_id, "telegram:42")
    assert session is not None
    adds = tuple(MemoryChange("add", t) for t in texts)
    actions = EventActions(state_delta=delta or {}, memory_changes=adds)
    await app.store.append_event(session, Event("system", {"text": "seed"}, actions=actions))
    return user_id


async def texts(app: App, user_id: str) -> list[str]:
    return [m.text for m in await app.store.memories(app.settings.app_name, user_id)]


async def test_memory_lists_numbered_with_buttons(app: App) -> None:
    assert (await one(app, "/memory")).text == NOTHING
    user_id = await seed(app, *FACTS)
    listed = await one(app, "/memory")
    assert listed.text.splitlines()[:4] == [
        "What I remember about you (3):",
        "1. lives in Lisbon",
        "2. has a cat called Pixel",
        "3. is vegetarian",
    ]
    ids = [m.id for m in await app.store.memories(app.settings.app_name, user_id)]
    assert listed.actions == (
        *(Action(f"Forget {n}", f"/memory forget {i}") for n, i in enumerate(ids, 1)),
        Action("Forget all", "/memory clear"),
    )
    assert (await one(app, "/memory list")).text == listed.text


async def test_memory_forget_by_number_or_id_and_bad_input(app: App) -> None:
    user_id = await seed(app, *FACTS)
    assert (await one(app, "/memory forget 2")).text == "Forgot: has a cat called Pixel"
    assert await texts(app, user_id) == ["lives in Lisbon", "is vegetarian"]
    vegetarian = (await app.store.memories(app.settings.app_name, user_id))[1].id
    # A button sends the id: it still names the same memory after the numbers moved.
    assert (await one(app, f"/memory forget {vegetarian}")).text == "Forgot: is vegetarian"
    for bad in ("/memory forget 9", "/memory forget 0", "/memory forget -1", "/memory forget x"):
        assert "There is no memory" in (await one(app, bad)).text, bad
    for bad in ("/memory forget", "/memory delete 1", "/memory forget 1 2", "/memory clear now"):
        assert (await one(app, bad)).text == MEMORY_USAGE, bad
    assert await texts(app, user_id) == ["lives in Lisbon"]
    # The change was recorded as a system event carrying it.
    events = await app.store.history(app.settings.app_name, user_id, limit=50)
    deleting = [e for e in events if any(c.op == "delete" for c in e.actions.memory_changes)]
    assert [e.author for e in deleting] == ["system", "system"]


async def test_a_redelivered_forget_forgets_once(app: App) -> None:
    user_id = await seed(app, *FACTS)
    message = incoming("/memory forget 1", message_id="m-forget")
    await replies(app, message)
    await replies(app, message)
    assert await texts(app, user_id) == ["has a cat called Pixel", "is vegetarian"]


async def test_memory_clear_asks_first_then_forgets_everything(app: App) -> None:
    user_id = await seed(app, *FACTS)
    assert "Nothing to confirm" in (await one(app, "/memory clear confirm")).text
    ask = await one(app, "/memory clear")
    assert "all 3 memories" in ask.text and "/memory clear confirm" in ask.text
    assert ask.actions == (
        Action("Forget them all", "/memory clear confirm"),
        Action("Cancel", "/memory clear cancel"),
    )
    assert await texts(app, user_id) == list(FACTS)
    assert "Kept" in (await one(app, "/memory clear cancel")).text
    assert "Nothing to confirm" in (await one(app, "/memory clear confirm")).text
    await one(app, "/memory clear")
    assert (await one(app, "/memory clear confirm")).text == (
        "Done: I forgot all 3 memories about you."
    )
    assert await texts(app, user_id) == []
    assert (await one(app, "/memory clear")).text == NOTHING


async def test_prefs_shows_dislikes_privately(app: App) -> None:
    await seed(app, delta={DISLIKES_KEY: ["python", "java"]})
    prefs = await one(app, "/prefs")
    assert "Dislikes: python, java" in prefs.text and "/memory" in prefs.text


@pytest.mark.parametrize(
    "text",
    [
        "/memory",
        "/memory forget 1",
        "/memory forget 7",
        "/memory clear",
        "/memory clear confirm",
        "/memory oops",
        "/prefs",
    ],
)
async def test_memory_in_a_group_chat_is_private(app: App, text: str) -> None:
    await seed(app, *FACTS)
    got = await replies(app, incoming(text, group=True))
    assert got and all(r.private for r in got), [r.text[:40] for r in got]


def test_admin_history_names_an_extractions_changes() -> None:
    changes = (MemoryChange("add", "lives in Lisbon"), MemoryChange("delete", memory_id="a" * 12))
    line = describe_event(extraction_event("telegram:1", changes))
    assert line.endswith("memory: memories: add, delete")
