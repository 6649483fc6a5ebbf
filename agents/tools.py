"""The team's tools. Each reads and writes state only through its ToolContext.

Results are small JSON objects the model reads back; failures are `{"error": "..."}` results the
model can explain, never exceptions out of the turn.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agents.agent import Tool, ToolContext
from agents.jokes import JokeBook, normalize_topic
from agents.quotes import InvalidTicker, Quote, QuoteError, QuoteProvider, normalize_ticker

NAME_KEY = "user:name"
JOKE_TOPICS_KEY = "user:joke_topics"
NERD_TOPICS_KEY = "user:nerd_topics"
WATCHLIST_KEY = "user:stock_watchlist"
MAX_TOPICS = 10
MAX_WATCHLIST = 25
_NAME = re.compile(r"^[^\W\d_]+(?:[ '\-.][^\W\d_]+)*$")

_TOPIC_SCHEMA = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "description": "What it should be about; omit if none given."}
    },
}
_SYMBOLS_SCHEMA = {
    "type": "object",
    "properties": {
        "symbols": {
            "type": "array",
            "items": {"type": "string"},
            "description": 'Ticker symbols, e.g. ["AAPL", "TSLA"]',
        }
    },
    "required": ["symbols"],
}


def clean_name(raw: Any) -> str | None:
    """A plausible personal name (letters, spaces, ' - .; ≤40 chars), title-cased, or None.
    Keeps whatever a user types from turning into instructions inside later prompts."""
    name = " ".join(str(raw or "").split())[:40].strip(" .")
    if not name or not _NAME.fullmatch(name) or len(name.split()) > 4:
        return None
    return name if any(c.isupper() for c in name) else name.title()


def _remember(ctx: ToolContext, key: str, topic: str) -> None:
    """Most recent last, no duplicates, bounded."""
    topics = [t for t in _as_list(ctx.get(key)) if t != topic]
    topics.append(topic)
    ctx.set(key, topics[-MAX_TOPICS:])


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def _symbols(raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = re.split(r"[\s,]+", raw)
    return [str(s) for s in raw if str(s).strip()] if isinstance(raw, list | tuple) else []


# -- manager -------------------------------------------------------------------------------
def name_tools() -> tuple[Tool, ...]:
    async def set_user_name(ctx: ToolContext, name: str) -> Mapping[str, Any]:
        cleaned = clean_name(name)
        if cleaned is None:
            return {"error": "that doesn't look like a name; ask the user how to call them"}
        ctx.set(NAME_KEY, cleaned)
        return {"ok": True, "name": cleaned}

    return (
        Tool(
            "set_user_name",
            "Remember the user's name when they tell you what to call them.",
            set_user_name,
            {
                "type": "object",
                "properties": {"name": {"type": "string", "description": "The user's name"}},
                "required": ["name"],
            },
        ),
    )


# -- funny_nerd ----------------------------------------------------------------------------
def humour_tools(book: JokeBook) -> tuple[Tool, ...]:
    def choose(ctx: ToolContext, key: str, topic: Any) -> tuple[str | None, bool]:
        wanted = normalize_topic(topic)
        if wanted:
            _remember(ctx, key, wanted)
            return wanted, False
        favourites = _as_list(ctx.get(key))
        return (favourites[-1], True) if favourites else (None, False)

    async def tell_joke(ctx: ToolContext, topic: str | None = None) -> Mapping[str, Any]:
        wanted, from_favourites = choose(ctx, JOKE_TOPICS_KEY, topic)
        pick = book.joke(wanted)
        return {
            "joke": pick.text,
            "topic": wanted,
            "matched_topic": pick.matched,
            "from_favourites": from_favourites,
        }

    async def nerd_fact(ctx: ToolContext, topic: str | None = None) -> Mapping[str, Any]:
        wanted, from_favourites = choose(ctx, NERD_TOPICS_KEY, topic)
        pick = book.fact(wanted)
        return {
            "fact": pick.text,
            "topic": wanted,
            "matched_topic": pick.matched,
            "from_favourites": from_favourites,
        }

    return (
        Tool(
            "tell_joke",
            "Get a programming joke, about the topic if given (the topic is remembered as one "
            "the user likes). Without a topic it picks from the user's favourite topics.",
            tell_joke,
            _TOPIC_SCHEMA,
        ),
        Tool(
            "nerd_fact",
            "Get a true nerdy fact, about the topic if given (remembered as a favourite). "
            "Without a topic it picks from the user's favourite nerd topics.",
            nerd_fact,
            _TOPIC_SCHEMA,
        ),
    )


# -- stock_analyst -------------------------------------------------------------------------
def stock_tools(quotes: QuoteProvider) -> tuple[Tool, ...]:
    async def get_quote(ctx: ToolContext, symbol: str) -> Mapping[str, Any]:
        try:
            quote = await quotes.get_quote(symbol)
        except QuoteError as exc:
            return {"error": str(exc)}
        return {"quote": quote.as_dict()}

    async def watchlist_add(ctx: ToolContext, symbols: Any) -> Mapping[str, Any]:
        current = _as_list(ctx.get(WATCHLIST_KEY))
        added, already, invalid = [], [], []
        for raw in _symbols(symbols):
            try:
                symbol = normalize_ticker(raw)
            except InvalidTicker:
                invalid.append(raw[:20])
                continue
            if symbol in current:
                already.append(symbol)
            elif len(current) >= MAX_WATCHLIST:
                return {"error": f"the watchlist is full ({MAX_WATCHLIST} symbols)"}
            else:
                current.append(symbol)
                added.append(symbol)
        if added:
            ctx.set(WATCHLIST_KEY, current)
        return {"added": added, "already_there": already, "invalid": invalid, "watchlist": current}

    async def watchlist_remove(ctx: ToolContext, symbols: Any) -> Mapping[str, Any]:
        current = _as_list(ctx.get(WATCHLIST_KEY))
        removed, missing = [], []
        for raw in _symbols(symbols):
            symbol = raw.strip().lstrip("$").upper()[:20]
            if symbol in current:
                current.remove(symbol)
                removed.append(symbol)
            else:
                missing.append(symbol)
        if removed:
            ctx.set(WATCHLIST_KEY, current)
        return {"removed": removed, "not_in_watchlist": missing, "watchlist": current}

    async def watchlist_show(ctx: ToolContext) -> Mapping[str, Any]:
        return {"watchlist": _as_list(ctx.get(WATCHLIST_KEY))}

    async def watchlist_quotes(ctx: ToolContext) -> Mapping[str, Any]:
        symbols = _as_list(ctx.get(WATCHLIST_KEY))
        if not symbols:
            return {"watchlist": [], "quotes": []}
        results = await quotes.get_quotes(symbols)
        return {
            "watchlist": symbols,
            "quotes": [r.as_dict() for r in results.values() if isinstance(r, Quote)],
            "unavailable": {s: str(r) for s, r in results.items() if not isinstance(r, Quote)},
        }

    symbol_schema = {
        "type": "object",
        "properties": {"symbol": {"type": "string", "description": "Ticker, e.g. AAPL"}},
        "required": ["symbol"],
    }
    no_args = {"type": "object", "properties": {}}
    return (
        Tool(
            "get_quote",
            "Current price, previous close and day change of one stock ticker. "
            "Never state a price that did not come from this tool.",
            get_quote,
            symbol_schema,
        ),
        Tool(
            "watchlist_add", "Add tickers to the user's watchlist.", watchlist_add, _SYMBOLS_SCHEMA
        ),
        Tool(
            "watchlist_remove",
            "Remove tickers from the user's watchlist.",
            watchlist_remove,
            _SYMBOLS_SCHEMA,
        ),
        Tool("watchlist_show", "The tickers on the user's watchlist.", watchlist_show, no_args),
        Tool(
            "watchlist_quotes",
            "Quotes for every ticker on the user's watchlist.",
            watchlist_quotes,
            no_args,
        ),
    )
