"""Button data (adapters/buttons.py): bound to the user who got the reply, within the
platform's limit; a command too long for it is kept for this run and expires with it."""

from __future__ import annotations

from adapters.buttons import EXPIRED, NOT_FOR_YOU, ButtonKey
from bot.messages import Action

SHORT = Action("Remove AAPL", "/watchlist remove AAPL")
LONG = Action("Older", "/history 0123456789ab 20 telegram:cb:4300000000100007002:watchlist")


def data_of(key: ButtonKey, action: Action, user: str = "42", limit: int = 64) -> str:
    [button] = key.buttons((action,), user, data_limit=limit, label_limit=64)
    return button.data


def test_a_press_runs_only_for_the_user_it_was_made_for() -> None:
    key = ButtonKey("123:token")
    data = data_of(key, SHORT)
    assert len(data.encode()) <= 64 and data.endswith(SHORT.command)
    assert key.press(data, "42").command == SHORT.command
    stranger = key.press(data, "43")
    assert stranger.command is None and stranger.refusal == NOT_FOR_YOU
    # Another bot's key (another token) does not accept it; tampering breaks the tag.
    assert ButtonKey("456:other").press(data, "42").command is None
    assert key.press(data.replace("AAPL", "TSLA"), "42").command is None
    assert key.press("garbage", "42").command is None


def test_a_long_command_is_kept_for_this_run() -> None:
    key = ButtonKey("123:token")
    data = data_of(key, LONG)
    assert len(data.encode()) <= 64 and LONG.command not in data
    assert key.press(data, "42").command == LONG.command
    assert key.press(data, "43").refusal == NOT_FOR_YOU
    # Where it fits (Discord's 100), it is carried, not kept.
    assert data_of(key, LONG, limit=100).endswith(LONG.command)
    # After a restart (a new key, same token) the kept command is gone: the presser is told.
    restarted = ButtonKey("123:token")
    assert restarted.press(data, "42").command is None
    assert restarted.press(data, "42").refusal == EXPIRED


def test_kept_commands_are_bounded() -> None:
    key = ButtonKey("123:token", keep_at_most=2)
    first, *_ = [data_of(key, LONG) for _ in range(3)]
    assert key.press(first, "42").refusal == EXPIRED
