"""How the offline model reads and speaks of memories, as plain text in and out.

Reading: "my dog is Rex" becomes the memory "Dog: Rex", "I live in Lisbon" "Lives in Lisbon"
(the short, subject-less style an LLM's extraction writes too); "forget that ...", "forget my
name", "what is my dog?", "where do I live?", "what do you know about me?" and "what did I tell
you earlier?" become requests. Speaking: a memory said back to its user ("your dog is Rex").

A memory's *slot* is what it is about ("dog", "lives in"): a newer fact in the same slot
replaces the older one ("my dog is Max" after "my dog is Rex") instead of adding a second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A statement is a sentence or two: a paste is not something to remember unasked.
STATEMENT_MAX = 300
# Beyond this no memory phrase is read at all ("remember that" + an essay is still refused by
# the remember tool, which knows the memory size limit).
TALK_MAX = 1000
VALUE_MAX = 120  # of "my <thing> is <value>": longer is a story, not a fact

_LEAD = re.compile(
    r"^(?:(?:hi|hello|hey|oh|ok|okay|so|well|also|and|btw|by the way|fyi|actually|just so "
    r"you know)\b[\s,!.:-]*)+",
    re.I,
)
# Clauses: sentences, comma-separated parts, and "... and I/my ..." (a new statement), but not
# "Simon and Garfunkel".
_CLAUSES = re.compile(r"(?<=[.!;])\s+|\s*[,;]\s*(?:and\s+)?|\s+and\s+(?=(?:i|my|i'm)\b)", re.I)


@dataclass(frozen=True, slots=True)
class MemoryTalk:
    """What a message asks of the memory.

    kind: remember | forget | forget_name | forget_all | about_me | ask | earlier.
    `facts` are the memories to keep (remember); `about` is what to look for: the words of
    "forget that ..." ("" for "forget that" alone: the previous message), or the slot asked
    about ("dog", "lives in")."""

    kind: str
    facts: tuple[str, ...] = ()
    about: str = ""


# -- questions and requests -----------------------------------------------------------------
_FORGET_NAME = re.compile(r"\b(?:forget|delete|erase|drop|remove)\s+my\s+name\b", re.I)
_FORGET_ALL = re.compile(
    r"^(?:please\s+)?forget\s+(?:everything|all of it|all about me|all you know|me)\b", re.I
)
_FORGET = re.compile(
    r"^(?:please\s+|can you\s+|could you\s+)?(?:forget|stop remembering|don't remember)"
    r"(?:\s+(?:that|about|the fact that|what i (?:said|told you)(?: about)?))*\s*(?P<what>.*)$",
    re.I,
)
_FORGET_BARE = re.compile(r"^(?:it|this|that|about it|about that|what i said)?$", re.I)
_ABOUT_ME = re.compile(
    r"\bwhat (?:else )?(?:do|did|can) you (?:know|remember|recall)(?: about me| of me)?\s*[?.!]*$"
    r"|\bwhat (?:have you|did you) (?:learned|learnt|remembered|got|stored|kept) (?:about|on) me\b"
    r"|\bwhat do you have on me\b|\b(?:tell me )?(?:everything )?(?:what )?you know about me\b",
    re.I,
)
_EARLIER = re.compile(
    r"\bwhat (?:did|have) i (?:tell|told|say|said|mention|mentioned)(?: to)?(?: you)?"
    r"(?: (?:earlier|before|last time|previously|yesterday|the other day|so far))?\b"
    r"|\bwhat (?:were|was) we (?:talking|chatting) about\b"
    r"|\bwhat did we (?:talk|chat) about\b|\bdo you remember what i (?:said|told you)\b",
    re.I,
)
_ASK = re.compile(
    r"^(?:what(?:'s| is| was| are| were)|who(?:'s| is| was)|do you (?:know|remember)|"
    r"remind me(?: of)?(?: what)?|tell me)\s+my\s+(?P<key>[^\W\d_][\w'\- ]{0,40}?)"
    r"(?:\s+(?:is|was|are))?(?:\s+(?:called|named))?\s*[?.!]*$",
    re.I,
)
_WHERE = re.compile(
    r"\bwhere (?:do|did) i (?P<verb>live|work|stay|come from)\b"
    r"|\b(?:know|remember|tell me) where i (?P<also>live|work|stay|come from)\b",
    re.I,
)
_WHERE_SLOTS = {"live": "lives in", "stay": "lives in", "work": "works at", "come from": "is from"}
# Other ways of asking about oneself, and what they ask about.
_ABOUT_ME_ASKS = (
    (re.compile(r"\bwhat am i allergic to\b|\bam i allergic to\b", re.I), "allergies"),
    (re.compile(r"\bwhere am i from\b", re.I), "is from"),
    (re.compile(r"\bwhat do i do for (?:a )?(?:living|work)\b", re.I), "works as"),
    (re.compile(r"\bwhat (?:do|did) i (?:like|love|enjoy)\b", re.I), "likes"),
)
# What "my <thing>" questions and statements leave to other readers.
_NOT_SLOTS = frozenset({"name", "watchlist", "watch list", "portfolio"})


def read_request(text: str) -> MemoryTalk | None:
    """A request about memories ("forget ...", a question), or None."""
    clause = _LEAD.sub("", " ".join(text.split())[:TALK_MAX]).strip()
    if not clause:
        return None
    if _FORGET_NAME.search(clause):
        return MemoryTalk("forget_name")
    if _FORGET_ALL.search(clause):
        return MemoryTalk("forget_all")
    if _ABOUT_ME.search(clause):
        return MemoryTalk("about_me")
    if _EARLIER.search(clause):
        return MemoryTalk("earlier")
    return _question(clause) or _forget(clause) or _remember(clause)


def _question(clause: str) -> MemoryTalk | None:
    where = _WHERE.search(clause)
    if where:
        verb = where.group("verb") or where.group("also")
        return MemoryTalk("ask", about=_WHERE_SLOTS[verb.lower()])
    for pattern, about in _ABOUT_ME_ASKS:
        if pattern.search(clause):
            return MemoryTalk("ask", about=about)
    match = _ASK.search(clause)
    if match is None:
        return None
    key = match.group("key").lower().strip()
    if key in _NOT_SLOTS or key.split()[0] in _NOT_SLOTS:
        return None  # "what's my watchlist doing?" is the stock analyst's
    return MemoryTalk("ask", about=key)


def _forget(clause: str) -> MemoryTalk | None:
    match = _FORGET.search(clause)
    if match is None:
        return None
    what = match.group("what").strip(" .!?")
    if what.lower() in ("it", "about it"):
        return None  # "forget it": never mind, not a request to erase anything
    return MemoryTalk("forget", about="" if _FORGET_BARE.fullmatch(what) else what)


_REMEMBER = re.compile(
    r"^(?:please\s+|pls\s+)?(?:(?:can|could|will|would) you (?:please )?)?"
    r"(?:remember|note|keep in mind|don't forget)(?:\s+that)?[:,]?\s+(?!to\b)(?P<what>.{2,})$",
    re.I,
)


_RECOLLECTION = re.compile(r"^(?:when|what|how|where|who|why|the time|us|me|you)\b", re.I)


def _remember(clause: str) -> MemoryTalk | None:
    match = _REMEMBER.search(clause)
    if match is None:
        return None
    what = match.group("what").strip().rstrip("?")
    facts = read_facts(what, limit=TALK_MAX)
    if facts:
        return MemoryTalk("remember", facts=facts)
    # "remember this", "remember when we ...": nothing told to keep
    if len(what.split()) < 2 or _RECOLLECTION.match(what):
        return None
    return MemoryTalk("remember", facts=(third_person(what),))


# -- statements -----------------------------------------------------------------------------
_MY = re.compile(
    r"^my\s+(?P<key>[^\W\d_][\w'\-]*(?:\s+[\w'\-]+){0,3}?)\s+(?:is|are|was|=)\s+"
    r"(?:called\s+|named\s+)?(?P<value>.+)$",
    re.I,
)
_LIVE = re.compile(
    r"^i\s+(?:now\s+|currently\s+)?(?:live|reside|moved|(?:am|'m) living)\s+(?:in|to)\s+(?P<v>.+)$",
    re.I,
)
_FROM = re.compile(r"^i(?:'m| am)\s+(?:originally\s+)?from\s+(?P<v>.+)$", re.I)
_WORK = re.compile(
    r"^i\s+(?:now\s+|currently\s+)?work\s+(?P<p>at|for|in|as)\s+(?P<v>.+)$",
    re.I,
)
_ALLERGIC = re.compile(r"^i(?:'m| am)\s+(?:very\s+|severely\s+)?allergic\s+to\s+(?P<v>.+)$", re.I)
_FEEL = re.compile(
    r"^i\s+(?:really\s+|absolutely\s+|also\s+|totally\s+)?"
    r"(?P<verb>like|love|hate|enjoy|adore|dislike|prefer)\s+(?P<v>.+)$",
    re.I,
)
_HAVE = re.compile(r"^i\s+(?:have|'ve got|have got)\s+(?P<v>(?:a|an|two|three|\d+)\s+.+)$", re.I)
# "I love you", "I like it", "I hate when ...": talk, not facts.
_NOT_OBJECTS = frozenset(
    {"you", "your", "it", "this", "that", "them", "him", "her", "u", "ya", "so", "how", "what"}
    | {"when", "the way", "talking", "chatting", "these", "those"}
)
# "my question is ...", "my point is that ...": talk about the talk, not facts.
_NOT_KEYS = frozenset(
    {"question", "point", "guess", "problem", "issue", "answer", "idea", "thought", "opinion"}
    | {"concern", "request", "bad", "pleasure", "mistake", "message", "reply", "god"}
)


def read_facts(text: str, *, limit: int = STATEMENT_MAX) -> tuple[str, ...]:
    """The memories a statement holds ("my dog is Rex, and I live in Lisbon" -> two)."""
    if len(text) > limit or text.rstrip().endswith("?"):
        return ()
    clauses = _CLAUSES.split(_LEAD.sub("", " ".join(text.split())))
    found = (_fact(_LEAD.sub("", c).strip(" .!")) for c in clauses if c)
    return tuple(dict.fromkeys(f for f in found if f))


def _fact(clause: str) -> str | None:
    mine = _MY.match(clause)
    if mine:
        return _my_fact(mine.group("key"), mine.group("value"))
    for pattern, lead in ((_LIVE, "Lives in"), (_FROM, "Is from"), (_ALLERGIC, "Allergic to")):
        match = pattern.match(clause)
        if match:
            return _with(lead, match.group("v"))
    work = _WORK.match(clause)
    if work:
        return _with(f"Works {work.group('p').lower()}", work.group("v"))
    feel = _FEEL.match(clause)
    if feel and not _talk(feel.group("v")):
        return _with(_third(feel.group("verb").lower()).capitalize(), feel.group("v"))
    have = _HAVE.match(clause)
    return _with("Has", have.group("v")) if have else None


def _talk(thing: str) -> bool:
    lowered = thing.lower()
    return any(lowered == w or lowered.startswith(w + " ") for w in _NOT_OBJECTS)


def _my_fact(key: str, value: str) -> str | None:
    # "my dog's name is Rex" and "my dog is Rex" fill one slot: "Dog: Rex"
    key = re.sub(r"(?<=\w)'s name$", "", " ".join(key.lower().split()))
    value = value.strip(" .!")
    if key in _NOT_SLOTS or key in _NOT_KEYS or not value or len(value) > VALUE_MAX:
        return None
    if value.lower().startswith("that "):
        return None  # "my point is that ...": an argument, not a value
    return f"{key[0].upper()}{key[1:]}: {value}"


def _with(lead: str, value: str) -> str | None:
    value = value.strip(" .!")
    return f"{lead} {value}" if value and len(value) <= VALUE_MAX else None


_IRREGULAR = {"have": "has", "am": "is", "'m": "is", "do": "does", "go": "goes", "was": "was"}


def _third(verb: str) -> str:
    """The third person of a verb ("like" -> "likes", "go" -> "goes")."""
    if verb in _IRREGULAR:
        return _IRREGULAR[verb]
    if re.search(r"(s|sh|ch|x|z|o)$", verb):
        return verb + "es"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ies"
    return verb + "s"


def third_person(text: str) -> str:
    """'I have a meeting on Friday' -> 'Has a meeting on Friday'; 'my boss' -> 'their boss'."""
    text = text.strip(" .!")
    match = re.match(r"^i(?:\s+|(?='))('m|'ve|[a-z]+)\s*(.*)$", text, re.I)
    if match:
        verb = {"'ve": "have"}.get(match.group(1).lower(), match.group(1).lower())
        text = f"{_third(verb)} {match.group(2)}".strip()
    text = re.sub(r"\bmy\b", "their", text, flags=re.I)
    text = re.sub(r"\b(?:me|myself)\b", "them", text, flags=re.I)
    text = re.sub(r"\bI\b", "they", text)
    return text[:1].upper() + text[1:]


# -- slots, matching, speaking ----------------------------------------------------------------
_FEELINGS = ("likes", "loves", "hates", "enjoys", "adores", "dislikes", "prefers")


def slot_of(text: str) -> str | None:
    """What a memory is about, when a newer fact about it should replace it."""
    keyed = re.match(r"^([^\W\d_][\w'\- ]{0,40}?):\s+\S", text)
    if keyed:
        return keyed.group(1).lower()
    lowered = text.lower()
    for lead, slot in (
        ("lives in ", "lives in"),
        ("is from ", "is from"),
        ("works as ", "works as"),
        ("works at ", "works at"),
        ("works for ", "works at"),
        ("works in ", "works at"),
    ):
        if lowered.startswith(lead):
            return slot
    verb, _, rest = lowered.partition(" ")
    return f"feels about {rest.strip(' .')}" if verb in _FEELINGS and rest else None


def same_text(a: str, b: str) -> bool:
    return _normal(a) == _normal(b)


def _normal(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(" .!?")


_STOP = frozenset(
    re.findall(
        r"\S+",
        "i me my mine you your a an the that this it is are was were am be to of in on at for and "
        "or about what where who do did does tell told say said remember forget please that's "
        "it's i'm can could would will just",
    )
)


def words(text: str) -> frozenset[str]:
    """A text's meaningful words, crudely stemmed ("lives" ~ "live"), for matching."""
    found = re.findall(r"[^\W_]+(?:'[^\W_]+)?", text.casefold())
    return frozenset(_stem(w) for w in found if w not in _STOP)


