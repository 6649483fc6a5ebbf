"""The offline model's wording: friendly answers written from tool results and state."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from agents.memory_talk import spoken
from agents.profile import NAME_KEY, as_list, describe
from agents.quotes import MAX_QUOTES_PER_CALL

CAPABILITIES = (
    'I can tell programming jokes ("tell me a joke about python"), share nerdy facts '
    '("a fact about space"), look up stock prices ("what\'s AAPL at?") and keep a watchlist '
    'for you ("add TSLA to my watchlist", "how is my watchlist doing?").'
)


# Markdown's punctuation: the model's answers are read as Markdown, what a user typed is not.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>~|#])")


def literal(text: str) -> str:
    """User (or tool) text inside an answer, escaped so it shows exactly as typed."""
    return _MARKDOWN.sub(r"\\\1", text)


def small_talk(
    text: str, state: Mapping[str, Any], tools: set[str] | frozenset[str] = frozenset()
) -> str:
    name = state.get(NAME_KEY)
    hello = f", {name}" if name else ""
    lowered = text.lower().strip()
    if "get_quote" in tools:
        return 'Which ticker should I look up? For example: "what\'s AAPL at?"'
    if re.search(r"\b(what'?s|what is|do you know) my name\b|\bwho am i\b", lowered):
        if name:
            return f"You're {name}, of course!"
        return "I don't know your name yet. Tell me with \"my name is ...\" and I'll remember."
    if re.search(r"\b(help|what can you do|who are you|what are you)\b", lowered):
        return f"I'm Switchboard, a small team of assistants. {CAPABILITIES}"
    if re.search(r"\b(thanks|thank you|thx|cheers)\b", lowered):
        return f"You're welcome{hello}! Anything else?"
    if re.search(r"\b(bye|goodbye|see you|good night)\b", lowered):
        return f"Bye{hello}! Talk soon."
    if re.search(r"\bhow are you\b|\bhow's it going\b|\bhow are things\b", lowered):
        return f"Doing great, thanks for asking{hello}! Want a joke or a market check?"
    if re.search(r"^(hi|hello|hey|yo|hiya|howdy|good (morning|afternoon|evening))\b", lowered):
        if name:
            return f"Hi {name}, good to see you again! Joke, nerdy fact or a stock check?"
        return f"Hi there! I'm Switchboard. {CAPABILITIES} What should I call you?"
    return (
        f"I'm running in offline mode{hello}, so I understand a set of everyday requests. "
        f"{CAPABILITIES}"
    )


def compose_results(results: list[tuple[str, Any]], state: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for name, result in results:
        writer = _WRITERS.get(name)
        if not isinstance(result, Mapping):
            continue
        if "error" in result and name not in ("get_quote",):
            parts.append(f"Sorry, {result['error']}.")
        elif writer is not None:
            parts.append(writer(result, state))
    return "\n\n".join(p for p in parts if p) or "Done!"


def _name(result: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    return f"Nice to meet you, {result.get('name')}! I'll remember that."


def _remembered(result: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    return f"Got it, I'll remember that {literal(spoken(str(result.get('remembered', ''))))}."


def _updated(result: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    return f"Got it, I've updated that: {literal(spoken(str(result.get('text', ''))))}."


def _forgotten(result: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    return "Done, I've forgotten that."


def _name_forgotten(result: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    return 'Done, I\'ve forgotten your name. Tell me again any time with "call me ...".'


def _disliked(result: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    topics = as_list(result.get("dislikes"))
    topic = topics[-1] if topics else "that topic"
    return f"Got it: no more {topic} jokes or facts."


def _joke(result: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    return _pick(
        result,
        "joke",
        "Here's one about {t}:",
        "Since you like {t} jokes:",
        "I don't know a {t} joke yet, but here's a favourite of mine:",
    )


def _fact(result: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    return _pick(
        result,
        "fact",
        "Nerdy fact about {t}:",
        "Since you like {t}, a nerdy fact:",
        "I have nothing on {t} yet, so here's another nerdy fact:",
        "Nerdy fact:",
    )


def _pick(
    result: Mapping[str, Any], key: str, matched: str, favourite: str, missed: str, plain: str = ""
) -> str:
    topic, body = result.get("topic"), str(result.get(key, ""))
    if not topic:
        lead = plain
    elif result.get("from_favourites"):
        lead = favourite.format(t=topic) if result.get("matched_topic") else plain
    else:
        lead = matched.format(t=topic) if result.get("matched_topic") else missed.format(t=topic)
    return f"{lead}\n{body}" if lead else body


def format_quote(q: Mapping[str, Any]) -> str:
    label = f"{q['symbol']} ({q['name']})" if q.get("name") else str(q["symbol"])
    line = f"{label}: {_money(q['price'])} {q.get('currency', '')}".rstrip()
    change, pct = q.get("change"), q.get("change_percent")
    if change is not None and pct is not None:
        direction = "up" if change > 0 else "down" if change < 0 else "flat"
        line += f", {direction} {_money(abs(change))} ({pct:+.2f}%) today"
    return line


def _quote(result: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    if "error" in result:
        return f"Sorry, {result['error']}."
    return format_quote(result["quote"])


def _edit(result: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    return describe(result) + "\n" + _show(result, state)


def _show(result: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    symbols = result.get("watchlist") or []
    if not symbols:
        return 'Your watchlist is empty. Try "add AAPL to my watchlist".'
    return f"Your watchlist: {', '.join(symbols)}."


def _watch_quotes(result: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    if not result.get("watchlist"):
        return _show(result, state)
    lines = ["Your watchlist today:"] + [f"- {format_quote(q)}" for q in result.get("quotes", [])]
    for symbol, reason in (result.get("unavailable") or {}).items():
        lines.append(f"- {symbol}: {reason}")
    if result.get("not_looked_up"):
        skipped = result["not_looked_up"]
        lines.append(f"({skipped} more not looked up: at most {MAX_QUOTES_PER_CALL} at once.)")
    return "\n".join(lines)


def _money(value: float) -> str:
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4f}"


_WRITERS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], str]] = {
    "set_user_name": _name,
    "remember": _remembered,
    "update_memory": _updated,
    "forget_memory": _forgotten,
    "forget_name": _name_forgotten,
    "add_dislike": _disliked,
    "tell_joke": _joke,
    "nerd_fact": _fact,
    "show_chart": lambda result, state: f"Here is the chart: {result.get('chart')}.",
    "get_quote": _quote,
    "watchlist_add": _edit,
    "watchlist_remove": _edit,
    "watchlist_show": _show,
    "watchlist_quotes": _watch_quotes,
    # alerts and reminders (agents/schedule_tools.py): their results carry the commands' words
    **dict.fromkeys(
        [
            *("set_alert", "list_alerts", "remove_alert"),
            *("set_reminder", "list_reminders", "remove_reminder"),
        ],
        lambda result, state: str(result.get("message") or ""),
    ),
}
