"""User commands: watchlist, link, forgetme, help/usage, non-text and group rules."""

from __future__ import annotations

import json

import aiosqlite

from agents.profile import WATCHLIST_KEY
from bot.conversation import GROUP_ADMIN, MAX_TEXT, NON_TEXT, TOO_LONG

from .conftest import AppFactory, incoming, replies, say


async def test_watchlist_add_remove_show_and_usage(app_factory: AppFactory) -> None:
    async with app_factory() as app:
        assert "empty" in await say(app, "/watchlist")
        assert "Added AAPL" in await say(app, "/watchlist add aapl")
        assert "Added TSLA" in await say(app, "/watchlist add TSLA")
        assert "already" in await say(app, "/watchlist add AAPL")
        assert "Removed AAPL" in await say(app, "/watchlist remove AAPL")
        assert "not on your watchlist" in await say(app, "/watchlist remove MSFT")
        for bad in (
            "/watchlist add",
            "/watchlist buy AAPL",
            "/watchlist add $$$",
            "/watchlist a b c",
        ):
            assert (await say(app, bad)).startswith("Usage: /watchlist")
        user_id = await app.store.find_user("telegram", "42")
        assert user_id is not None
        # State changed only through events carrying the delta.
        events = await app.store.history(app.settings.app_name, user_id, limit=50)
        deltas = [e.actions.state_delta.get(WATCHLIST_KEY) for e in events]
        assert [d for d in deltas if d is not None] == [["AAPL"], ["AAPL", "TSLA"], ["TSLA"]]
    async with app_factory() as app:
        assert "Your watchlist: TSLA" in await say(app, "/watchlist")
        assert "Watchlist: TSLA" in await say(app, "/prefs")


async def test_link_shares_user_state_across_platforms(app) -> None:
    await say(app, "My name is Ada", user="42", platform="telegram")
    await say(app, "/watchlist add NVDA", user="42", platform="telegram")
    [code_reply] = await replies(app, incoming("/link", user="42", platform="telegram"))
    assert code_reply.private
    code = code_reply.text.split("code: ", 1)[1].split()[0]
    # Before linking, Discord is somebody else with an empty watchlist.
    assert "empty" in await say(app, "/watchlist", user="777", platform="discord")
    # The code alone only says what linking would do; nothing moves before the confirmation.
    preview = await say(app, f"/link {code}", user="777", platform="discord")
    assert "will join your Telegram (Ada) account" in preview and "confirm" in preview
    assert "empty" in await say(app, "/watchlist", user="777", platform="discord")
    assert "Linked" in await say(app, f"/link {code} confirm", user="777", platform="discord")
    tg = await app.store.find_user("telegram", "42")
    assert tg is not None and tg == await app.store.find_user("discord", "777")
    assert "Your watchlist: NVDA" in await say(app, "/watchlist", user="777", platform="discord")
    assert "Name: Ada" in await say(app, "/prefs", user="777", platform="discord")
    # One memory: an edit on Discord is seen on Telegram.
    await say(app, "/watchlist add AMD", user="777", platform="discord")
    assert "NVDA, AMD" in await say(app, "/watchlist", user="42", platform="telegram")
    # A code works once.
    assert "unknown, used or expired" in await say(
        app, f"/link {code} confirm", user="9", platform="discord"
    )
    assert (await say(app, "/link a b")).startswith("Usage: /link")


async def test_forgetme_asks_for_confirmation_then_leaves_no_row(app, db_url: str) -> None:
    await say(app, "My name is Ada")
    await say(app, "Tell me a joke about cats")
    await say(app, "/watchlist add AAPL")
    user_id = await app.store.find_user("telegram", "42")
    assert user_id is not None
    assert "Nothing to confirm" in await say(app, "/forgetme confirm")
    assert "/forgetme confirm" in await say(app, "/forgetme")
    assert (await say(app, "/forgetme please")).startswith("Usage: /forgetme")
    assert "erased everything" in await say(app, "/forgetme confirm")
    assert await app.store.find_user("telegram", "42") is None
    # Not a single row anywhere mentions the user id or their platform id.
    async with aiosqlite.connect(db_url.removeprefix("sqlite:///")) as db:
        tables = [
            row[0]
            async for row in await db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            async for row in await db.execute(f'SELECT * FROM "{table}"'):
                flat = json.dumps([str(v) for v in row])
                assert user_id not in flat, table
                assert "Ada" not in flat, table
    # Starting over is a brand-new user.
    greeting = await say(app, "/start")
    assert "Hi Ada!" in greeting and "Welcome back" not in greeting
    assert "Hi there!" in await say(app, "/start", user="5", name=None)


async def test_help_unknown_commands_and_bot_suffix(app) -> None:
    help_text = await say(app, "/help")
    for name in ("/start", "/prefs", "/watchlist", "/reset", "/export", "/forgetme", "/link"):
        assert name in help_text
    assert "/history" not in help_text
    assert "/history" in await say(app, "/help", user="1000")  # the admin sees admin commands
    assert "/help" in await say(app, "/frobnicate")
    assert "Your watchlist" in await say(app, "/watchlist@SwitchboardBot")


async def test_non_text_group_chatter_and_empty_text(app) -> None:
    assert await say(app, "", kind="sticker") == NON_TEXT
    assert await say(app, "x" * (MAX_TEXT + 1)) == TOO_LONG
    assert "Say something" in await say(app, "   ")
    assert await replies(app, incoming("hello all", group=True, addressed=False)) == []
    assert await app.core.pending("telegram") == []  # recorded and closed, never replayed
    assert await say(app, "Tell me a joke", group=True) != ""
    assert await say(app, "/history", user="1000", group=True) == GROUP_ADMIN
    # A Discord interaction can answer ephemerally, so it is allowed anywhere.
    ephemeral = await replies(
        app, incoming("/stats", user="1000", group=True, extra={"ephemeral": True})
    )
    assert ephemeral[0].private and "Users:" in ephemeral[0].text
