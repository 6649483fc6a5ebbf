"""Jokes (from the maintained `pyjokes` collection) and nerdy facts, both topic-aware."""

from __future__ import annotations

import random
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import pyjokes

# Topics whose jokes use other words: "coding" jokes mention programmers, code, bugs...
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "programming": ("programmer", "code", "coding", "developer", "bug", "compiler"),
    "coding": ("programmer", "code", "developer", "bug"),
    "code": ("programmer", "code", "developer"),
    "computers": ("computer", "hardware", "cpu", "keyboard"),
    "databases": ("database", "sql", "table"),
    "db": ("database", "sql"),
    "js": ("javascript",),
    "cpp": ("c++",),
    "chuck": ("chuck norris",),
}

# Short, true, nerdy facts, tagged with topics.
FACTS: tuple[tuple[str, str], ...] = (
    ("python", "Python is named after Monty Python's Flying Circus, not the snake."),
    ("python", "`import this` in Python prints 'The Zen of Python', 19 aphorisms by Tim Peters."),
    ("python", "Python's first public release, version 0.9.0, was posted in February 1991."),
    (
        "programming",
        "The first 'computer bug' logged, in 1947, was a real moth found in a relay "
        "of the Harvard Mark II.",
    ),
    (
        "programming",
        "Ada Lovelace published what is considered the first computer program in "
        "1843, for Babbage's Analytical Engine.",
    ),
    (
        "programming",
        "Unix time started at 00:00:00 UTC on 1 January 1970; signed 32-bit counters "
        "of it overflow in January 2038.",
    ),
    (
        "computers",
        "A single modern CPU core can run billions of instructions per second, while "
        "the Apollo Guidance Computer's clock ran at about 2 MHz.",
    ),
    (
        "computers",
        "The word 'bit' is short for 'binary digit' and was popularised by Claude Shannon in 1948.",
    ),
    ("space", "A day on Venus (one rotation) is longer than its year."),
    ("space", "Light from the Sun takes about 8 minutes and 20 seconds to reach Earth."),
    ("space", "Neutron stars are so dense that a teaspoon of one would weigh billions of tonnes."),
    ("math", "There are more possible orderings of a 52-card deck (52!) than atoms on Earth."),
    ("math", "0.999... (repeating forever) is exactly equal to 1."),
    ("math", "In a room of just 23 people, the chance that two share a birthday exceeds 50%."),
    (
        "physics",
        "Photons have no rest mass, yet they carry momentum - that is how solar sails work.",
    ),
    (
        "physics",
        "GPS satellites must correct for both special and general relativity, or "
        "positions would drift by kilometres a day.",
    ),
    ("biology", "Octopuses have three hearts and blue, copper-based blood."),
    ("biology", "Tardigrades can survive the vacuum of space in a dried-out state."),
    (
        "history",
        "The first webcam watched a coffee pot at the University of Cambridge so people "
        "would not walk to an empty pot.",
    ),
    ("history", "Email predates the World Wide Web by about two decades."),
    ("chemistry", "Helium was discovered in the Sun's spectrum before it was found on Earth."),
    (
        "finance",
        "Ticker symbols are short because the first stock ticker (Edward Calahan, 1867) "
        "printed them on narrow paper tape over telegraph lines.",
    ),
)
TOPIC_CACHE = 512  # topics whose matching jokes are kept


@dataclass(frozen=True, slots=True)
class Pick:
    text: str
    topic: str | None  # the topic it matched, None when nothing matched and a random one is given
    matched: bool


class JokeBook:
    """Picks jokes and facts. `rng` is injectable so tests can make the choice reproducible."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._jokes = tuple(pyjokes.get_jokes(language="en", category="all"))
        # Lower-cased once, and each topic's matches kept (a few hundred topics at most):
        # searching every joke on every pick was the offline model's hottest spot.
        self._lowered = tuple(j.lower() for j in self._jokes)
        self._matches: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def joke(self, topic: str | None, avoid: Sequence[str] = ()) -> Pick:
        """A joke about `topic` when there is one, else any; never one about an `avoid` topic
        (the user's dislikes)."""
        unwanted = _avoided(avoid)
        if topic:
            matches = _kept(self._jokes_about(topic), unwanted)
            if matches:
                return Pick(self._rng.choice(matches), topic, True)
        return Pick(self._rng.choice(_kept(self._jokes, unwanted) or self._jokes), None, False)

    def _jokes_about(self, topic: str) -> tuple[str, ...]:
        matches = self._matches.get(topic)
        if matches is None:
            pattern = _pattern(topic)
            matches = tuple(
                joke
                for joke, lowered in zip(self._jokes, self._lowered, strict=True)
                if pattern.search(lowered)
            )
            self._matches[topic] = matches
            if len(self._matches) > TOPIC_CACHE:
                self._matches.popitem(last=False)
        else:
            self._matches.move_to_end(topic)
        return matches

    def fact(self, topic: str | None, avoid: Sequence[str] = ()) -> Pick:
        unwanted = _avoided(avoid)
        facts = [(tag, text) for tag, text in FACTS if not _about(tag, text, unwanted)] or FACTS
        if topic:
            wanted, pattern = _terms(topic), _pattern(topic)
            matches = [text for tag, text in facts if tag in wanted or pattern.search(text.lower())]
            if matches:
                return Pick(self._rng.choice(matches), topic, True)
        _tag, text = self._rng.choice(facts)
        return Pick(text, None, False)


def _avoided(topics: Sequence[str]) -> re.Pattern[str] | None:
    terms = [t for t in topics if t]
    return re.compile("|".join(_pattern(t).pattern for t in terms)) if terms else None


def _kept(texts: Sequence[str], unwanted: re.Pattern[str] | None) -> Sequence[str]:
    """The texts that do not mention an unwanted topic (all of them when none is)."""
    if unwanted is None:
        return texts
    return [t for t in texts if not unwanted.search(t.lower())]


def _about(tag: str, text: str, unwanted: re.Pattern[str] | None) -> bool:
    return unwanted is not None and bool(unwanted.search(f"{tag} {text.lower()}"))


def _terms(topic: str) -> set[str]:
    terms = {topic, topic.rstrip("s")}
    terms.update(_SYNONYMS.get(topic, ()))
    return {t for t in terms if t}


def _pattern(topic: str) -> re.Pattern[str]:
    """ "Mentions the topic" as one compiled pattern for all the topic's terms, to search
    lower-cased text with (one pattern per pick, not a regex per term per joke)."""
    return re.compile("|".join(r"(?<![a-z])" + re.escape(term) for term in _terms(topic)))
