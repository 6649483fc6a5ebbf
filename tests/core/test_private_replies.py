"""Every reply of a private command is marked private in the core, whatever the outcome (usage
line, error, success), so each adapter can keep it where only the asking user sees it:
/link (its code), /export, /forgetme (both steps), every admin command. Group chats: an admin
command's output never goes there at all. (The adapters' tests check where `private` lands.)"""

from __future__ import annotations

import pytest

from bot.app import App
from bot.conversation import GROUP_ADMIN
from bot.messages import Reply

from .conftest import ADMIN, incoming, replies

SLASH_IN_GUILD = {"interaction": True, "ephemeral": True}
PLACES = {
    "private chat": {},
    "slash command in a guild": {"group": True, "extra": SLASH_IN_GUILD},
}


async def run(app: App, text: str, user: str, place: str) -> list[Reply]:
    got = await replies(app, incoming(text, user=user, **PLACES[place]))
    assert got, text
    return got


def not_private(got: list[Reply]) -> list[str]:
    return [r.text[:60] for r in got if not r.private]


@pytest.mark.parametrize("place", list(PLACES))
async def test_user_private_commands_reply_privately(app: App, place: str) -> None:
    for text in (
        "/link",
        "/export",
        "/forgetme now",  # the usage line
        "/forgetme confirm",  # nothing to confirm
        "/forgetme",
        "/forgetme confirm",
    ):
        assert not_private(await run(app, text, "42", place)) == [], text


@pytest.mark.parametrize("place", list(PLACES))
async def test_every_admin_command_replies_privately(app: App, place: str) -> None:
    await replies(app, incoming("hello", user="42"))
    user_id = await app.store.find_user("telegram", "42")
    admin = ADMIN[1]
    for text in (
        "/history",
        f"/history {user_id} 5",
        "/history nobody-here",
        "/sessions",
        "/sessions x",
        "/stats",
        f"/user {user_id}",
        "/user",
        "/forget nobody-here",
        f"/forget {user_id}",
    ):
        assert not_private(await run(app, text, admin, place)) == [], text


async def test_admin_output_never_reaches_a_group_chat(app: App) -> None:
    for text in ("/history", "/sessions", "/stats", "/user telegram:1000", "/forget x"):
        got = await replies(app, incoming(text, user=ADMIN[1], group=True))
        assert [r.text for r in got] == [GROUP_ADMIN], text
