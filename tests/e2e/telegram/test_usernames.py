"""Telegram admins name a user by @username: kept with the identity from the user's messages,
up to date when it changes; an unknown or ambiguous name gets a clear answer. Real PTB against
the Bot API emulator."""

from __future__ import annotations

import pytest

from testkit.helpers import wait_until
from tests.e2e.telegram.conftest import ADMIN, TIMEOUT, USER, RunningBot

pytestmark = pytest.mark.e2e
OTHER = 3003


async def hello(bot: RunningBot, user_id: int, username: str) -> None:
    before = len(bot.tg.bot_messages(user_id))
    bot.tg.private_text(user_id, "hello there", username=username)

    async def answered() -> bool:
        return len(bot.tg.bot_messages(user_id)) > before and await bot.settled()

    await wait_until(answered, timeout=TIMEOUT)


async def test_an_admin_names_a_user_by_username(bot: RunningBot) -> None:
    await hello(bot, USER, "Ana_B")
    [answer] = await bot.ask(ADMIN, ADMIN, "/user @ana_b")
    user_id = await bot.app.store.find_user("telegram", str(USER))
    assert answer.startswith(f"User {user_id}")
    history = await bot.ask(ADMIN, ADMIN, "/history @Ana_B 5")
    assert "hello there" in "\n".join(history)


async def test_a_changed_username_names_the_new_holder(bot: RunningBot) -> None:
    await hello(bot, USER, "ana_b")
    await hello(bot, USER, "ana_new")  # Ana renamed herself
    await hello(bot, OTHER, "ana_b")  # and someone else took her old name
    assert await bot.ask(ADMIN, ADMIN, "/user @ana_new") != ["No such user: @ana_new"]
    other_id = await bot.app.store.find_user("telegram", str(OTHER))
    [answer] = await bot.ask(ADMIN, ADMIN, "/user @ana_b")
    assert answer.startswith(f"User {other_id}")
    assert await bot.ask(ADMIN, ADMIN, "/user @nobody_here") == ["No such user: @nobody_here"]
