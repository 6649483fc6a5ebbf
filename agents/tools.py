"""The team's tools. Each reads and writes state only through its ToolContext.

Results are small JSON objects the model reads back; failures are `{"error": "..."}` results the
model can explain, never exceptions out of the turn.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from agents.agent import Tool, ToolContext
from agents.jokes import JokeBook
from agents.profile import (
    DISLIKES_KEY,
    FULL_MESSAGE,
    JOKE_TOPICS_KEY,
    MAX_WATCHLIST,
    NAME_KEY,
    NERD_TOPICS_KEY,
    RECENT_SYMBOLS_KEY,
    WATCHLIST_KEY,
    Outcome,
    WatchlistEdit,
    add_to_watchlist,
    as_list,
    clean_name,
    is_disliked,
    normalize_topic,
    remember_topic,
    remove_from_watchlist,
    split_symbols,
    watchlist_of,
    with_recent_symbol,
    without,
)
from agents.profile import add_dislike as add_dislike_to
from agents.quotes import MAX_QUOTES_PER_CALL, Quote, QuoteError, QuoteProvider

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


def _edit_result(ctx: ToolContext, edit: WatchlistEdit) -> dict[str, Any]:
    """Store the edit and say what happened per symbol. Each list is clipped: a model that sends
    a thousand symbols must not get (and store) a thousand-entry answer."""
    if edit.changed:
        ctx.set(WATCHLIST_KEY, list(edit.watchlist))
    result: dict[str, Any] = {k: v[:MAX_WATCHLIST] for k, v in edit.by_outcome().items()}
    if Outcome.FULL in result:
        result["note"] = FULL_MESSAGE
    return {**result, "watchlist": list(edit.watchlist)}


# -- manager -------------------------------------------------------------------------------
def name_tools() -> tuple[Tool, ...]:
    async def set_user_name(ctx: ToolContext, name: str) -> Mapping[str, Any]:
        cleaned = clean_name(name)
        if cleaned is None:
            return {"error": "that doesn't look like a name; ask the user how to call them"}
        ctx.set(NAME_KEY, cleaned)
        return {"ok": True, "name": cleaned}

    async def forget_name(ctx: ToolContext) -> Mapping[str, Any]:
        ctx.set(NAME_KEY, None)
        return {"ok": True, "name": None}

    async def add_dislike(ctx: ToolContext, topic: str) -> Mapping[str, Any]:
        cleaned = normalize_topic(topic)
        if cleaned is None:
            return {"error": "that doesn't look like a topic; ask the user what to avoid"}
        ctx.set(DISLIKES_KEY, add_dislike_to(ctx.get(DISLIKES_KEY), cleaned))
        for key in (JOKE_TOPICS_KEY, NERD_TOPICS_KEY):
            if cleaned in as_list(ctx.get(key)):
                ctx.set(key, without(ctx.get(key), cleaned))
        return {"ok": True, "dislikes": as_list(ctx.get(DISLIKES_KEY))}

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
        Tool(
            "forget_name",
            "Forget the user's name, when they ask you to.",
            forget_name,
            {"type": "object", "properties": {}},
        ),
        Tool(
            "add_dislike",
            "Remember a topic the user does not want jokes or facts about (e.g. they said "
            '"stop telling me python jokes"): it is never picked again.',
            add_dislike,
            {
                "type": "object",
                "properties": {"topic": {"type": "string", "description": "e.g. python"}},
                "required": ["topic"],
            },
        ),
    )


# -- funny_nerd ----------------------------------------------------------------------------
def humour_tools(book: JokeBook) -> tuple[Tool, ...]:
    def choose(ctx: ToolContext, key: str, topic: Any) -> tuple[str | None, bool]:
        wanted = normalize_topic(topic)
        dislikes = as_list(ctx.get(DISLIKES_KEY))
        if wanted:
            ctx.set(key, remember_topic(ctx.get(key), wanted))
            if is_disliked(wanted, dislikes):  # asked for by name: no longer disliked
                ctx.set(DISLIKES_KEY, [d for d in dislikes if not is_disliked(wanted, [d])])
            return wanted, False
        favourites = [t for t in as_list(ctx.get(key)) if not is_disliked(t, dislikes)]
        return (favourites[-1], True) if favourites else (None, False)

    def avoided(ctx: ToolContext) -> list[str]:
        return as_list(ctx.get(DISLIKES_KEY))

    async def tell_joke(ctx: ToolContext, topic: str | None = None) -> Mapping[str, Any]:
        wanted, from_favourites = choose(ctx, JOKE_TOPICS_KEY, topic)
        pick = book.joke(wanted, avoided(ctx))
        return {
            "joke": pick.text,
            "topic": wanted,
            "matched_topic": pick.matched,
            "from_favourites": from_favourites,
        }

    async def nerd_fact(ctx: ToolContext, topic: str | None = None) -> Mapping[str, Any]:
        wanted, from_favourites = choose(ctx, NERD_TOPICS_KEY, topic)
        pick = book.fact(wanted, avoided(ctx))
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
            "the user likes). Without a topic it picks from the user's favourite topics, and "
            "never one the user dislikes.",
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
class QuoteBudget:
    """Quote lookups one message (one invocation) may still make, across all its tool calls: a
    model repeating watchlist_quotes or get_quote must not turn one message into hundreds of
    requests. Only the most recent invocations are remembered (a turn lasts seconds)."""

    def __init__(self, per_message: int = MAX_QUOTES_PER_CALL, remembered: int = 1024) -> None:
        self._per_message = per_message
        self._remembered = remembered
        self._used: OrderedDict[str, int] = OrderedDict()

    def take(self, invocation_id: str, wanted: int) -> int:
        """How many of `wanted` lookups this message may still make (counted as made)."""
        used = self._used.pop(invocation_id, 0)
        granted = max(0, min(wanted, self._per_message - used))
        self._used[invocation_id] = used + granted
        while len(self._used) > self._remembered:
            self._used.popitem(last=False)
        return granted


SPENT = f"no more quote lookups for this message (at most {MAX_QUOTES_PER_CALL})"


def note_recent_symbol(ctx: ToolContext, symbol: str) -> None:
    """Offered first by ticker autocomplete; written only when the order changes."""
    recent = ctx.get(RECENT_SYMBOLS_KEY)
    if as_list(recent)[:1] != [symbol]:
        ctx.set(RECENT_SYMBOLS_KEY, with_recent_symbol(recent, symbol))


def stock_tools(quotes: QuoteProvider) -> tuple[Tool, ...]:
    budget = QuoteBudget()

    async def get_quote(ctx: ToolContext, symbol: str) -> Mapping[str, Any]:
        if not budget.take(ctx.invocation_id, 1):
            return {"error": SPENT}
        try:
            quote = await quotes.get_quote(symbol)
        except QuoteError as exc:
            return {"error": str(exc)}
        note_recent_symbol(ctx, quote.symbol)
        return {"quote": quote.as_dict()}

    async def watchlist_add(ctx: ToolContext, symbols: Any) -> Mapping[str, Any]:
        edit = add_to_watchlist(watchlist_of(ctx), split_symbols(symbols))
        return _edit_result(ctx, edit)

    async def watchlist_remove(ctx: ToolContext, symbols: Any) -> Mapping[str, Any]:
        edit = remove_from_watchlist(watchlist_of(ctx), split_symbols(symbols))
        return _edit_result(ctx, edit)

    async def watchlist_show(ctx: ToolContext) -> Mapping[str, Any]:
        return {"watchlist": watchlist_of(ctx)}

    async def watchlist_quotes(ctx: ToolContext) -> Mapping[str, Any]:
        symbols = watchlist_of(ctx)
        if not symbols:
            return {"watchlist": [], "quotes": []}
        granted = budget.take(ctx.invocation_id, min(len(set(symbols)), MAX_QUOTES_PER_CALL))
        if not granted:
            return {"error": SPENT}
        results = await quotes.get_quotes(list(dict.fromkeys(symbols))[:granted])
        answer = {
            "watchlist": symbols,
            "quotes": [r.as_dict() for r in results.values() if isinstance(r, Quote)],
            "unavailable": {s: str(r) for s, r in results.items() if not isinstance(r, Quote)},
        }
        skipped = len(set(symbols) - results.keys())
        return {**answer, "not_looked_up": skipped} if skipped else answer

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
