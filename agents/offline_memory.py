"""The offline model's memory: what a memory intent asks of the tools, and the answers it writes
itself.

It reads what every model reads: the turn's memory block (agents/memory.py's format: the
memories most relevant to the message, then the most recent), the compaction summary, the
conversation's earlier messages, and the user's profile (state). "my dog is Max" after "my dog
is Rex" updates that memory rather than adding a second; "forget that ..." forgets the best
match; questions are answered from what is there, never from anything invented.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.history import SUMMARY_INTRO
from agents.intents import Intent, read_intent
from agents.memory import MEMORY_HEADER
from agents.memory_talk import same_text, slot_of, spoken, words
from agents.model import Message
from agents.profile import (
    DISLIKES_KEY,
    JOKE_TOPICS_KEY,
    NAME_KEY,
    NERD_TOPICS_KEY,
    WATCHLIST_KEY,
    as_list,
)
from agents.replies import literal

SUMMARY_PREFIX = SUMMARY_INTRO.strip()  # agents/history.py writes the summary message
MEMORY_KINDS = frozenset(
    {"remember", "forget", "forget_name", "forget_all", "dislike", "about_me", "ask", "earlier"}
)
# The answers that tell the user's memories and profile back: private in a shared chat.
TELLS_MEMORIES = frozenset({"about_me", "ask", "earlier"})
EARLIER_SHOWN = 5  # earlier messages quoted back
QUOTED_CHARS = 120  # of each
SUMMARY_SHOWN = 600
_LINE = re.compile(r"^- \[([^\]\s]+)\] (.+)$")
Call = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Known:
    """One memory as the model was shown it."""

    id: str
    text: str


# -- reading the request ----------------------------------------------------------------------
def memory_block(messages: Sequence[Message]) -> list[Known]:
    """The memories of the turn's block (the last one in the request), most relevant first."""
    for message in reversed(messages):
        content = str(message.get("content") or "")
        if message.get("role") == "system" and content.startswith(MEMORY_HEADER):
            lines = (_LINE.match(line) for line in content.splitlines()[1:])
            return [Known(m.group(1), m.group(2)) for m in lines if m]
    return []


def summary(messages: Sequence[Message]) -> str:
    for message in reversed(messages):
        content = str(message.get("content") or "")
        if message.get("role") == "system" and content.startswith(SUMMARY_PREFIX):
            return content.removeprefix(SUMMARY_PREFIX).strip()
    return ""


def earlier_messages(messages: Sequence[Message]) -> list[str]:
    """The user's messages before the current one, oldest first."""
    said = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
    return said[:-1]


def searched(results: Sequence[tuple[str, Any]]) -> list[Known]:
    """Memories a search_memories call returned this turn."""
    found: list[Known] = []
    for name, result in results:
        if name == "search_memories" and isinstance(result, Mapping):
            for item in result.get("memories") or []:
                if isinstance(item, Mapping) and item.get("id") and item.get("text"):
                    found.append(Known(str(item["id"]), str(item["text"])))
    return found


# -- planning ---------------------------------------------------------------------------------
def memory_calls(
    intent: Intent, tools: set[str], messages: Sequence[Message], asked: set[str]
) -> list[Call]:
    """The memory tools a memory intent calls now ([] when there is nothing to change)."""
    if intent.kind not in MEMORY_KINDS:
        return []
    block = memory_block(messages)
    if intent.kind == "remember" and "remember" in tools:
        return [c for fact in intent.facts if (c := _keep(fact, block)) is not None]
    if intent.kind == "forget" and "forget_memory" in tools:
        best = best_match(_forget_query(intent, messages), block)
        return [("forget_memory", {"memory_id": best.id})] if best else []
    if intent.kind == "forget_name" and "forget_name" in tools:
        return [("forget_name", {})]
    if intent.kind == "dislike" and intent.topic and "add_dislike" in tools:
        return [("add_dislike", {"topic": intent.topic})]
    searchable = "search_memories" in tools and "search_memories" not in asked
    if intent.kind == "ask" and searchable and not _answered(intent.about, block):
        return [("search_memories", {"query": _search_words(intent.about)})]
    return []


def _answered(about: str, block: Sequence[Known]) -> bool:
    """Whether the block holds an answer (else the memories are searched for one)."""
    return _answer_of(about, block) is not None or bool(best_matches(_search_words(about), block))


def _keep(fact: str, block: Sequence[Known]) -> Call | None:
    """remember, or update_memory when a memory fills the same slot; None if already known."""
    if any(same_text(fact, known.text) for known in block):
        return None
    slot = slot_of(fact)
    same = next((k for k in block if slot and slot_of(k.text) == slot), None)
    if same is not None:
        return ("update_memory", {"memory_id": same.id, "fact": fact})
    return ("remember", {"fact": fact})


def _forget_query(intent: Intent, messages: Sequence[Message]) -> str:
    """What "forget that ..." is about; "forget that" alone means the previous message."""
    if intent.about:
        return intent.about
    earlier = earlier_messages(messages)
    return earlier[-1] if earlier else ""


def best_match(query: str, block: Sequence[Known]) -> Known | None:
    """The memory sharing the most words with `query` (the first, most relevant, on a tie)."""
    best = best_matches(query, block)
    return best[0] if best else None


def best_matches(query: str, block: Sequence[Known]) -> list[Known]:
    """The memories sharing the most words with `query` (none when none shares any), in the
    block's order, without repeats."""
    wanted = words(query)
    scores = {k.id: len(wanted & words(k.text)) for k in block}
    top = max(scores.values(), default=0)
    seen: set[str] = set()
    found = []
    for known in block:
        if top and scores[known.id] == top and known.id not in seen:
            seen.add(known.id)
            found.append(known)
    return found


