"""Deterministic intent reading for the offline model: what does this message ask for?"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.memory_talk import read_facts, read_request
from agents.profile import normalize_topic


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


COMPANIES: dict[str, str] = {
    "apple": "AAPL",
    "tesla": "TSLA",
    "microsoft": "MSFT",
    "google": "GOOGL",
    "alphabet": "GOOGL",
    "amazon": "AMZN",
    "nvidia": "NVDA",
    "meta": "META",
    "facebook": "META",
    "netflix": "NFLX",
    "intel": "INTC",
    "disney": "DIS",
    "coca-cola": "KO",
    "bitcoin": "BTC-USD",
    "ethereum": "ETH-USD",
    "s&p 500": "^GSPC",
    "nasdaq": "^IXIC",
    "dow jones": "^DJI",
}
# Upper-case words that are not tickers in chat.
_NOT_TICKERS = _words(
    "I A AT MY TO THE OK AND OR IS IT OF ON IN ME US USD EUR GBP ETF CEO AI PM AM ET UTC FYI "
    "LOL TLDR PLS PLZ WHAT HOW WHO WHY HI HEY YES NO NOT DO BE SO UP VS TV PC API URL"
)
_STOCK_WORDS = re.compile(
    r"\b(stocks?|shares?|price|prices|quotes?|ticker|trading|market|nasdaq|nyse|dow|"
    r"s&p|invest\w*|crypto|bitcoin|ethereum)\b"
)
_WATCHLIST = re.compile(r"\b(watch ?list|portfolio)\b")
_JOKE = re.compile(r"\b(jokes?|puns?|funny|laugh|humou?r|kidding)\b")
# "stop telling me python jokes", "no more space facts", "I hate java jokes": a dislike
_STOP_JOKES = re.compile(
    r"\b(?:stop|quit|enough|no more|never again|don'?t (?:tell|send|give|want|like|need)|"
    r"do not (?:tell|send|give|want|like)|hate|dislike|tired of|sick of|not a fan of|"
    r"can'?t stand)\b"
)
_FACT = re.compile(r"\b(facts?|trivia|nerdy|did you know|something (interesting|cool|nerdy))\b")
_NAME_PATTERNS = (
    # a second word only when capitalised: "my name is Ada Lovelace", not "... is bob and ..."
    re.compile(r"(?i:\bmy name(?:\s+is|'s))\s+([^\W\d_][\w'\-]*(?:\s+[A-Z][\w'\-]*){0,3})"),
    # "call me Countess Lovelace" (the whole name) / "just call me bob." but not "call me
    # later, ok?"
    re.compile(
        r"(?i:\bcall me)\s+([A-Z][\w'\-]*(?:\s+[A-Z][\w'\-]*){0,3}"
        r"|[^\W\d_][\w'\-]*(?=\s*[.!]?\s*$))"
    ),
    re.compile(
        r"^(?i:hi|hello|hey)?[\s,!]*(?i:i am|i'm)\s+([A-Z][\w'\-]*(?:\s+[A-Z][\w'\-]*){0,2})\b"
    ),
)
_NOT_NAMES = _words(
    "fine good ok okay bored back here tired great well sad happy sorry not just so very allergic "
    "from living"
)
# A topic is one the user named for the joke or fact: "a joke about X", "X jokes" - not any
# "about ..." elsewhere in the message.
_TOPIC_AFTER = re.compile(
    r"\b(?:jokes?|puns?|facts?|trivia|nerdy|funny|one|something|anything)\s+(?:[a-z]+\s+){0,2}?"
    r"(?:about|on|regarding|involving)\s+([a-z0-9+#][a-z0-9+# \-]{0,30})"
)
TOPIC_MESSAGE_MAX = 200  # a longer message is a paste: no topic is read from it
_TOPIC_BEFORE = re.compile(r"\b([a-z0-9+#]+)\s+(?:jokes?|puns?|facts?|trivia)\b")
_NOT_TOPICS = _words(
    "a an me another the some good funny nerdy random one any tell dad bad new cool fun your my "
    "interesting short quick great best of like love more want few two three enjoy hate know need "
    "any some that this these those them it everything anything something nothing stuff things"
)
# "a joke about the weather" is about "weather"
_ARTICLES = frozenset({"the", "a", "an", "my", "your", "our", "some"})
_NOT_SYMBOLS = _words(
    "my the a an and also please stock stocks it this that them one some all more these those "
    "to me us you"
)
_AFTER_PRICE = re.compile(
    r"\b(?:price of|price for|quote for|quote of|quote on|ticker)\s+\$?([a-z][a-z0-9.\-]{0,9})\b",
    re.I,
)
_ACTION_SPAN = re.compile(
    r"\b(?:add|track|watch|put|remove|delete|drop|untrack|unwatch)\s+(.+?)\s+"
    r"(?:to|on|in|into|from|off)\b",
    re.I,
)


_CHART = re.compile(
    r"\b(?:charts?|graphs?|plot)\b|\bover (?:the )?(?:last |past )?"
    r"(?:\d+|a|an|one|two|three|five|six|twelve) ?(?:days?|weeks?|months?|years?)\b"
)
_SPAN = re.compile(r"\b(\d+|a|an|one|two|three|five|six|twelve) ?(day|week|month|year)s?\b")
_SPAN_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "five": 5, "six": 6, "twelve": 12}
_THIS = {"today": "1d", "this week": "5d", "this month": "1mo", "this year": "1y"}


@dataclass(frozen=True, slots=True)
class Intent:
    kind: str  # joke | fact | quote | chart | watch_add | watch_remove | watch_show | ... | chat
    topic: str | None = None
    symbols: tuple[str, ...] = ()
    name: str | None = None
    range: str | None = None  # a chart's range ("6mo"), when the message names a period
    # memories: remember's texts ("Dog: Rex"); what forget/ask look for (agents.memory_talk)
    facts: tuple[str, ...] = ()
    about: str = ""
    # an alert or reminder tool's call, as agents/schedule_intents.py read it
    arguments: tuple[tuple[str, object], ...] = ()


def read_intent(text: str) -> Intent:
    lowered = text.lower()
    name = find_name(text)
    if _STOP_JOKES.search(lowered) and (_JOKE.search(lowered) or _FACT.search(lowered)):
        return Intent("dislike", topic=find_topic(lowered), name=name)
    memory = read_request(text)
    if memory is not None:
        return Intent(memory.kind, name=name, facts=memory.facts, about=memory.about)
    if _WATCHLIST.search(lowered):
        return Intent(
            _watchlist_kind(lowered), symbols=find_symbols(text, watchlist=True), name=name
        )
    if _JOKE.search(lowered):
        return Intent("joke", topic=find_topic(lowered), name=name)
    if _FACT.search(lowered):
        return Intent("fact", topic=find_topic(lowered), name=name)
    symbols = find_symbols(text)
    if symbols and _CHART.search(lowered):
        return Intent("chart", symbols=symbols[:1], name=name, range=find_range(lowered))
    if _STOCK_WORDS.search(lowered) or (symbols and "?" in text):
        return Intent("quote", symbols=symbols, name=name)
    facts = read_facts(text)
    return Intent("remember", name=name, facts=facts) if facts else Intent("chat", name=name)


def _watchlist_kind(lowered: str) -> str:
    if re.search(r"\b(remove|delete|drop|untrack|unwatch|take)\b", lowered):
        return "watch_remove"
    if re.search(r"\b(add|track|put|include)\b", lowered):
        return "watch_add"
    if re.search(r"\b(doing|prices?|quotes?|performance|perform\w*|moving|update)\b", lowered):
        return "watch_quotes"
    return "watch_show"


def find_range(lowered: str) -> str | None:
    """A chart range from "over 6 months", "the last 5 days", "this year", "1y"."""
    explicit = re.search(r"\b(1d|5d|1mo|6mo|1y)\b", lowered)
    if explicit:
        return explicit.group(1)
    match = _SPAN.search(lowered)
    if match:
        count = _SPAN_WORDS.get(match.group(1)) or int(match.group(1))
        days = count * {"day": 1, "week": 7, "month": 30, "year": 365}[match.group(2)]
        return next(r for limit, r in _RANGE_DAYS if days <= limit)
    return next((r for words, r in _THIS.items() if words in lowered), None)


# The smallest range that covers a span of days (anything longer: a year).
_RANGE_DAYS = ((1, "1d"), (7, "5d"), (31, "1mo"), (186, "6mo"), (10**9, "1y"))


def find_name(text: str) -> str | None:
    for pattern in _NAME_PATTERNS:
        match = pattern.search(text.strip())
        if match and match.group(1).lower() not in _NOT_NAMES:
            return match.group(1)
    return None


def find_topic(lowered: str) -> str | None:
    """The topic the user named, when plausible (agents.profile.normalize_topic): never a
    command word ("a nerd fact") nor anything out of a paste."""
    if len(lowered) > TOPIC_MESSAGE_MAX:
        return None
    match = _TOPIC_AFTER.search(lowered)
    if match:
        words = [w for w in re.split(r"[\s]+", match.group(1)) if w]
        while words and words[0] in _ARTICLES:
            words = words[1:]
        words = [w for w in words[:3] if w not in ("please", "pls", "now")]
        if words and words[0] not in _NOT_TOPICS:
            return normalize_topic(" ".join(words))
    for match in _TOPIC_BEFORE.finditer(lowered):
        if match.group(1) not in _NOT_TOPICS and normalize_topic(match.group(1)):
            return match.group(1)
    return None


def find_symbols(text: str, *, watchlist: bool = False) -> tuple[str, ...]:
    """Tickers in a message: $aapl, AAPL, known company names; for watchlist edits, the words
    between the verb and "to/from" ("add aapl and tesla to my watchlist")."""
    if watchlist:
        match = _ACTION_SPAN.search(text)
        if match:
            return tuple(dict.fromkeys(_span_symbols(match.group(1))))
    found: list[str] = []
    lowered = text.lower()
    for company, symbol in COMPANIES.items():
        if re.search(r"(?<![\w^])" + re.escape(company) + r"(?!\w)", lowered):
            found.append(symbol)
    for token in re.findall(r"(?<![\w$^])[$^]?[A-Za-z][A-Za-z0-9.\-]{0,9}", text):
        bare = token.lstrip("$").rstrip(".-")
        if token[0] in "$^" or (bare.isupper() and bare.upper() not in _NOT_TICKERS):
            found.append(("^" if token[0] == "^" else "") + bare.upper())
    match = _AFTER_PRICE.search(text)
    if match and match.group(1).lower() not in ("the", "my", "a", "an", "this", "that"):
        found.append(COMPANIES.get(match.group(1).lower(), match.group(1).upper()))
    return tuple(dict.fromkeys(found))


def _span_symbols(span: str) -> list[str]:
    """Words of "add X and Y to ...": company names, upper-case words, or short lower-case
    words that look like tickers ("tsla"), not ordinary words ("something", "it")."""
    symbols = []
    for word in re.split(r"[\s,]+", span):
        word = word.strip().lstrip("$")
        lowered = word.lower()
        if lowered in COMPANIES:
            symbols.append(COMPANIES[lowered])
        elif word.isupper() or (
            re.fullmatch(r"[a-z]{1,5}(?:[.\-][a-z]{1,3})?", word) and lowered not in _NOT_SYMBOLS
        ):
            symbols.append(word.upper())
    return symbols
