"""Answers that tell a user's memories back are theirs alone: asked in a shared chat, the core
marks the answer private (the adapters send it to the user's private chat) and no streamed
preview of it reaches the group. The real app: store, offline model, runner, core."""

from __future__ import annotations

import pytest

from bot.app import App
from bot.messages import Reply
from storage.types import Event

from .conftest import incoming, replies


async def everything(app: App, text: str, **kwargs: object) -> list[Reply]:
    """Every reply of one message, previews included."""
    return [r async for r in app.core.handle(incoming(text, **kwargs)) if not r.typing]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("question", "told"),
    [
        ("what is my dog?", "Your dog is Rex."),
        ("where do I live?", "You live in Lisbon."),
        ("what do you know about me?", "- Your dog is Rex"),
        ("what did I tell you earlier?", "- Your dog is Rex"),
    ],
)
async def test_memories_asked_about_in_a_group_go_only_to_the_user(
    app: App, question: str, told: str
) -> None:
    for text in ("my dog is Rex", "I live in Lisbon"):
        await replies(app, incoming(text))  # told in the private chat
    got = await everything(app, question, group=True)
    assert [r.text for r in got if not r.private] == []  # no preview, no answer in the group
    [answer] = got
    assert answer.private and told in answer.text


async def test_the_same_answer_in_the_private_chat(app: App) -> None:
    await replies(app, incoming("my dog is Rex"))
    [answer] = await replies(app, incoming("what is my dog?"))
    assert answer.text == "Your dog is Rex."


async def test_a_replayed_answer_stays_private(app: App) -> None:
    await replies(app, incoming("my dog is Rex"))
    await replies(app, incoming("what is my dog?", group=True, message_id="m-1"))
    user_id = await app.store.find_user("telegram", "42")
    assert user_id is not None
    sessions = await app.store.list_sessions(app.settings.app_name, user_id)
    finals: list[Event] = []
    for session in sessions:
        loaded = await app.store.get_session(app.settings.app_name, user_id, session.session_id)
        assert loaded is not None
        finals += [e for e in loaded.events if e.id == "telegram:m-1:final"]
    assert [e.content.get("private") for e in finals] == [True]


async def test_other_answers_in_a_group_stay_in_the_group(app: App) -> None:
    got = await replies(app, incoming("tell me a joke", group=True))
    assert got and not any(r.private for r in got)