# What to search for when asked about a slot or a thing the memories word differently.
_SEARCH_WORDS = {
    "lives in": "lives live living home",
    "works at": "works work job",
    "works as": "works work job",
    "is from": "from",
    "allergies": "allergic allergy allergies",
    "allergy": "allergic allergy allergies",
    "job": "works work job",
    "likes": "likes loves enjoys adores",
    "hobbies": "likes loves enjoys hobby hobbies",
}


def _search_words(about: str) -> str:
    return _SEARCH_WORDS.get(about, about)


# -- answering --------------------------------------------------------------------------------
def memory_answer(
    intent: Intent,
    tools: set[str],
    messages: Sequence[Message],
    state: Mapping[str, Any],
    results: Sequence[tuple[str, Any]] = (),
) -> str | None:
    """The answer to a memory intent that is not a tool's result to report, or None."""
    if intent.kind not in MEMORY_KINDS:
        return None
    block = memory_block(messages)
    if intent.kind == "ask":
        return answer_question(intent.about, block + searched(results))
    if intent.kind == "about_me":
        return about_me(block, state)
    if intent.kind == "earlier":
        return earlier(messages, block)
    if intent.kind == "forget_all":
        return (
            "To erase all your memories, send /memory clear; to erase everything I keep about "
            "you, /forgetme. Both ask you to confirm first."
        )
    if intent.kind in ("remember", "forget", "forget_name", "dislike") and not results:
        return _nothing_to_do(intent, tools, block)
    return None


def _nothing_to_do(intent: Intent, tools: set[str], block: Sequence[Known]) -> str:
    """Why a memory intent made no tool call."""
    if intent.kind == "dislike" and not intent.topic:
        return "Okay! I'll only tell jokes or facts when you ask for one."
    needed = {"remember": "remember", "forget": "forget_memory", "forget_name": "forget_name"}
    if needed.get(intent.kind, "add_dislike") not in tools:
        return "I can't change what I remember here: memory is switched off for this bot."
    if intent.kind == "remember":
        known = [said(k.text) for fact in intent.facts for k in block if same_text(fact, k.text)]
        return f"I know: {'; '.join(known) or 'that'}."
    if intent.kind == "forget":
        return (
            "I don't have a memory like that. /memory lists what I remember, and "
            "/memory forget N forgets one."
        )
    return "Okay."


_NOT_TOLD = {
    "lives in": "where you live",
    "works at": "where you work",
    "works as": "what you do for a living",
    "is from": "where you are from",
    "allergies": "about any allergies",
    "likes": "what you like",
}


def answer_question(about: str, known: Sequence[Known]) -> str:
    found = _answer_of(about, known)
    if found is not None:
        return found
    best = best_matches(_search_words(about), known)
    if best:
        return f"You told me: {'; '.join(said(k.text) for k in best)}."
    if about in _NOT_TOLD:
        return f"You haven't told me {_NOT_TOLD[about]} yet."
    thing = literal(about)
    return f"I don't know your {thing} yet. Tell me (\"my {thing} is ...\") and I'll remember it."


def _answer_of(about: str, known: Sequence[Known]) -> str | None:
    """A memory in the slot asked about ("dog", or "dog" for "dog's name"), said back."""
    slots = {about, re.sub(r"(?:'s)?\s+(?:name|called)$", "", about)}
    match = next((k for k in known if slot_of(k.text) in slots), None)
    return f"{_capital(said(match.text))}." if match else None


def about_me(block: Sequence[Known], state: Mapping[str, Any]) -> str:
    lines = profile_lines(state) + _listed(block)
    if not lines:
        return (
            'I don\'t know anything about you yet. Tell me things like "my dog is Rex" or '
            '"I live in Lisbon" and I\'ll remember them.'
        )
    return "\n".join(["Here's what I know about you:", *lines, "(/memory lists every memory.)"])


def profile_lines(state: Mapping[str, Any]) -> list[str]:
    """The profile kept in state, one line per part that is set."""
    name = state.get(NAME_KEY)
    lines = [f"- Your name is {name}"] if name else []
    for key, label in (
        (JOKE_TOPICS_KEY, "Favourite joke topics"),
        (NERD_TOPICS_KEY, "Favourite nerd topics"),
        (DISLIKES_KEY, "Topics you don't want jokes or facts about"),
        (WATCHLIST_KEY, "Your watchlist"),
    ):
        values = as_list(state.get(key))
        if values:
            lines.append(f"- {label}: {', '.join(values)}")
    return lines


def earlier(messages: Sequence[Message], block: Sequence[Known]) -> str:
    """What the user said before: this conversation's messages, the summary of what came
    before them, and the memories."""
    told = [m for m in earlier_messages(messages) if _told(m)]
    parts = []
    if told:
        quoted = [f'- "{literal(_cut(m, QUOTED_CHARS))}"' for m in told[-EARLIER_SHOWN:]]
        parts.append("\n".join(["Earlier you told me:", *quoted]))
    before = summary(messages)
    if before:
        parts.append(f"Before that: {literal(_cut(before, SUMMARY_SHOWN))}")
    if block:
        parts.append("\n".join(["And I remember:", *_listed(block)]))
    return "\n\n".join(parts) or "You haven't told me anything yet that I kept."


def _told(message: str) -> bool:
    """Whether a message told something (a fact, a story), not asked or greeted."""
    kind = read_intent(message).kind
    if kind == "remember":
        return True
    return kind == "chat" and len(message.split()) >= 4 and not message.rstrip().endswith("?")


def _listed(block: Sequence[Known]) -> list[str]:
    return [f"- {_capital(said(k.text))}" for k in block]


def said(memory: str) -> str:
    """A memory said back to its user, shown as written inside the Markdown answer."""
    return literal(spoken(memory))


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
