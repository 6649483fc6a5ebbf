"""What Switchboard remembers about a user, and the rules for changing it.

The one home of the user-state keys (`user:` scope: shared by every chat and linked account of
a user), of the ticker syntax, of the watchlist cap and of name/topic cleaning. The bot's
commands (`/watchlist`, `/prefs`) and the agents' tools both call these functions, so a ticker
the command accepts is one the tool accepts, and neither can grow a watchlist past the cap.

Everything here is pure: values in, values out. Callers store the result (as a state delta on
an event), which keeps this module free of storage and of the agent machinery.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from storage.types import USER_PREFIX

NAME_KEY = f"{USER_PREFIX}name"
JOKE_TOPICS_KEY = f"{USER_PREFIX}joke_topics"
NERD_TOPICS_KEY = f"{USER_PREFIX}nerd_topics"
WATCHLIST_KEY = f"{USER_PREFIX}stock_watchlist"
DISLIKES_KEY = f"{USER_PREFIX}dislikes"  # topics the jokes and facts tools never pick
FORGET_KEY = f"{USER_PREFIX}forgetme_requested_at"
MEMORY_CLEAR_KEY = f"{USER_PREFIX}memory_clear_requested_at"  # /memory clear, until confirmed
TIME_ZONE_KEY = f"{USER_PREFIX}time_zone"  # an IANA name (/tz); unset: UTC
RECENT_SYMBOLS_KEY = f"{USER_PREFIX}recent_symbols"  # looked up lately, newest first
# Which session a chat is in after a /reset (bot.chat_sessions): one key per chat, all with
# this prefix. Bookkeeping, not a preference: views of a user's preferences leave them out.
SESSION_POINTER_PREFIX = f"{USER_PREFIX}session:"


def session_pointer_key(platform: str, chat_id: str) -> str:
    return f"{SESSION_POINTER_PREFIX}{platform}:{chat_id}"


MAX_TOPICS = 10
# The watchlist rides in every system prompt and is quoted in one message: 25 symbols keeps
# both small (1,500 symbols made an 11k-character prompt and 1,500 quote requests).
MAX_WATCHLIST = 25
MAX_TICKER_LENGTH = 10
# Letters, digits and Yahoo's . - ^ = ("BRK.B", "^GSPC", "EURUSD=X"); at least one alphanumeric.
_TICKER = re.compile(rf"^(?=.*[A-Z0-9])[A-Z0-9.\-^=]{{1,{MAX_TICKER_LENGTH}}}$")
_SHOWN = 20  # how much of an invalid input is echoed back
_NAME = re.compile(r"^[^\W\d_]+(?:[ '\-.][^\W\d_]+)*$")

TICKER_HINT = (
    f"A ticker is 1-{MAX_TICKER_LENGTH} letters, digits or . - ^ = (a leading $ is fine), "
    "e.g. AAPL, $msft or BRK.B."
)
FULL_MESSAGE = f"Your watchlist is full ({MAX_WATCHLIST} symbols) — remove one first."


class StateView(Protocol):
    """Read access to a user's state: a state dict, or a tool's ToolContext."""

    def get(self, key: str, default: Any = None) -> Any: ...


class Outcome(StrEnum):
    """What a watchlist edit did with one symbol (the values name the tool result's lists)."""

    ADDED = "added"
    ALREADY_THERE = "already_there"
    FULL = "full"
    INVALID = "invalid"
    REMOVED = "removed"
    NOT_THERE = "not_there"


@dataclass(frozen=True, slots=True)
class WatchlistEdit:
    """The watchlist after an edit, and each requested symbol's outcome in the order asked."""

    watchlist: tuple[str, ...]
    outcomes: tuple[tuple[str, Outcome], ...]

    @property
    def changed(self) -> bool:
        return any(o in (Outcome.ADDED, Outcome.REMOVED) for _, o in self.outcomes)

    def by_outcome(self) -> dict[str, list[str]]:
        """{"added": ["AAPL"], "full": ["TSLA"], ...}: only the outcomes that happened."""
        grouped: dict[str, list[str]] = {}
        for symbol, outcome in self.outcomes:
            grouped.setdefault(outcome.value, []).append(symbol)
        return grouped


# -- tickers and the watchlist -------------------------------------------------------------
def parse_ticker(raw: Any) -> str | None:
    """'$msft ' -> 'MSFT'; None when it is not a ticker symbol."""
    symbol = str(raw).strip().removeprefix("$").upper()
    return symbol if _TICKER.fullmatch(symbol) else None


def split_symbols(raw: Any) -> list[str]:
    """A list of symbols, or one string of them separated by spaces or commas."""
    if isinstance(raw, str):
        raw = re.split(r"[\s,]+", raw)
    if not isinstance(raw, list | tuple):
        return []
    return [str(s) for s in raw if str(s).strip()]


def watchlist_of(state: StateView) -> list[str]:
    return [s.upper() for s in as_list(state.get(WATCHLIST_KEY))]


def add_to_watchlist(current: Sequence[str], raw_symbols: Iterable[Any]) -> WatchlistEdit:
    """Add each valid symbol not there yet, while fewer than MAX_WATCHLIST are on the list."""
    watchlist = list(current)
    outcomes = []
    for raw in raw_symbols:
        symbol = parse_ticker(raw)
        if symbol is None:
            outcomes.append((_shown(raw), Outcome.INVALID))
        elif symbol in watchlist:
            outcomes.append((symbol, Outcome.ALREADY_THERE))
        elif len(watchlist) >= MAX_WATCHLIST:
            outcomes.append((symbol, Outcome.FULL))
        else:
            watchlist.append(symbol)
            outcomes.append((symbol, Outcome.ADDED))
    return WatchlistEdit(tuple(watchlist), tuple(outcomes))


def remove_from_watchlist(current: Sequence[str], raw_symbols: Iterable[Any]) -> WatchlistEdit:
    watchlist = list(current)
    outcomes = []
    for raw in raw_symbols:
        symbol = _removable(raw, watchlist)
        if symbol is None:
            outcomes.append((_shown(raw), Outcome.INVALID))
        elif symbol in watchlist:
            watchlist.remove(symbol)
            outcomes.append((symbol, Outcome.REMOVED))
        else:
            outcomes.append((symbol, Outcome.NOT_THERE))
    return WatchlistEdit(tuple(watchlist), tuple(outcomes))


def _removable(raw: Any, watchlist: list[str]) -> str | None:
    # A symbol stored before the rule existed (say 12 characters) must still be removable.
    legacy = str(raw).strip().removeprefix("$").upper()
    return legacy if legacy in watchlist else parse_ticker(raw)


def _shown(raw: Any) -> str:
    return str(raw).strip()[:_SHOWN]


_SENTENCES = {
    Outcome.ADDED: "Added {} to your watchlist.",
    Outcome.ALREADY_THERE: "{} already on your watchlist.",
    Outcome.FULL: FULL_MESSAGE + " Not added: {}.",
    Outcome.INVALID: "{} doesn't look like a ticker symbol.",
    Outcome.REMOVED: "Removed {} from your watchlist.",
    Outcome.NOT_THERE: "{} not on your watchlist.",
}


def describe(by_outcome: Mapping[str, Sequence[str]]) -> str:
    """One friendly sentence per outcome, e.g. "Added AAPL to your watchlist. TSLA is already
    on your watchlist." Takes `WatchlistEdit.by_outcome()` or a tool result holding it."""
    sentences = []
    for outcome, template in _SENTENCES.items():
        symbols = [str(s) for s in by_outcome.get(outcome.value) or ()]
        if symbols:
            sentences.append(template.format(_subject(outcome, symbols)))
    return " ".join(sentences)


def _subject(outcome: Outcome, symbols: list[str]) -> str:
    joined = ", ".join(symbols)
    if outcome in (Outcome.ALREADY_THERE, Outcome.NOT_THERE):
        return f"{joined} {'is' if len(symbols) == 1 else 'are'}"
    return joined


# -- names and topics ----------------------------------------------------------------------
def clean_name(raw: Any) -> str | None:
    """A plausible personal name (letters, spaces, ' - .; ≤40 chars), title-cased, or None.
    Keeps whatever a user types from turning into instructions inside later prompts."""
    name = " ".join(str(raw or "").split())[:40].strip(" .")
    if not name or not _NAME.fullmatch(name) or len(name.split()) > 4:
        return None
    return name if any(c.isupper() for c in name) else name.title()


# A topic is a few words: a longer argument is a paste (or an instruction), not a topic.
MAX_TOPIC_INPUT = 60
# Words that ask for something rather than name a subject: "a nerd fact" is about nothing.
_NOT_TOPIC_WORDS = frozenset(
    re.findall(
        r"\S+",
        "nerd nerds nerdy geek geeky joke jokes pun puns fact facts trivia funny random fun any "
        "some something anything another one more me you it a an the",
    )
)


def normalize_topic(raw: Any) -> str | None:
    """A short lower-case topic, or None: keeps state small and prompts free of injected text.
    None too for a paste (longer than MAX_TOPIC_INPUT) and for command words only ("nerd")."""
    if not raw or len(str(raw)) > MAX_TOPIC_INPUT:
        return None
    words = re.findall(r"[a-z0-9+#]+", str(raw).lower())[:3]
    if all(word in _NOT_TOPIC_WORDS for word in words):
        return None
    topic = " ".join(words)[:30].strip()
    return topic or None


def remember_topic(topics: Any, topic: str) -> list[str]:
    """Most recent last, no duplicates, at most MAX_TOPICS."""
    kept = [t for t in as_list(topics) if t != topic]
    kept.append(topic)
    return kept[-MAX_TOPICS:]


MAX_RECENT_SYMBOLS = 10


def with_recent_symbol(recent: Any, symbol: str) -> list[str]:
    """The recent symbols with `symbol` first (no duplicates, at most MAX_RECENT_SYMBOLS)."""
    return [symbol, *[s for s in as_list(recent) if s != symbol]][:MAX_RECENT_SYMBOLS]


def ticker_suggestions(state: StateView, typed: str) -> list[str]:
    """What a ticker option offers while the user types: their watchlist, then the symbols
    they looked up lately, those starting with `typed`."""
    prefix = typed.strip().upper()
    offered = dict.fromkeys([*watchlist_of(state), *as_list(state.get(RECENT_SYMBOLS_KEY))])
    return [s for s in offered if s.startswith(prefix)]


def add_dislike(dislikes: Any, topic: str) -> list[str]:
    """The dislikes with `topic` added (most recent last, at most MAX_TOPICS)."""
    return remember_topic(dislikes, topic)


def without(topics: Any, topic: str) -> list[str]:
    """`topics` without `topic`: a disliked topic stops being a favourite, and a topic asked
    for by name stops being disliked (the user's latest word wins)."""
    return [t for t in as_list(topics) if t != topic]


def is_disliked(topic: str | None, dislikes: Any) -> bool:
    """Whether `topic` is one of the dislikes, or contains one ("python 3" when "python" is)."""
    if not topic:
        return False
    words = f" {topic} "
    return any(f" {d} " in words for d in as_list(dislikes))


def as_list(value: Any) -> list[str]:
    """State values written by agents may be a list, a dict (topic -> count) or a string."""
    if isinstance(value, dict):
        return [str(k) for k, _ in sorted(value.items(), key=lambda kv: -_num(kv[1]))]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if isinstance(value, str) and value:
        return [value]
    return []


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
