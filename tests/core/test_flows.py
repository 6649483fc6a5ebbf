"""The seed's flows through the core entry point, with the offline model; memory across restarts."""

from __future__ import annotations

import itertools

from storage import Event

from .conftest import AppFactory, incoming, replies, say


def delegations(events: list[Event]) -> list[str]:
    return [e.actions.transfer_to_agent for e in events if e.actions.transfer_to_agent]


async def test_joke_flow_goes_to_funny_nerd_and_the_topic_survives_a_restart(
    app_factory: AppFactory,
) -> None:
    async with app_factory() as app:
        answer = await say(app, "Tell me a joke about Python")
        assert answer and "wrong" not in answer.lower()
        user_id = await app.store.find_user("telegram", "42")
        assert user_id is not None
        events = await app.store.history(app.settings.app_name, user_id, limit=50)
        assert "funny_nerd" in delegations(events)
        assert any(e.author == "funny_nerd" for e in events)
    async with app_factory() as app:  # a restart: everything reopened from the database
        prefs = await say(app, "/prefs")
        [topics] = [line for line in prefs.splitlines() if line.startswith("Joke topics:")]
        assert "python" in topics.lower()
        assert "funny_nerd" in prefs
        assert "Turns: 1" in prefs


async def test_name_is_remembered_across_a_restart(app_factory: AppFactory) -> None:
    async with app_factory() as app:
        await say(app, "Hi! My name is Grace")
        assert "Grace" in await say(app, "/prefs")
    async with app_factory() as app:
        assert "Welcome back, Grace" in await say(app, "/start")
        assert "Name: Grace" in await say(app, "/prefs")


async def test_streaming_turn_yields_growing_partials_then_the_whole_text(app) -> None:
    got = [r async for r in app.core.handle(incoming("Tell me a nerdy fact about space"))]
    final = got[-1]
    assert not final.partial and final.text
    partials = [r.text for r in got if r.partial]
    for earlier, later in itertools.pairwise(partials):
        assert later.startswith(earlier)  # the text so far, never just a delta


async def test_reset_starts_a_new_session_and_keeps_preferences(app_factory: AppFactory) -> None:
    async with app_factory() as app:
        await say(app, "My name is Linus")
        assert "Fresh start" in await say(app, "/reset")
        user_id = await app.store.find_user("telegram", "42")
        assert user_id is not None
        sessions = await app.store.list_sessions(app.settings.app_name, user_id)
        assert len(sessions) == 2
    async with app_factory() as app:  # the chat stays in the new session after a restart
        await say(app, "Tell me a joke")
        sessions = await app.store.list_sessions(app.settings.app_name, user_id)
        newest = sessions[0]
        assert newest.session_id != "telegram:42" and newest.turns == 1
        assert "Name: Linus" in await say(app, "/prefs")


async def test_a_reset_by_another_worker_moves_the_chat_here_too(app) -> None:
    """A worker remembers which session a chat was in; after another worker's /reset (two
    cores on one store) its next turn follows the chat to the new session, and so does a reset
    the worker does itself."""
    from bot.conversation import Conversation

    other = Conversation(app.store, app.runner, app_name=app.settings.app_name)
    await say(app, "Tell me a joke about cats")
    assert "Fresh start" in "".join([r.text async for r in other.handle(incoming("/reset"))])
    await say(app, "Tell me a joke about dogs")
    assert "Fresh start" in await say(app, "/reset")
    await say(app, "Tell me a joke about owls")
    user_id = await app.store.find_user("telegram", "42")
    assert user_id is not None
    said = {
        info.session_id: [
            e.text
            for e in await app.store.history(app.settings.app_name, user_id, info.session_id)
            if e.author == "user"
        ]
        for info in await app.store.list_sessions(app.settings.app_name, user_id)
    }
    assert sorted(said.values()) == [
        ["Tell me a joke about cats"],
        ["Tell me a joke about dogs"],
        ["Tell me a joke about owls"],
    ]
    assert said["telegram:42"] == ["Tell me a joke about cats"]


async def test_export_is_a_json_file_of_the_users_own_data(app) -> None:
    import json

    await say(app, "My name is Ada")
    await say(app, "My name is Mallory", user="666", name="Mallory")
    [reply] = await replies(app, incoming("/export"))
    assert reply.file is not None and reply.private
    assert reply.file.filename.endswith(".json")
    data = json.loads(reply.file.data)
    text = json.dumps(data)
    assert "Ada" in text and "Mallory" not in text
