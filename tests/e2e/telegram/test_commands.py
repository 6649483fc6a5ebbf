"""Commands through Telegram: the menu, user and admin commands, /export, a long reply split."""

from __future__ import annotations

import json

import pytest

from adapters.text import TELEGRAM_LIMIT, split_message, utf16_len
from bot.admin_commands import AdminCommands
from bot.commands import parse_command
from testkit.helpers import wait_until
from tests.e2e.telegram.conftest import ADMIN, GROUP, TIMEOUT, USER, RunningBot

pytestmark = pytest.mark.e2e


async def test_command_menu_is_registered(bot: RunningBot) -> None:
    menus = {
        json.loads(scope)["type"]: [c["command"] for c in commands]
        for scope, commands in bot.tg.commands.items()
    }
    assert {"start", "help", "prefs", "watchlist", "export", "forgetme", "link"} <= set(
        menus["default"]
    )
    assert "stats" not in menus["default"]  # admin commands only in the admins' own chats
    admin_scope = json.dumps({"chat_id": ADMIN, "type": "chat"}, sort_keys=True)
    assert {"history", "stats", "sessions"} <= {c["command"] for c in bot.tg.commands[admin_scope]}


async def test_user_commands(bot: RunningBot) -> None:
    [hello] = await bot.ask(USER, USER, "/start")
    assert "/help" in hello
    [added] = await bot.ask(USER, USER, "/watchlist add AAPL")
    assert "AAPL" in added
    [shown] = await bot.ask(USER, USER, "/watchlist")
    assert shown == "Your watchlist: AAPL"
    [unknown] = await bot.ask(USER, USER, "/frobnicate")
    assert "/help" in unknown


async def test_admin_commands_allowed_and_refused(bot: RunningBot) -> None:
    await bot.ask(USER, USER, "hello")
    [stats] = await bot.ask(ADMIN, ADMIN, "/stats")
    assert stats.startswith("Users:")
    [refused] = await bot.ask(USER, USER, "/stats")
    assert "only for the bot's admins" in refused
    # In a group even an admin is asked to come to a private chat: the output is private.
    [group] = await bot.ask(GROUP, ADMIN, "/stats@switchboard_test_bot")
    assert group == "Ask me in a private chat."
    assert not any(text.startswith("Users:") for text in bot.tg.shown(GROUP))


async def test_export_arrives_as_a_json_document(bot: RunningBot) -> None:
    await bot.ask(USER, USER, "/watchlist add TSLA")
    before = len(bot.tg.calls_to("sendDocument"))
    bot.tg.private_text(USER, "/export")
    await wait_until(lambda: len(bot.tg.calls_to("sendDocument")) > before, timeout=TIMEOUT)
    call = bot.tg.calls_to("sendDocument")[-1]
    assert int(call.params["chat_id"]) == USER
    upload = call.files["document"]
    assert upload.filename.endswith(".json")
    data = json.loads(upload.data)
    assert "TSLA" in json.dumps(data)
    assert call.params["caption"]


async def test_export_in_a_group_goes_to_the_private_chat(bot: RunningBot) -> None:
    [note] = await bot.ask(GROUP, USER, "/export")
    assert "private chat" in note
    call = bot.tg.calls_to("sendDocument")[-1]
    assert int(call.params["chat_id"]) == USER


async def test_a_5000_character_reply_is_split_in_two(bot: RunningBot) -> None:
    # An honest long answer: an admin's /history of long messages (each line up to 300 chars).
    filler = "Tell me about the history of computing and why it matters so much. " * 5
    for n in range(9):
        await bot.ask(ADMIN, ADMIN, f"{n} {filler}")
    before = len(bot.tg.sent(ADMIN))
    await bot.ask(ADMIN, ADMIN, "/history 24")
    parts = [c.params["text"] for c in bot.tg.sent(ADMIN)[before:]]
    # The same command run by the real core code right after gives the full text.
    admin = AdminCommands(bot.app.store, bot.app.settings.app_name)
    user_id = await bot.app.store.find_user("telegram", str(ADMIN))
    full = await admin.execute("test", parse_command("/history 24"), user_id)  # type: ignore[arg-type]
    assert 5000 <= utf16_len(full) <= 2 * TELEGRAM_LIMIT
    assert len(parts) == 2
    assert parts == split_message(full, TELEGRAM_LIMIT, utf16_len)
    assert all(utf16_len(p) <= TELEGRAM_LIMIT for p in parts)
    assert full[len(parts[0])] == "\n"  # cut between two lines, not inside one
