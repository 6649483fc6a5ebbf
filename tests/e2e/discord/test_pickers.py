"""Pickers and lookups on Discord. Naming a user to the admin commands: the member picker (a USER
option, in a guild and in a DM) and every typed form — a mention `<@id>` / `<@!id>`, a bare
snowflake, `platform:id` and our user id — name the same user; a bogus form is "No such user".
Admin answers stay private (ephemeral, or in the admin's DM). Ticker options autocomplete from
the user's watchlist, then the symbols they looked up lately. Real discord.py against the
emulator, the real core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.admin_commands import MAX_LIMIT
from bot.settings import Settings
from testkit.emulators.discord_api import EPHEMERAL, DiscordEmulator
from testkit.emulators.quotes import QuotesEmulator
from testkit.helpers import wait_until
from tests.e2e.discord.conftest import (
    ADMIN,
    TIMEOUT,
    TOKEN,
    USER,
    RunningBot,
    bot_env,
    start_bot,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
async def bot(tmp_path: Path, any_db_url: str) -> AsyncIterator[RunningBot]:
    async with DiscordEmulator() as emu, QuotesEmulator() as quotes:
        emu.expected_auth = f"Bot {TOKEN}"
        env = bot_env(emu, tmp_path, DATABASE_URL=any_db_url, QUOTES_BASE_URL=quotes.base_url)
        async with start_bot(Settings.from_env(env, dotenv_path=None), emu) as b:
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


async def suggested(bot: RunningBot, who: int, typed: str, **kw: Any) -> list[str]:
    """What the bot offers while `who` types `typed` into /watchlist's ticker option."""
    options = {"action": "remove", "ticker": typed}
    payload = await bot.emu.autocomplete(bot.user(who), "watchlist", options, "ticker", **kw)
    await wait_until(lambda: bot.emu.suggestions(payload) is not None, timeout=TIMEOUT)
    choices = bot.emu.suggestions(payload) or []
    assert all(c["name"] == c["value"] for c in choices)
    return [c["value"] for c in choices]


async def test_ticker_options_autocomplete_from_the_users_watchlist(bot: RunningBot) -> None:
    await bot.say(USER, "/watchlist add AAPL")
    await bot.say(USER, "/watchlist add AMZN")
    await bot.say(USER, "/watchlist add MSFT")
    synced = {c["name"]: c for c in bot.emu.commands[None]}
    ticker = {o["name"]: o for o in synced["watchlist"]["options"]}["ticker"]
    assert ticker["autocomplete"] is True

    assert await suggested(bot, USER, "") == ["AAPL", "AMZN", "MSFT"]
    assert await suggested(bot, USER, "a", guild=True) == ["AAPL", "AMZN"]
    assert await suggested(bot, USER, "ms") == ["MSFT"]
    assert await suggested(bot, USER, "zz") == []
    # Another user's watchlist is theirs: an unknown user is offered nothing (and not created).
    assert await suggested(bot, ADMIN, "", guild=True) == []
    assert await bot.app.store.find_user("discord", str(ADMIN)) is None


async def test_symbols_looked_up_lately_are_offered_after_the_watchlist(bot: RunningBot) -> None:
    await bot.say(USER, "/watchlist add MSFT")
    await bot.say(USER, "what's the price of TSLA?")
    await bot.say(USER, "show me AAPL over 6 months")
    assert await suggested(bot, USER, "") == ["MSFT", "AAPL", "TSLA"]  # newest lookup first
    await bot.say(USER, "what's the price of MSFT?")  # on the watchlist already: offered once
    assert await suggested(bot, USER, "") == ["MSFT", "AAPL", "TSLA"]
    assert await suggested(bot, USER, "t") == ["TSLA"]
