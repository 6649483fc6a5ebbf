"""The offline model and the user's memories, through the real runner, team, tools and store
(both backends): every phrase issue 14 lists, and the noise it must not store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agents import OfflineModel
from agents.compaction import Compaction, OfflineSummariser
from agents.quotes import QuoteProvider
from agents.runner import Runner
from storage import Store, open_store
from storage.types import Memory
from tests.agents.runner_helpers import APP, make_runner, run
from tests.transcript import final_text, transcript


@pytest.fixture
async def store(any_db_url: str) -> AsyncIterator[Store]:
    async with await open_store(any_db_url) as opened:
        yield opened


@pytest.fixture
async def runner(store: Store, quotes: QuoteProvider) -> AsyncIterator[Runner]:
    yield make_runner(store, OfflineModel(), quotes)


async def memories(store: Store, user: str = "u1") -> list[str]:
    return [m.text for m in await store.memories(APP, user)]


async def stored(store: Store, user: str = "u1") -> list[Memory]:
    return await store.memories(APP, user)


async def state(store: Store, user: str = "u1") -> dict[str, object]:
    session = await store.get_session(APP, user, "s1")
    assert session is not None
    return dict(session.state)


async def say(runner: Runner, text: str, user: str = "u1") -> str:
    return final_text(await run(runner, text, user=user))


@pytest.mark.parametrize(
    ("text", "memory", "spoken"),
    [
        (
            "remember that I have a meeting on Friday",
            "Has a meeting on Friday",
            "you have a meeting on Friday",
        ),
        ("my favourite colour is blue", "Favourite colour: blue", "your favourite colour is blue"),
        ("I live in Lisbon", "Lives in Lisbon", "you live in Lisbon"),
        ("I work at the Gulbenkian", "Works at the Gulbenkian", "you work at the Gulbenkian"),
        ("I work as a nurse", "Works as a nurse", "you work as a nurse"),
        ("I'm allergic to peanuts", "Allergic to peanuts", "you're allergic to peanuts"),
        ("I like hiking", "Likes hiking", "you like hiking"),
        ("I love sourdough bread", "Loves sourdough bread", "you love sourdough bread"),
        ("I hate mondays", "Hates mondays", "you hate mondays"),
    ],
)
async def test_a_statement_is_remembered_through_the_remember_tool(
    runner: Runner, store: Store, text: str, memory: str, spoken: str
) -> None:
    events = await run(runner, text)
    assert transcript(events)[1] == ("manager", f"call remember(fact={memory!r})")
    assert events[-1].author == "manager"
    assert final_text(events) == f"Got it, I'll remember that {spoken}."
    assert await memories(store) == [memory]


async def test_a_new_value_for_the_same_thing_updates_the_memory(
    runner: Runner, store: Store
) -> None:
    await say(runner, "my dog is Rex")
    [rex] = await stored(store)
    events = await run(runner, "my dog is Max")
    assert transcript(events)[1] == (
        "manager",
        f"call update_memory(memory_id={rex.id!r}, fact='Dog: Max')",
    )
    assert final_text(events) == "Got it, I've updated that: your dog is Max."
    assert await memories(store) == ["Dog: Max"]
    await say(runner, "I live in Lisbon")
    assert await say(runner, "I moved to Porto") == "Got it, I've updated that: you live in Porto."
    assert await memories(store) == ["Dog: Max", "Lives in Porto"]


async def test_the_same_fact_twice_is_kept_once(runner: Runner, store: Store) -> None:
    await say(runner, "I live in Lisbon")
    events = await run(runner, "I live in Lisbon.")
    assert [e.author for e in events] == ["user", "manager"]  # no tool call
    assert final_text(events) == "I know: you live in Lisbon."
    assert await memories(store) == ["Lives in Lisbon"]


async def test_two_facts_in_one_message(runner: Runner, store: Store) -> None:
    await say(runner, "Hi! My dog is Rex, and I live in Lisbon.")
    assert await memories(store) == ["Dog: Rex", "Lives in Lisbon"]


async def test_forget_that_forgets_the_best_match(runner: Runner, store: Store) -> None:
    for text in ("my dog is Rex", "I live in Lisbon", "I like hiking"):
        await say(runner, text)
    lisbon = next(m for m in await stored(store) if "Lisbon" in m.text)
    events = await run(runner, "forget that I live in Lisbon")
    assert ("manager", f"call forget_memory(memory_id={lisbon.id!r})") in transcript(events)
    assert final_text(events) == "Done, I've forgotten that."
    assert await memories(store) == ["Dog: Rex", "Likes hiking"]


async def test_forget_that_alone_forgets_what_was_just_said(runner: Runner, store: Store) -> None:
    await say(runner, "my dog is Rex")
    await say(runner, "I'm allergic to peanuts")
    assert await say(runner, "forget that") == "Done, I've forgotten that."
    assert await memories(store) == ["Dog: Rex"]


async def test_forget_what_was_never_told_changes_nothing(runner: Runner, store: Store) -> None:
    await say(runner, "my dog is Rex")
    events = await run(runner, "forget that I live in Narnia")
    assert [e.author for e in events] == ["user", "manager"]
    assert final_text(events).startswith("I don't have a memory like that.")
    assert await memories(store) == ["Dog: Rex"]


async def test_forget_my_name(runner: Runner, store: Store) -> None:
    await say(runner, "my name is Ada")
    events = await run(runner, "please forget my name")
    assert transcript(events)[1] == ("manager", "call forget_name()")
    assert final_text(events).startswith("Done, I've forgotten your name.")
    assert "user:name" not in await state(store)
    assert (await say(runner, "what's my name?")).startswith("I don't know your name yet")


async def test_stop_telling_me_python_jokes_is_a_dislike_and_no_joke(
    runner: Runner, store: Store
) -> None:
    await say(runner, "tell me a joke about python")
    events = await run(runner, "stop telling me python jokes")
    assert transcript(events) == [
        ("user", "stop telling me python jokes"),
        ("manager", "call add_dislike(topic='python')"),
        ("manager", 'add_dislike -> {"dislikes":["python"],"ok":true}'),
        ("manager", "Got it: no more python jokes or facts."),
    ]
    assert "funny_nerd" not in [e.author for e in events]
    user_state = await state(store)
    assert user_state["user:dislikes"] == ["python"]
    assert "python" not in user_state.get("user:joke_topics", [])
    for _ in range(5):
        assert "python" not in (await say(runner, "tell me a joke")).lower()


async def test_what_do_you_know_about_me_lists_profile_and_memories(
    runner: Runner, store: Store
) -> None:
    assert (await say(runner, "what do you know about me?")).startswith(
        "I don't know anything about you yet."
    )
    for text in ("call me Countess Lovelace", "tell me a fact about space", "my dog is Rex"):
        await say(runner, text)
    await say(runner, "I live in Lisbon")
    answer = await say(runner, "What do you remember about me?")
    lines = answer.splitlines()
    assert lines[0] == "Here's what I know about you:"
    assert "- Your name is Countess Lovelace" in lines
    assert "- Favourite nerd topics: space" in lines
    assert "- Your dog is Rex" in lines and "- You live in Lisbon" in lines


@pytest.mark.parametrize(
    ("told", "question", "answer"),
    [
        ("my dog is Rex", "what is my dog?", "Your dog is Rex."),
        ("my dog is Rex", "What's my dog's name?", "Your dog is Rex."),
        ("my favourite colour is blue", "what's my favourite colour?", "Your favourite colour"),
        ("I live in Lisbon", "where do I live?", "You live in Lisbon."),
        ("I work at the Gulbenkian", "where do I work?", "You work at the Gulbenkian."),
    ],
)
async def test_questions_are_answered_from_the_memories(
    runner: Runner, told: str, question: str, answer: str
) -> None:
    await say(runner, told)
    for i in range(6):  # more recent memories than the block's "recent" part holds
        await say(runner, f"my {['cat', 'car', 'boss', 'team', 'band', 'phone'][i]} is X{i}")
    assert (await say(runner, question)).startswith(answer)


async def test_what_am_i_allergic_to_finds_each_allergy_by_search(runner: Runner) -> None:
    for text in ("I'm allergic to peanuts", "I am allergic to cats"):
        await say(runner, text)
    for i in range(6):  # the allergies are no longer among the latest memories
        await say(runner, f"my {['car', 'boss', 'team', 'band', 'phone', 'book'][i]} is X{i}")
    # "allergies" is in none of them: the block (recalled with the message) has only the latest
    events = await run(runner, "what are my allergies?")
    assert transcript(events)[1] == (
        "manager",
        "call search_memories(query='allergic allergy allergies')",
    )
    for answer in (final_text(events), await say(runner, "what am I allergic to?")):
        assert answer.startswith("You told me: ")
        assert "you're allergic to peanuts" in answer and "you're allergic to cats" in answer


async def test_a_question_about_something_never_told(runner: Runner) -> None:
    assert (await say(runner, "what is my dog?")).startswith("I don't know your dog yet.")
    assert await say(runner, "where do I live?") == "You haven't told me where you live yet."


async def test_what_did_i_tell_you_earlier(runner: Runner) -> None:
    await say(runner, "my dog is Rex")
    await say(runner, "I'm planning a trip to Japan")
    await say(runner, "how are you?")
    answer = await say(runner, "what did I tell you earlier?")
    assert answer.startswith("Earlier you told me:")
    assert '- "I\'m planning a trip to Japan"' in answer and "how are you" not in answer
    assert "And I remember:\n- Your dog is Rex" in answer


async def test_memories_are_the_users_own(runner: Runner, store: Store) -> None:
    await say(runner, "my dog is Rex", user="u1")
    assert (await say(runner, "what is my dog?", user="u2")).startswith("I don't know")
    assert (await say(runner, "what do you know about me?", user="u2")).startswith(
        "I don't know anything"
    )
    assert await say(runner, "forget that my dog is Rex", user="u2") != "Done, I've forgotten that."
    assert await memories(store, "u1") == ["Dog: Rex"]


# -- no noise ---------------------------------------------------------------------------------
async def test_a_nerd_fact_stores_no_topic(runner: Runner, store: Store) -> None:
    await say(runner, "tell me a nerd fact")
    await say(runner, "tell me a joke")
    user_state = await state(store)
    assert "user:nerd_topics" not in user_state and "user:joke_topics" not in user_state
    assert await memories(store) == []


async def test_a_paste_is_not_a_topic_nor_a_memory(runner: Runner, store: Store) -> None:
    paste = "I like this joke about databases and " + "lorem ipsum dolor sit amet " * 370
    assert len(paste) > 10_000
    await say(runner, paste)
    await say(runner, "my notes are " + "blah " * 2000)
    user_state = await state(store)
    assert "user:joke_topics" not in user_state
    assert await memories(store) == []


async def test_call_me_stores_the_whole_name(runner: Runner, store: Store) -> None:
    assert (await say(runner, "call me Countess Lovelace")).startswith(
        "Nice to meet you, Countess Lovelace!"
    )
    assert (await state(store))["user:name"] == "Countess Lovelace"


@pytest.mark.parametrize(
    "text",
    ["I love you", "I like it", "how are you?", "what is the weather?", "forget it", "hello"],
)
async def test_chat_stores_nothing(runner: Runner, store: Store, text: str) -> None:
    events = await run(runner, text)
    assert [e.author for e in events] == ["user", "manager"]
    assert await memories(store) == []


async def test_what_did_i_tell_you_earlier_reaches_past_a_compaction(
    store: Store, quotes: QuoteProvider
) -> None:
    job = Compaction(store, OfflineSummariser(), after=6)
    runner = make_runner(store, OfflineModel(), quotes, after_turn=(job,))
    texts = ["I'm planning a trip to Japan", *(["tell me a joke", "thanks!"] * 5)]
    for i, text in enumerate(texts):
        await run(runner, text, invocation_id=f"t{i}")
        await runner.after_turn("u1", "s1", f"t{i}")
    answer = await say(runner, "what did I tell you last time?")
    assert "Before that:" in answer and "trip to Japan" in answer


async def test_a_replayed_turn_remembers_once(runner: Runner, store: Store) -> None:
    first = final_text(await run(runner, "my dog is Rex", invocation_id="telegram:7"))
    again = final_text(await run(runner, "my dog is Rex", invocation_id="telegram:7"))
    assert first == again == "Got it, I'll remember that your dog is Rex."
    assert await memories(store) == ["Dog: Rex"]
