"""Buttons through Telegram: inline keyboards under replies, presses (callback queries) run as
the command they name, answered once, bound to the user who got the message."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.telegram.buttons import NOT_FOR_YOU
from testkit.helpers import wait_until
from tests.e2e.telegram.conftest import ADMIN, GROUP, TIMEOUT, USER, RunningBot

pytestmark = pytest.mark.e2e

STRANGER = 3003


def last_message(bot: RunningBot, chat_id: int) -> dict[str, Any]:
    return bot.tg.bot_messages(chat_id)[-1]


def data_of(bot: RunningBot, chat_id: int, message: dict[str, Any], label: str) -> str:
    """The callback data of the button labelled `label` under `message`."""
    found = dict(bot.tg.buttons(chat_id, message["message_id"]))
    assert label in found, f"no {label!r} button: {found}"
    return found[label]


async def press(
    bot: RunningBot,
    chat_id: int,
    message: dict[str, Any],
    label: str,
    user: int = USER,
    *,
    runs: bool = True,
) -> tuple[int, list[str]]:
    """Press a button as `user`; once the press is answered, its command (if it `runs`)
    answered and everything recorded answered: (its update id, the bot's new messages)."""
    before = len(bot.tg.bot_messages(chat_id))
    data = data_of(bot, chat_id, message, label)
    update_id = bot.tg.press(chat_id, message["message_id"], data, user)

    async def done() -> bool:
        answered = not runs or len(bot.tg.bot_messages(chat_id)) > before
        return answered and bot.tg.answer_to(update_id) is not None and await bot.settled()

    await wait_until(done, timeout=TIMEOUT)
    return update_id, bot.tg.shown(chat_id)[before:]


async def test_watchlist_remove_button_removes_the_symbol(bot: RunningBot) -> None:
    await bot.ask(USER, USER, "/watchlist add AAPL")
    await bot.ask(USER, USER, "/watchlist add TSLA")
    await bot.ask(USER, USER, "/watchlist")
    shown = last_message(bot, USER)
    labels = [label for label, _ in bot.tg.buttons(USER, shown["message_id"])]
    assert labels == ["Remove AAPL", "Remove TSLA"]
    assert all(len(d.encode()) <= 64 for _, d in bot.tg.buttons(USER, shown["message_id"]))
    update_id, answer = await press(bot, USER, shown, "Remove AAPL")
    assert len(answer) == 1 and "Removed AAPL" in answer[0]
    assert bot.tg.answer_to(update_id) is not None
    assert not bot.tg.answer_to(update_id).get("text")  # type: ignore[union-attr]
    assert await bot.ask(USER, USER, "/watchlist") == ["Your watchlist: TSLA"]


async def test_a_strangers_press_is_refused_and_runs_nothing(bot: RunningBot) -> None:
    await bot.ask(GROUP, USER, "/watchlist add NVDA")
    await bot.ask(GROUP, USER, "/watchlist")
    shown = last_message(bot, GROUP)
    update_id, answer = await press(bot, GROUP, shown, "Remove NVDA", STRANGER, runs=False)
    assert answer == []
    assert bot.tg.answer_to(update_id) == {
        "callback_query_id": bot.tg.answer_to(update_id)["callback_query_id"],  # type: ignore[index]
        "text": NOT_FOR_YOU,
    }
    # Nothing ran, for either user: the stranger has no user at all, NVDA stays.
    assert await bot.app.store.find_user("telegram", str(STRANGER)) is None
    assert "NVDA" in (await bot.ask(GROUP, USER, "/watchlist"))[0]
    # The owner's press in the same group works, answered in the group.
    _, answer = await press(bot, GROUP, last_message(bot, GROUP), "Remove NVDA")
    assert len(answer) == 1 and "Removed NVDA" in answer[0]


async def test_a_redelivered_press_is_not_run_twice(bot: RunningBot) -> None:
    await bot.ask(USER, USER, "/watchlist add AMD")
    await bot.ask(USER, USER, "/watchlist add INTC")
    await bot.ask(USER, USER, "/watchlist")
    update_id, answer = await press(bot, USER, last_message(bot, USER), "Remove AMD")
    assert "Removed AMD" in answer[0]
    count = len(bot.tg.bot_messages(USER))
    answers = len(bot.tg.calls_to("answerCallbackQuery", ok_only=False))
    bot.tg.deliver_again(update_id)  # Telegram sends it again, as after a crash
    # Answered again (in vain: Telegram refuses an old query), and nothing else happens.
    await wait_until(
        lambda: len(bot.tg.calls_to("answerCallbackQuery", ok_only=False)) > answers,
        timeout=TIMEOUT,
    )
    await wait_until(bot.settled, timeout=TIMEOUT)
    assert len(bot.tg.bot_messages(USER)) == count
    assert await bot.ask(USER, USER, "/watchlist") == ["Your watchlist: INTC"]


async def test_forgetme_in_a_group_confirms_by_a_button_in_private(bot: RunningBot) -> None:
    await bot.ask(USER, USER, "/watchlist add MSFT")
    group_before = len(bot.tg.bot_messages(GROUP))
    bot.tg.group_text(GROUP, USER, "/forgetme")
    await wait_until(lambda: len(bot.tg.bot_messages(GROUP)) > group_before, timeout=TIMEOUT)
    await wait_until(bot.settled, timeout=TIMEOUT)
    # The group gets a note without buttons; the question and its buttons go to the DM.
    assert all("reply_markup" not in m for m in bot.tg.bot_messages(GROUP))
    asked = last_message(bot, USER)
    assert "erases everything" in asked["text"]
    assert [label for label, _ in bot.tg.buttons(USER, asked["message_id"])] == [
        "Erase everything",
        "Cancel",
    ]
    _, answer = await press(bot, USER, asked, "Erase everything")
    assert "erased everything" in answer[0]
    assert await bot.app.store.find_user("telegram", str(USER)) is None


async def test_forgetme_cancel_by_button_erases_nothing(bot: RunningBot) -> None:
    await bot.ask(USER, USER, "/watchlist add MSFT")
    await bot.ask(USER, USER, "/forgetme")
    asked = last_message(bot, USER)
    _, answer = await press(bot, USER, asked, "Cancel")
    assert "nothing was erased" in answer[0]
    # The old Confirm button no longer erases anything.
    _, answer = await press(bot, USER, asked, "Erase everything")
    assert "Nothing to confirm" in answer[0]
    assert "MSFT" in (await bot.ask(USER, USER, "/watchlist"))[0]


async def test_admin_history_pager_button(bot: RunningBot) -> None:
    for symbol in ("A", "B", "C"):
        await bot.ask(USER, USER, f"/watchlist add {symbol}")
    [first] = await bot.ask(ADMIN, ADMIN, f"/history telegram:{USER} 2")
    assert "Older:" in first
    _, [older] = await press(bot, ADMIN, last_message(bot, ADMIN), "Older", user=ADMIN)
    assert older.startswith("History of") and older != first
    assert "Added A" in older and "Added B" not in older and "Added B" in first


async def test_a_split_reply_carries_its_buttons_on_the_last_part(bot: RunningBot) -> None:
    for n in range(20):  # long lines in the history: its page needs two messages
        await bot.ask(USER, USER, f"hello number {n} " + "la " * 100)
    before = len(bot.tg.bot_messages(ADMIN))
    parts = await bot.ask(ADMIN, ADMIN, f"/history telegram:{USER} 30")
    assert len(parts) >= 2 and "Older:" in parts[-1]
    messages = bot.tg.bot_messages(ADMIN)[before:]
    assert [bool(bot.tg.buttons(ADMIN, m["message_id"])) for m in messages] == [False] * (
        len(messages) - 1
    ) + [True]
    _, [older, *_] = await press(bot, ADMIN, messages[-1], "Older", user=ADMIN)
    assert older.startswith("History of")


async def test_a_press_keeps_its_place_among_the_users_messages(bot: RunningBot) -> None:
    await bot.ask(USER, USER, "/watchlist add AAPL")
    await bot.ask(USER, USER, "/watchlist add TSLA")
    await bot.ask(USER, USER, "/watchlist")
    shown = last_message(bot, USER)
    before = len(bot.tg.bot_messages(USER))
    # One batch: the press, then a typed command; answered in that order.
    bot.tg.press(USER, shown["message_id"], data_of(bot, USER, shown, "Remove AAPL"), USER)
    bot.tg.private_text(USER, "/watchlist")

    async def both() -> bool:
        return len(bot.tg.bot_messages(USER)) >= before + 2 and await bot.settled()

    await wait_until(both, timeout=TIMEOUT)
    removed, listed = bot.tg.shown(USER)[before:]
    assert "Removed AAPL" in removed and listed == "Your watchlist: TSLA"


async def test_a_pager_command_too_long_for_callback_data_still_pages(bot: RunningBot) -> None:
    """The oldest event of the page came from a press (its id holds the 19-digit query id):
    the "Older" command is longer than 64 bytes, so the adapter keeps it and the button
    carries a reference."""
    await bot.ask(USER, USER, "/watchlist add AAPL")
    await bot.ask(USER, USER, "/watchlist")
    await press(bot, USER, last_message(bot, USER), "Remove AAPL")
    [page] = await bot.ask(ADMIN, ADMIN, f"/history telegram:{USER} 1")
    older_command = page.splitlines()[-1].removeprefix("Older: ")
    assert len(older_command.encode()) > 64 and "telegram:cb:" in older_command
    message = last_message(bot, ADMIN)
    assert older_command not in data_of(bot, ADMIN, message, "Older")
    _, [older] = await press(bot, ADMIN, message, "Older", user=ADMIN)
    assert "Added AAPL" in older and "Removed AAPL" not in older
