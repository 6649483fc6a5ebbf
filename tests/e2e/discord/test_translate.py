"""The small pure parts of the Discord adapter: mention stripping and command lines."""

from __future__ import annotations

from adapters.discord.commands import command_line
from adapters.discord.translate import strip_mentions
from bot.messages import CommandOption, CommandSpec

HISTORY = CommandSpec(
    "history",
    "a user's events",
    admin=True,
    options=(
        CommandOption("user", "who"),
        CommandOption("limit", "how many", type="int"),
        CommandOption("before", "older than"),
    ),
)


def test_the_bots_mentions_are_stripped_and_others_kept() -> None:
    assert strip_mentions("<@42> tell me a joke", 42, None) == "tell me a joke"
    assert strip_mentions("hey <@!42>, what's AAPL at?", 42, None) == "hey, what's AAPL at?"
    assert strip_mentions("<@42>: tell <@42> a joke", 42, None) == "tell a joke"
    assert strip_mentions("<@&7> /watchlist add AAPL", 42, 7) == "/watchlist add AAPL"
    assert strip_mentions("ask <@43> about it", 42, None) == "ask <@43> about it"
    assert strip_mentions("<@42>\nline two", 42, None) == "line two"


def test_typed_options_become_the_cores_command_line() -> None:
    assert command_line(HISTORY, {}) == "/history"
    assert command_line(HISTORY, {"user": "discord:5", "limit": 10}) == "/history discord:5 10"
    # A gap: the core reads a lone short number as the limit.
    assert command_line(HISTORY, {"user": None, "limit": 10}) == "/history 10"
    assert command_line(HISTORY, {"user": "  two  words "}) == "/history two words"