def _stem(word: str) -> str:
    word = word.removesuffix("'s")
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


_SPOKEN = (
    (re.compile(r"^lives in\b", re.I), "you live in"),
    (re.compile(r"^is from\b", re.I), "you're from"),
    (re.compile(r"^works\b", re.I), "you work"),
    (re.compile(r"^allergic to\b", re.I), "you're allergic to"),
    (re.compile(r"^has\b", re.I), "you have"),
    (re.compile(r"^is\b", re.I), "you're"),
    (re.compile(r"^was\b", re.I), "you were"),
)


def spoken(text: str) -> str:
    """A memory said to its user: "Dog: Rex" -> "your dog is Rex", "Lives in Lisbon" -> "you
    live in Lisbon". Other texts are given as they are, first letter lowered."""
    keyed = re.match(r"^([^\W\d_][\w'\- ]{0,40}?):\s+(.+)$", text)
    if keyed:
        return f"your {keyed.group(1).lower()} is {keyed.group(2)}"
    for pattern, replacement in _SPOKEN:
        if pattern.match(text):
            return pattern.sub(replacement, text, count=1)
    verb, _, rest = text.partition(" ")
    if verb.lower() in _FEELINGS and rest:
        return f"you {verb.lower().removesuffix('s')} {rest}"
    text = re.sub(r"\b[Tt]heir\b", lambda m: "Your" if m.group()[0] == "T" else "your", text)
    return text[:1].lower() + text[1:] if text[1:2].islower() else text
