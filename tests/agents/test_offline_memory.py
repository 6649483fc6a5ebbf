"""The offline model's memory planning and answers, from requests built by hand as the runner
builds them: the manager's tool schemas, the memory block placed just before the user's
message, a compaction summary, earlier messages, and the profile in state."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from agents.memory import MEMORY_HEADER, NO_MEMORIES
from agents.memory_talk import slot_of, spoken, third_person
from agents.memory_tools import memory_tools
from agents.model import ModelRequest
from agents.offline import respond
from agents.tools import name_tools

MANAGER_TOOLS = tuple(t.schema() for t in name_tools() + memory_tools())


def block(*memories: tuple[str, str]) -> dict[str, str]:
    if not memories:
        return {"role": "system", "content": NO_MEMORIES}
    lines = [MEMORY_HEADER] + [f"- [{i}] {text}" for i, text in memories]
    return {"role": "system", "content": "\n".join(lines)}


def request(
    text: str,
    memories: Sequence[tuple[str, str]] = (),
    *,
    before: Sequence[Mapping[str, Any]] = (),
    after: Sequence[Mapping[str, Any]] = (),
    state: Mapping[str, Any] | None = None,
    tools: tuple[Mapping[str, Any], ...] = MANAGER_TOOLS,
) -> ModelRequest:
    messages = (*before, block(*memories), {"role": "user", "content": text}, *after)
    return ModelRequest("manager", "You are the manager.", messages, tools, state=state or {})


def calls(text: str, memories: Sequence[tuple[str, str]] = (), **kw: Any) -> list[tuple[str, Any]]:
    response = respond(request(text, memories, **kw))
    return [(c.name, dict(c.arguments)) for c in response.tool_calls]


def answer(text: str, memories: Sequence[tuple[str, str]] = (), **kw: Any) -> str:
    response = respond(request(text, memories, **kw))
    assert not response.tool_calls
    return response.text


def results(*pairs: tuple[str, dict[str, Any], Any]) -> list[dict[str, Any]]:
    """The assistant's tool calls and the tools' results, as the runner replays them."""
    call_list = [
        {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
        for i, (n, a, _) in enumerate(pairs)
    ]
    out: list[dict[str, Any]] = [{"role": "assistant", "content": None, "tool_calls": call_list}]
    for i, (_, _, result) in enumerate(pairs):
        out.append({"role": "tool", "tool_call_id": f"c{i}", "content": json.dumps(result)})
    return out


DOG = ("a1b2c3d4e5f6", "Dog: Rex")
LISBON = ("0f0f0f0f0f0f", "Lives in Lisbon")
HIKING = ("111111111111", "Likes hiking")


# -- planning ---------------------------------------------------------------------------------
def test_a_new_fact_is_remembered() -> None:
    assert calls("my dog is Rex") == [("remember", {"fact": "Dog: Rex"})]
    assert calls("I live in Lisbon", [DOG]) == [("remember", {"fact": "Lives in Lisbon"})]


def test_a_fact_in_a_slot_already_filled_updates_that_memory() -> None:
    assert calls("my dog is Max", [LISBON, DOG]) == [
        ("update_memory", {"memory_id": DOG[0], "fact": "Dog: Max"})
    ]
    assert calls("I moved to Porto", [DOG, LISBON]) == [
        ("update_memory", {"memory_id": LISBON[0], "fact": "Lives in Porto"})
    ]
    # a feeling about the same thing: the latest word wins
    assert calls("I hate hiking", [HIKING]) == [
        ("update_memory", {"memory_id": HIKING[0], "fact": "Hates hiking"})
    ]


def test_a_memory_an_extraction_wrote_in_the_same_slot_is_updated_too() -> None:
    assert calls("I live in Porto", [("abcabcabcabc", "lives in Lisbon with two cats")]) == [
        ("update_memory", {"memory_id": "abcabcabcabc", "fact": "Lives in Porto"})
    ]


def test_a_fact_already_known_calls_nothing() -> None:
    assert answer("I live in Lisbon!", [LISBON]) == "I know: you live in Lisbon."


def test_forget_picks_the_best_match_and_nothing_without_one() -> None:
    memories = [DOG, LISBON, HIKING]
    assert calls("forget that I live in Lisbon", memories) == [
        ("forget_memory", {"memory_id": LISBON[0]})
    ]
    assert calls("forget about my dog", memories) == [("forget_memory", {"memory_id": DOG[0]})]
    assert calls("forget that I'm allergic to cats", memories) == []
    assert answer("forget that I'm allergic to cats", memories).startswith(
        "I don't have a memory like that."
    )


def test_forget_that_alone_means_the_previous_message() -> None:
    before = [
        {"role": "user", "content": "I like hiking"},
        {"role": "assistant", "content": "Got it, I'll remember that you like hiking."},
    ]
    assert calls("forget that", [DOG, HIKING], before=before) == [
        ("forget_memory", {"memory_id": HIKING[0]})
    ]


def test_forget_name_and_dislikes() -> None:
    assert calls("forget my name") == [("forget_name", {})]
    assert calls("stop telling me python jokes") == [("add_dislike", {"topic": "python"})]
    assert answer("stop telling me jokes") == (
        "Okay! I'll only tell jokes or facts when you ask for one."
    )


def test_without_the_memory_tools_it_says_so() -> None:
    no_memory = tuple(t.schema() for t in name_tools())
    assert answer("my dog is Rex", tools=no_memory).startswith("I can't change what I remember")


def test_the_names_own_tool_runs_beside_remember() -> None:
    assert calls("I'm Ada and I live in Paris") == [
        ("set_user_name", {"name": "Ada"}),
        ("remember", {"fact": "Lives in Paris"}),
    ]


# -- answers ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("what is my dog?", "Your dog is Rex."),
        ("what's my dog's name?", "Your dog is Rex."),
        ("what is my dog called?", "Your dog is Rex."),
        ("where do I live?", "You live in Lisbon."),
    ],
)
def test_questions_are_answered_from_the_block(question: str, expected: str) -> None:
    assert answer(question, [HIKING, LISBON, DOG]) == expected


def test_a_question_the_block_cannot_answer_searches_then_answers() -> None:
    assert calls("where do I work?", [DOG]) == [("search_memories", {"query": "works work job"})]
    found = {"memories": [{"id": "999999999999", "text": "Works at CERN"}]}
    after = results(("search_memories", {"query": "works work job"}, found))
    assert answer("where do I work?", [DOG], after=after) == "You work at CERN."
    after = results(("search_memories", {"query": "works work job"}, {"memories": []}))
    assert answer("where do I work?", [DOG], after=after) == (
        "You haven't told me where you work yet."
    )


def test_what_do_you_know_about_me_lists_the_profile_and_the_memories() -> None:
    state = {
        "user:name": "Ada",
        "user:joke_topics": ["java"],
        "user:dislikes": ["python"],
        "user:stock_watchlist": ["AAPL", "MSFT"],
    }
    assert answer("what do you know about me?", [DOG, LISBON], state=state).splitlines() == [
        "Here's what I know about you:",
        "- Your name is Ada",
        "- Favourite joke topics: java",
        "- Topics you don't want jokes or facts about: python",
        "- Your watchlist: AAPL, MSFT",
        "- Your dog is Rex",
        "- You live in Lisbon",
        "(/memory lists every memory.)",
    ]
    assert answer("what do you remember about me?").startswith("I don't know anything")


def test_what_did_i_tell_you_earlier_uses_summary_messages_and_memories() -> None:
    before = [
        {"role": "system", "content": "Summary of the earlier conversation: Ada asked for AAPL."},
        {"role": "user", "content": "I'm planning a trip to Japan"},
        {"role": "assistant", "content": "Nice!"},
        {"role": "user", "content": "how are you?"},
    ]
    text = answer("what did I tell you last time?", [DOG], before=before)
    assert text == (
        'Earlier you told me:\n- "I\'m planning a trip to Japan"\n\n'
        "Before that: Ada asked for AAPL.\n\n"
        "And I remember:\n- Your dog is Rex"
    )
    assert answer("what did I tell you earlier?") == (
        "You haven't told me anything yet that I kept."
    )


def test_results_are_worded() -> None:
    after = results(("remember", {"fact": "Dog: Rex"}, {"ok": True, "remembered": "Dog: Rex"}))
    assert respond(request("my dog is Rex", after=after)).text == (
        "Got it, I'll remember that your dog is Rex."
    )
    refused = {"error": "too long: a memory holds at most 300 characters"}
    after = results(("remember", {"fact": "x"}, refused))
    assert respond(request("remember that x", after=after)).text == (
        "Sorry, too long: a memory holds at most 300 characters."
    )


# -- wording helpers --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("memory", "said", "slot"),
    [
        ("Dog: Rex", "your dog is Rex", "dog"),
        ("Lives in Lisbon", "you live in Lisbon", "lives in"),
        ("Works for the UN", "you work for the UN", "works at"),
        ("Works as a nurse", "you work as a nurse", "works as"),
        ("Allergic to peanuts", "you're allergic to peanuts", None),
        ("Loves jazz", "you love jazz", "feels about jazz"),
        ("Is vegetarian", "you're vegetarian", None),
        ("Has a cat called Pixel", "you have a cat called Pixel", None),
        ("Their boss is strict", "your boss is strict", None),
    ],
)
def test_memories_are_said_back_to_their_user(memory: str, said: str, slot: str | None) -> None:
    assert spoken(memory) == said
    assert slot_of(memory) == slot


def test_third_person() -> None:
    assert third_person("I have a meeting on Friday") == "Has a meeting on Friday"
    assert third_person("I go swimming on Mondays") == "Goes swimming on Mondays"
    assert third_person("I'm vegetarian") == "Is vegetarian"
    assert third_person("the key is under my mat") == "The key is under their mat"


def test_what_the_user_typed_is_shown_as_typed_not_as_markdown() -> None:
    memory = ("222222222222", "Favourite emoticon: *_*")
    assert answer("what is my favourite emoticon?", [memory]) == (
        r"Your favourite emoticon is \*\_\*."
    )
    before = [{"role": "user", "content": "my code is in `main.py` [draft]"}]
    assert r'"my code is in \`main.py\` \[draft\]"' in answer(
        "what did I tell you earlier?", before=before
    )


def test_questions_worded_otherwise_find_every_memory_that_answers() -> None:
    peanuts, cats = ("333333333333", "Allergic to peanuts"), ("444444444444", "Allergic to cats")
    assert answer("what am I allergic to?", [DOG, peanuts, LISBON, cats]) == (
        "You told me: you're allergic to peanuts; you're allergic to cats."
    )
    assert answer("what do I like?", [DOG, HIKING]) == "You told me: you like hiking."
    nurse = ("555555555555", "Works as a nurse")
    assert answer("what do I do for a living?", [nurse]) == "You work as a nurse."
    assert answer("what is my job?", [DOG, nurse]) == "You told me: you work as a nurse."
    assert calls("what are my allergies?", [DOG]) == [
        ("search_memories", {"query": "allergic allergy allergies"})
    ]
