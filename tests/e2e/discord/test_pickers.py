"""Naming a user to the admin commands on Discord: the member picker (a USER option, in a guild
and in a DM) and every typed form — a mention `<@id>` / `<@!id>`, a bare snowflake, `platform:id`
and our user id — name the same user; a bogus form is "No such user". Admin answers stay private
(ephemeral, or in the admin's DM). Real discord.py against the emulator, the real core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.admin_commands import MAX_LIMIT
from bot.settings import Settings
from testkit.emulators.discord_api import EPHEMERAL, DiscordEmulator
from tests.e2e.discord.conftest import ADMIN, TOKEN, USER, RunningBot, bot_env, start_bot

pytestmark = pytest.mark.e2e


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with DiscordEmulator() as emu:
        emu.expected_auth = f"Bot {TOKEN}"
        async with start_bot(Settings.from_env(bot_env(emu, tmp_path), dotenv_path=None), emu) as b:
            await b.say(USER, "Hello there")
            yield b


async def user_id_of(bot: RunningBot) -> str:
    found = await bot.app.store.find_user("discord", str(USER))
    assert found is not None
    return found


@pytest.mark.parametrize("guild", [True, False])
async def test_a_picked_member_is_looked_up_privately(bot: RunningBot, guild: bool) -> None:
    (answer,) = await bot.command(ADMIN, "user", {"user": bot.user(USER)}, guild=guild)

    assert answer["content"].startswith(f"User {await user_id_of(bot)}\n")
    assert answer["flags"] & EPHEMERAL


@pytest.mark.parametrize("form", ["<@{id}>", "<@!{id}>", "{id}", "discord:{id}", "{ours}"])
async def test_each_typed_form_names_the_user(bot: RunningBot, form: str) -> None:
    ours = await user_id_of(bot)

    (answer,) = await bot.say(ADMIN, "/user " + form.format(id=USER, ours=ours))

    assert answer["content"].startswith(f"User {ours}\n")
    assert answer["channel_id"] == str(bot.emu.dm_channel_id(ADMIN))


@pytest.mark.parametrize("bogus", ["<@123456789012345678>", "telegram:1", "nobody", "<@abc>"])
async def test_a_bogus_form_is_no_such_user(bot: RunningBot, bogus: str) -> None:
    (answer,) = await bot.say(ADMIN, f"/user {bogus}")

    assert answer["content"] == f"No such user: {bogus}"


async def test_a_limit_above_the_maximum_shows_the_maximum_and_says_so(bot: RunningBot) -> None:
    options = {"user": bot.user(USER), "limit": MAX_LIMIT * 5}

    (answer, *_) = await bot.command(ADMIN, "history", options, guild=True)

    first = answer["content"].splitlines()[0]
    ours = await user_id_of(bot)
    assert first == f"History of {ours} (newest last, the most shown at once is {MAX_LIMIT}):"
    assert answer["flags"] & EPHEMERAL
