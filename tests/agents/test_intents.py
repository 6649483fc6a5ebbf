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
        # memories (agents/memory_talk.py)
        ("remember that my sister is called Ana", Intent("remember", facts=("Sister: Ana",))),
        ("please remember I'm vegetarian", Intent("remember", facts=("Is vegetarian",))),
        ("remember that I have two cats", Intent("remember", facts=("Has two cats",))),
        ("my dog is Rex", Intent("remember", facts=("Dog: Rex",))),
        ("my dog's name is Rex", Intent("remember", facts=("Dog: Rex",))),
        ("My favourite colour is blue.", Intent("remember", facts=("Favourite colour: blue",))),
        ("I live in Lisbon", Intent("remember", facts=("Lives in Lisbon",))),
        ("I moved to Porto", Intent("remember", facts=("Lives in Porto",))),
        ("I work at Google", Intent("remember", facts=("Works at Google",))),
        ("I work as a nurse", Intent("remember", facts=("Works as a nurse",))),
        ("I'm allergic to peanuts", Intent("remember", facts=("Allergic to peanuts",))),
        ("I like hiking", Intent("remember", facts=("Likes hiking",))),
        ("I love python", Intent("remember", facts=("Loves python",))),
        ("I hate mondays", Intent("remember", facts=("Hates mondays",))),
        (
            "Hi, my dog is Rex and I live in Lisbon",
            Intent("remember", facts=("Dog: Rex", "Lives in Lisbon")),
        ),
        ("I'm Ada and I work at CERN", Intent("remember", name="Ada", facts=("Works at CERN",))),
        ("forget that I live in Lisbon", Intent("forget", about="I live in Lisbon")),
        ("forget about my dog", Intent("forget", about="my dog")),
        ("forget that", Intent("forget")),
        ("forget my name", Intent("forget_name")),
        ("forget everything", Intent("forget_all")),
        ("what do you remember about me?", Intent("about_me")),
        ("What do you know about me", Intent("about_me")),
        ("what is my dog?", Intent("ask", about="dog")),
        ("what's my dog's name?", Intent("ask", about="dog's name")),
        ("what's my favourite colour?", Intent("ask", about="favourite colour")),
        ("where do I live?", Intent("ask", about="lives in")),
        ("where do I work?", Intent("ask", about="works at")),
        ("what did I tell you earlier?", Intent("earlier")),
        ("What did I tell you last time?", Intent("earlier")),
        ("stop telling me python jokes", Intent("dislike", topic="python")),
        ("no more space facts please", Intent("dislike", topic="space")),
        ("stop telling me jokes about java", Intent("dislike", topic="java")),
        ("stop telling me jokes", Intent("dislike")),
        # not memories, not topics: chat, names and requests stay what they were
        ("what's my name?", Intent("chat")),
        ("what's my watchlist doing?", Intent("watch_quotes")),
        ("I love you", Intent("chat")),
        ("I like it", Intent("chat")),
        ("forget it", Intent("chat")),
        ("remember to drink water", Intent("chat")),
        ("my dog is Rex?", Intent("chat")),
        ("my TSLA shares are up", Intent("quote", symbols=("TSLA",))),
        ("I like the way you think", Intent("chat")),
        ("I hate when it rains", Intent("chat")),
        ("I love your answers", Intent("chat")),
        ("my point is that it's slow", Intent("chat")),
        ("my question is whether it works", Intent("chat")),
        ("remember this", Intent("chat")),
        ("remember when we talked about cats", Intent("chat")),
        ("remember my birthday is March 3rd", Intent("remember", facts=("Birthday: March 3rd",))),
        ("can you remember that my dog is Rex?", Intent("remember", facts=("Dog: Rex",))),
        ("do you know where I live?", Intent("ask", about="lives in")),
        ("tell me a nerd fact", Intent("fact")),
        ("a joke about the weather", Intent("joke", topic="weather")),
        ("tell me a fact about my cat please", Intent("fact", topic="cat")),
        ("tell me a joke about that", Intent("joke")),
        ("tell me a nerdy fact", Intent("fact")),
        ("a geeky joke please", Intent("joke")),
        ("tell me a joke, I'm thinking about dinner", Intent("joke")),
        ("call me Countess Lovelace", Intent("chat", name="Countess Lovelace")),
        ("my name is Ada King Lovelace", Intent("chat", name="Ada King Lovelace")),
    ],
)
def test_read_intent(text: str, expected: Intent) -> None:
    assert read_intent(text) == expected


def test_a_paste_is_neither_a_topic_nor_a_memory() -> None:
    paste = "here is a joke about databases " + "lorem ipsum dolor sit amet " * 400
    assert len(paste) > 10_000
    assert read_intent(paste) == Intent("joke")
    assert read_intent("my notes are " + "blah " * 2000) == Intent("chat")
    assert read_intent("I like " + "very " * 100 + "long things") == Intent("chat")
