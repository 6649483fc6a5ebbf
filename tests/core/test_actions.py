"""Buttons under replies (`Reply.actions`): which commands offer them, and that each one runs
as the command it names when "pressed" (sent as that command line, as adapters do)."""

from __future__ import annotations

from bot.app import App
from bot.messages import Action, Reply

from .conftest import ADMIN, AppFactory, incoming, replies, say


async def only(app: App, text: str, **kwargs: object) -> Reply:
    [reply] = await replies(app, incoming(text, **kwargs))  # type: ignore[arg-type]
    return reply


async def press(app: App, action: Action, **kwargs: object) -> str:
    return await say(app, action.command, **kwargs)


async def test_watchlist_offers_a_remove_button_per_symbol(app: App) -> None:
    assert (await only(app, "/watchlist")).actions == ()
    await say(app, "/watchlist add AAPL")
    await say(app, "/watchlist add TSLA")
    shown = await only(app, "/watchlist")
    assert [a.label for a in shown.actions] == ["Remove AAPL", "Remove TSLA"]
    assert "Removed AAPL" in await press(app, shown.actions[0])
    assert "Your watchlist: TSLA" in await say(app, "/watchlist")


async def test_forgetme_confirm_and_cancel_buttons(app_factory: AppFactory) -> None:
    async with app_factory() as app:
        await say(app, "/watchlist add NVDA")
        asked = await only(app, "/forgetme")
        assert asked.private
        confirm, cancel = asked.actions
        assert (confirm.command, cancel.command) == ("/forgetme confirm", "/forgetme cancel")
        # Cancel withdraws the request: an old Confirm button erases nothing afterwards.
        assert "nothing was erased" in await press(app, cancel)
        assert "Nothing to confirm" in await press(app, confirm)
        assert "NVDA" in await say(app, "/watchlist")
        # Asked again and confirmed by its button: erased.
        await say(app, "/forgetme")
        assert "erased everything" in await press(app, confirm)
        assert await app.store.find_user("telegram", "42") is None


async def test_help_offers_quick_actions(app: App) -> None:
    shown = await only(app, "/help")
    assert {a.command for a in shown.actions} >= {"/prefs", "/watchlist"}
    for action in shown.actions:
        answer = await press(app, action)
        assert "Usage" not in answer and "don't know" not in answer


async def test_admin_pagers_older_and_next(app: App) -> None:
    admin = {"user": ADMIN[1], "platform": ADMIN[0]}
    for n in range(4):
        await say(app, f"/watchlist add T{n}", user="42")
    user_id = await app.store.find_user("telegram", "42")
    first = await only(app, f"/history {user_id} 2", **admin)
    [older] = first.actions
    assert first.private and older.label == "Older"
    second = await only(app, older.command, **admin)
    assert second.text.splitlines()[1:3] != first.text.splitlines()[1:3]
    assert "T1" in second.text and "T3" not in second.text
    for n in range(12):  # more than a page of sessions: one per chat
        await say(app, "/watchlist", user=str(500 + n))
    page1 = await only(app, "/sessions", **admin)
    assert [a.label for a in page1.actions] == ["Next"]
    page2 = await only(app, page1.actions[0].command, **admin)
    assert page2.text.startswith("Sessions, page 2")
    assert [a.label for a in page2.actions] == ["Previous"]
