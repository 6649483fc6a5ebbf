"""How the offline model reads a message: a table of everyday phrasings."""

from __future__ import annotations

import pytest

from agents.intents import Intent, read_intent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tell me a joke", Intent("joke")),
        ("Tell me a joke about Python", Intent("joke", topic="python")),
        ("got any java jokes?", Intent("joke", topic="java")),
        ("make me laugh", Intent("joke")),
        ("tell me a joke about stocks", Intent("joke", topic="stocks")),
        ("share a nerdy fact", Intent("fact")),
        ("a fact about math please", Intent("fact", topic="math")),
        ("what is AAPL trading at", Intent("quote", symbols=("AAPL",))),
        ("how is apple doing today?", Intent("quote", symbols=("AAPL",))),
        ("$tsla?", Intent("quote", symbols=("TSLA",))),
        ("price of nvda", Intent("quote", symbols=("NVDA",))),
        ("What's the price of MSFT and GOOGL?", Intent("quote", symbols=("MSFT", "GOOGL"))),
        ("how is the market today?", Intent("quote")),
        ("add apple to my watchlist", Intent("watch_add", symbols=("AAPL",))),
        ("put NVDA on my watch list", Intent("watch_add", symbols=("NVDA",))),
        ("drop tsla and MSFT from my watchlist", Intent("watch_remove", symbols=("TSLA", "MSFT"))),
        ("add brk.b and Microsoft to my watchlist", Intent("watch_add", symbols=("BRK.B", "MSFT"))),
        ("add something to my watchlist", Intent("watch_add")),
        ("what's on my watchlist", Intent("watch_show")),
        ("how is my watchlist doing?", Intent("watch_quotes")),
        ("Hi, I am Bob", Intent("chat", name="Bob")),
        ("my name is Ada Lovelace", Intent("chat", name="Ada Lovelace")),
        ("my name is bob and i like jokes", Intent("joke", name="bob")),
        ("call me Maverick please", Intent("chat", name="Maverick")),
        ("call me later, ok?", Intent("chat")),
        ("I am fine thanks", Intent("chat")),
        ("hello", Intent("chat")),
    ],
)
def test_read_intent(text: str, expected: Intent) -> None:
    assert read_intent(text) == expected
