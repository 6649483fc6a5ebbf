"""Buttons through Discord: components under replies, presses (MESSAGE_COMPONENT interactions)
acknowledged at once and run as the command they name, bound to the user who got the message."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from adapters.discord.buttons import NOT_FOR_YOU
from testkit.emulators.discord_api import EPHEMERAL
from testkit.helpers import wait_until
from tests.e2e.discord.conftest import ADMIN, TIMEOUT, USER, RunningBot

pytestmark = pytest.mark.e2e

STRANGER = 3003


def custom_id(bot: RunningBot, message: dict[str, Any], label: str) -> str:
    found = dict(bot.emu.buttons(message))
    assert label in found, f"no {label!r} button: {found}"
    return found[label]


async def press(
    bot: RunningBot, user_id: int, message: dict[str, Any], label: str, *, guild: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Click a button as `user_id`; once acknowledged and answered: (the interaction, what
    answered it)."""
    button = custom_id(bot, message, label)
    interaction = await bot.emu.press(bot.user(user_id), message, button, guild=guild)

    async def answered() -> bool:
        return bool(bot.emu.followups(interaction)) and await bot.settled()

    await wait_until(answered, timeout=TIMEOUT)
    return interaction, bot.emu.followups(interaction)


async def test_watchlist_remove_button_in_a_dm(bot: RunningBot) -> None:
    await bot.say(USER, "/watchlist add AAPL")
    await bot.say(USER, "/watchlist add TSLA")
    [shown] = await bot.say(USER, "/watchlist")
    assert [label for label, _ in bot.emu.buttons(shown)] == ["Remove AAPL", "Remove TSLA"]
    interaction, [answer] = await press(bot, USER, shown, "Remove AAPL")
    assert bot.emu.acked(interaction)["type"] == 5  # type: ignore[index]
    assert "Removed AAPL" in answer["content"]
    [now] = await bot.say(USER, "/watchlist")
    assert now["content"] == "Your watchlist: TSLA"


async def test_a_strangers_click_gets_an_ephemeral_refusal(bot: RunningBot) -> None:
    await bot.say(USER, "/watchlist add NVDA")
    [shown] = await bot.say(USER, "/watchlist", guild=True, mention_bot=True)
    interaction, [refusal] = await press(bot, STRANGER, shown, "Remove NVDA", guild=True)
    acked = bot.emu.acked(interaction)
    assert acked is not None and acked["type"] == 4
    assert refusal["content"] == NOT_FOR_YOU and refusal["flags"] & EPHEMERAL
    assert await bot.app.store.find_user("discord", str(STRANGER)) is None
    # The owner's click runs, its answer only for them (ephemeral in a guild).
    interaction, [answer] = await press(bot, USER, shown, "Remove NVDA", guild=True)
    assert "Removed NVDA" in answer["content"] and answer["flags"] & EPHEMERAL


async def test_slash_command_answer_carries_buttons(bot: RunningBot) -> None:
    await bot.command(USER, "watchlist", {"action": "add", "ticker": "AMD"})
    [shown] = await bot.command(USER, "watchlist")
    _, [answer] = await press(bot, USER, shown, "Remove AMD")
    assert "Removed AMD" in answer["content"]


async def test_forgetme_buttons_go_to_the_dm_never_the_channel(bot: RunningBot) -> None:
    await bot.say(USER, "/watchlist add MSFT")
    [note] = await bot.say(USER, "/forgetme", guild=True, mention_bot=True)
    assert note["components"] == []
    dm = bot.emu.channel_messages(bot.emu.dm_channel_id(USER))[-1]
    assert [label for label, _ in bot.emu.buttons(dm)] == ["Erase everything", "Cancel"]
    assert all(m["components"] == [] for m in bot.emu.channel_messages(bot.emu.guild_channel_id))
    _, [answer] = await press(bot, USER, dm, "Erase everything")
    assert "erased everything" in answer["content"]
    assert await bot.app.store.find_user("discord", str(USER)) is None


async def test_admin_sessions_pager(bot: RunningBot) -> None:
    for n in range(11):  # a session each: more than a page (10)
        await bot.say(USER + 10 + n, "/watchlist")
    [page1] = await bot.command(ADMIN, "sessions")
    assert page1["content"].startswith("Sessions, page 1")
    _, [page2] = await press(bot, ADMIN, page1, "Next")
    assert page2["content"].startswith("Sessions, page 2")
    assert [label for label, _ in bot.emu.buttons(page2)] == ["Previous"]


async def test_emulator_honours_update_callbacks_for_components_only(bot: RunningBot) -> None:
    """Callback 7 edits the clicked message (6 would make it the original response); neither
    is valid for a slash command. The bot's own acknowledgement is parked meanwhile."""
    await bot.say(USER, "/watchlist add IBM")
    [shown] = await bot.say(USER, "/watchlist")
    callbacks = r"/interactions/\d+/[^/]+/callback"
    async with aiohttp.ClientSession() as http:

        async def callback(interaction: dict[str, Any], body: dict[str, Any]) -> int:
            url = f"{bot.emu.api_base}/interactions/{interaction['id']}/{interaction['token']}"
            async with http.post(f"{url}/callback", json=body) as response:
                return response.status

        bot.emu.hold("POST", callbacks)
        clicked = await bot.emu.press(bot.user(USER), shown, custom_id(bot, shown, "Remove IBM"))
        slash = await bot.emu.invoke_command(bot.user(USER), "help")
        await wait_until(lambda: len(bot.emu.held) == 2, timeout=TIMEOUT)
        bot.emu.unhold()
        assert await callback(slash, {"type": 6}) == 400
        update = {"type": 7, "data": {"content": "Done.", "components": []}}
        assert await callback(clicked, update) == 204
        message = bot.emu.messages[int(shown["id"])]
        assert (message["content"], message["components"]) == ("Done.", [])
        bot.emu.release()  # the bot's late acknowledgement of the click: 400, nothing runs
    await wait_until(lambda: bot.emu.followups(slash), timeout=TIMEOUT)
    await wait_until(bot.settled, timeout=TIMEOUT)
    assert "IBM" in (await bot.say(USER, "/watchlist"))[0]["content"]
