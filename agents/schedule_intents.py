"""What a message asks of alerts and reminders, as the offline model reads it: "tell me when
TSLA drops below 150", "alert me if AAPL goes above 200", "remind me in 10 minutes to stretch",
"remind me tomorrow at 9 to call mom", "show my alerts", "remove reminder 2".

Each reading is an `Intent` whose `arguments` are the tool call's (agents/schedule_tools.py):
the time stays as the user said it, for `parse_when`; the tool checks everything again.
"""

from __future__ import annotations

import re

from agents.intents import Intent, find_symbols
from agents.schedules import WHEN_PATTERN

# Tools whose results tell the user's jobs back: an answer from them is private (only the user
# sees it, as with /alerts and /reminders).
PRIVATE_TOOLS = frozenset({"list_alerts", "list_reminders", "remove_alert", "remove_reminder"})
# kind -> the tool that serves it (the analyst's alert tools, the manager's reminder tools)
SCHEDULE_TOOLS = {
    "alert_set": "set_alert",
    "alert_list": "list_alerts",
    "alert_remove": "remove_alert",
    "remind_set": "set_reminder",
    "remind_list": "list_reminders",
    "remind_remove": "remove_reminder",
}

_ASK_TO_WATCH = re.compile(
    r"\b(?:tell|notify|alert|ping|warn|message|let)\s+me\b.*?\b(?:when|if|once|as soon as)\s+(.+)",
    re.I | re.S,
)
_BELOW = r"below|under|beneath|drops?|falls?|dips?|sinks?"
_ABOVE = r"above|over|rises?|climbs?|hits?|reaches|tops?|exceeds?|goes up|gets to"
_NUMBER = r"\$?(\d{1,9}(?:[.,]\d{1,6})?)\s*(%|percent)?"
_CONDITION = re.compile(rf"\b({_BELOW}|{_ABOVE}|moves?|swings?|changes?)\b.*?{_NUMBER}", re.I)
_REMIND = re.compile(r"\bremind\s+me\s+(.+)", re.I | re.S)
_WHEN_FIRST = re.compile(rf"^({WHEN_PATTERN})\s+(?:to\s+|that\s+|about\s+)?(.+)$", re.I | re.S)
_WHEN_LAST = re.compile(rf"^(?:to\s+|that\s+|about\s+)?(.+?)\s+({WHEN_PATTERN})[.!]?$", re.I | re.S)
_LIST = re.compile(r"\b(?:show|list|what(?:'s| are| is)?|which|see|view|my)\b", re.I)
_REMOVE = re.compile(
    r"\b(?:remove|delete|cancel|drop|clear)\s+(?:my\s+|the\s+)?(alert|reminder)\s*"
    r"(?:#|number|no\.?)?\s*(\d{1,3})\b",
    re.I,
)


def read_schedule_intent(text: str) -> Intent | None:
    """The alert or reminder request in `text`, if it is one."""
    return _removal(text) or _reminder(text) or _alert(text) or _listing(text)


def _alert(text: str) -> Intent | None:
    asked = _ASK_TO_WATCH.search(text)
    if asked is None:
        return None
    rest = asked.group(1)
    condition = _CONDITION.search(rest)
    symbols = find_symbols(rest[: condition.start()] if condition else rest)
    if condition is None or not symbols:
        return None
    word, amount, percent = condition.group(1).lower(), condition.group(2), condition.group(3)
    op = "move" if percent else "below" if re.fullmatch(_BELOW, word) else "above"
    value = float(amount.replace(",", "."))
    return Intent(
        "alert_set",
        symbols=symbols[:1],
        arguments=(("symbol", symbols[0]), ("condition", op), ("value", value)),
    )


def _reminder(text: str) -> Intent | None:
    asked = _REMIND.search(text.strip())
    if asked is None:
        return None
    request = asked.group(1).strip()
    first = _WHEN_FIRST.match(request)
    if first is not None:
        when, what = first.group(1), first.group(2)
    elif (last := _WHEN_LAST.match(request)) is not None:
        what, when = last.group(1), last.group(2)
    else:
        return None
    what = what.strip().rstrip(".!")
    return Intent("remind_set", arguments=(("when", when), ("text", what)))


def _removal(text: str) -> Intent | None:
    found = _REMOVE.search(text)
    if found is None:
        return None
    kind = "alert_remove" if found.group(1).lower() == "alert" else "remind_remove"
    return Intent(kind, arguments=(("number", int(found.group(2))),))


def _listing(text: str) -> Intent | None:
    lowered = text.lower()
    if not _LIST.search(lowered):
        return None
    if re.search(r"\b(?:price\s+)?alerts\b", lowered):
        return Intent("alert_list")
    if re.search(r"\breminders\b", lowered):
        return Intent("remind_list")
    return None
