"""The rules of proactive messages: price alerts, reminders, the daily digest, time zones.

One home, because the commands (bot/schedule_commands.py), the agents' tools and the scheduler
(bot/scheduler.py) all use them: a duration the command accepts is one the tool accepts, and
the scheduler fires exactly the condition the user set.

Time zones are IANA names (`zoneinfo`). Local -> UTC is DST-correct: a local time that does not
exist (the spring-forward gap, e.g. 02:30 in Europe/Berlin on the last Sunday of March) moves
forward by the gap (03:30); an ambiguous one (the autumn fall-back hour) takes its first
occurrence (summer time, `fold=0`).

Everything here is pure: values in, values out (times are UTC seconds or aware datetimes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage.types import Job

MAX_ALERTS = 20
MAX_REMINDERS = 50
MAX_REMINDER_TEXT = 500
# After firing, an alert re-arms only once the price is back across its threshold by 1%, so a
# price wobbling around the threshold does not fire it again and again.
REARM_FRACTION = 0.01
# A reminder sent later than this after its time says it is late; one missed by more than
# LATE_REPORT_SECONDS is not sent but reported in the user's next conversation.
LATE_GRACE_SECONDS = 120.0
LATE_REPORT_SECONDS = 24 * 3600.0
MAX_DURATION = timedelta(days=3650)
DEFAULT_ZONE = "UTC"
# The trading day of `move` alerts: the date on the US exchanges' clock.
MARKET_ZONE = ZoneInfo("America/New_York")

_DURATION = re.compile(r"^(?:(\d{1,5})d)?(?:(\d{1,5})h)?(?:(\d{1,5})m)?(?:(\d{1,7})s)?$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_PERCENT = re.compile(r"^\+?(\d{1,3}(?:\.\d{1,4})?)%?$")
_PRICE = re.compile(r"^\$?(\d{1,9}(?:\.\d{1,6})?)$")

ALERT_USAGE = "Usage: /alert TICKER above|below PRICE, /alert TICKER move PCT%, /alert remove N"
REMIND_USAGE = (
    "Usage: /remind in DURATION TEXT (90s, 10m, 2h, 1d, 1h30m), /remind at HH:MM TEXT,"
    " /remind YYYY-MM-DD HH:MM TEXT, /remind remove N"
)
DIGEST_USAGE = "Usage: /digest HH:MM (every day, your time) or /digest off"
TZ_USAGE = "Usage: /tz Area/City (an IANA time zone, e.g. Europe/Berlin), or /tz to see yours"


class ScheduleError(ValueError):
    """Input that cannot be scheduled; the message is the short answer the user gets."""


class AlertOp(StrEnum):
    ABOVE = "above"
    BELOW = "below"
    MOVE = "move"


@dataclass(frozen=True, slots=True)
class AlertCondition:
    """`above`/`below` a price, or `move`: the day's change passes +-value percent."""

    op: AlertOp
    value: float

    def describe(self) -> str:
        if self.op is AlertOp.MOVE:
            return f"moves {_number(self.value)}% in a day"
        return f"{self.op.value} {_number(self.value)}"

    def met(self, price: float, change_percent: float | None) -> bool:
        if self.op is AlertOp.ABOVE:
            return price >= self.value
        if self.op is AlertOp.BELOW:
            return price <= self.value
        return change_percent is not None and abs(change_percent) >= self.value

    def rearmed(self, price: float) -> bool:
        """A fired above/below alert is ready again: the price went back across by 1%."""
        if self.op is AlertOp.ABOVE:
            return price <= self.value * (1 - REARM_FRACTION)
        if self.op is AlertOp.BELOW:
            return price >= self.value * (1 + REARM_FRACTION)
        return False  # `move` alerts re-arm by the trading day instead


def _number(value: float) -> str:
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def parse_condition(words: list[str]) -> AlertCondition:
    """`above PRICE`, `below PRICE` or `move PCT%` (the words after the ticker)."""
    if len(words) != 2 or words[0].lower() not in {op.value for op in AlertOp}:
        raise ScheduleError(ALERT_USAGE)
    op = AlertOp(words[0].lower())
    pattern = _PERCENT if op is AlertOp.MOVE else _PRICE
    found = pattern.match(words[1].replace(",", ""))
    value = float(found.group(1)) if found else 0.0
    if value <= 0 or (op is AlertOp.MOVE and value >= 100):
        what = "a percentage between 0 and 100, e.g. 5%" if op is AlertOp.MOVE else "a price"
        raise ScheduleError(f"{words[1][:20]!r} is not {what}. {ALERT_USAGE}")
    return AlertCondition(op, value)


def trading_day(at: float) -> str:
    """The trading day (US exchanges' date) a `move` alert fires at most once in."""
    return datetime.fromtimestamp(at, MARKET_ZONE).date().isoformat()


def parse_duration(text: str) -> timedelta:
    """`90s`, `10m`, `2h`, `1d` and combinations in that order (`1h30m`, `1d2h`)."""
    found = _DURATION.match(text.strip().lower())
    if not text.strip() or found is None or not any(found.groups()):
        raise ScheduleError(f"{text[:20]!r} is not a duration (90s, 10m, 2h, 1d, 1h30m).")
    days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
    span = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if not timedelta(seconds=1) <= span <= MAX_DURATION:
        raise ScheduleError("A reminder can be from 1 second to 10 years away.")
    return span


def parse_clock(text: str) -> time:
    """`HH:MM`, 24-hour."""
    found = _CLOCK.match(text.strip())
    if found is None:
        raise ScheduleError(f"{text[:20]!r} is not a time of day (HH:MM, e.g. 09:00).")
    return time(int(found.group(1)), int(found.group(2)))


def parse_date(text: str) -> date:
    found = _DATE.match(text.strip())
    try:
        if found is None:
            raise ValueError
        return date(*(int(part) for part in found.groups()))
    except ValueError:
        raise ScheduleError(f"{text[:20]!r} is not a date (YYYY-MM-DD).") from None


def parse_zone(name: str) -> ZoneInfo:
    """An IANA time zone name (`Europe/Berlin`, `UTC`)."""
    cleaned = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+){0,2}", cleaned):
        raise ScheduleError(f"{cleaned[:40]!r} is not a time zone. {TZ_USAGE}")
    try:
        return ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"{cleaned[:40]!r} is not a time zone I know. {TZ_USAGE}") from None


def zone_or_default(name: object) -> ZoneInfo:
    """The user's stored zone; an unknown or missing one is UTC."""
    try:
        return parse_zone(name) if isinstance(name, str) else ZoneInfo(DEFAULT_ZONE)
    except ScheduleError:
        return ZoneInfo(DEFAULT_ZONE)


def local_to_utc(day: date, at: time, zone: ZoneInfo) -> float:
    """UTC seconds of `day at` in `zone`: a nonexistent time moves forward by the gap, an
    ambiguous one takes its first occurrence."""
    # fold=0 reads a wall time with the offset in force before a change: in a gap that is
    # the instant the gap's length later (the time moved forward); in an overlap, the first.
    instant = datetime.combine(day, at, tzinfo=zone).astimezone(UTC)
    return instant.timestamp()


def next_at(now: float, at: time, zone: ZoneInfo) -> float:
    """The next time the clock in `zone` shows `at`, strictly after `now` (today or later)."""
    today = datetime.fromtimestamp(now, zone).date()
    for offset in range(3):
        due = local_to_utc(today + timedelta(days=offset), at, zone)
        if due > now:
            return due
    raise AssertionError("unreachable: a day later always comes")


def next_daily(after: float, at: time, zone: ZoneInfo) -> float:
    """The digest's next time: `at` local on the first local day after the one of `after`."""
    day = datetime.fromtimestamp(after, zone).date() + timedelta(days=1)
    return local_to_utc(day, at, zone)


def local_day(at: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, zone).date().isoformat()


def local_clock(at: float, zone: ZoneInfo) -> str:
    """`HH:MM` local."""
    return datetime.fromtimestamp(at, zone).strftime("%H:%M")


def local_stamp(at: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, zone).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class ReminderRequest:
    due: float  # UTC seconds
    text: str


def parse_reminder(args: str, now: float, zone: ZoneInfo) -> ReminderRequest:
    """`in DURATION TEXT`, `at HH:MM TEXT` (next occurrence in `zone`) or
    `YYYY-MM-DD HH:MM TEXT` (in `zone`; must be in the future)."""
    words = args.split(maxsplit=2)
    if len(words) < 3:
        raise ScheduleError(REMIND_USAGE)
    first = words[0].lower()
    if first == "in":
        due = now + parse_duration(words[1]).total_seconds()
    elif first == "at":
        due = next_at(now, parse_clock(words[1]), zone)
    else:
        due = local_to_utc(parse_date(words[0]), parse_clock(words[1]), zone)
        if due <= now:
            raise ScheduleError(f"{local_stamp(due, zone)} has passed already.")
    return ReminderRequest(due, reminder_text(words[2]))


def reminder_text(text: str) -> str:
    cleaned = " ".join(text.split())
    if not cleaned:
        raise ScheduleError(REMIND_USAGE)
    if len(cleaned) > MAX_REMINDER_TEXT:
        raise ScheduleError(f"A reminder's text can be at most {MAX_REMINDER_TEXT} characters.")
    return cleaned


def alert_line(job: Job) -> str:
    """An alert as /alerts lists it: `AAPL above 200`."""
    rule = AlertCondition(AlertOp(job.op or "above"), float(job.value or 0.0))
    return f"{job.symbol} {rule.describe()}"


def reminder_line(job: Job) -> str:
    """A reminder as /reminders lists it: `2026-12-24 18:00 (Europe/Berlin): "gifts"`."""
    zone = zone_or_default(job.zone)
    return f'{local_stamp(job.due_at or 0.0, zone)} ({zone.key}): "{job.text}"'


def alert_text(symbol: str, condition: AlertCondition, price: float, change: float | None) -> str:
    """What a fired alert says: the ticker, the condition and the price that met it."""
    moved = "" if change is None else f" ({change:+.2f}% today)"
    return f"🔔 {symbol} {condition.describe()}: now {_number(price)}{moved}."


def reminder_message(text: str, due: float, sent_at: float, zone: ZoneInfo) -> str:
    """A reminder quotes its text; one sent late says so."""
    if sent_at - due > LATE_GRACE_SECONDS:
        return f'⏰ Reminder (late: I was offline at {local_clock(due, zone)}): "{text}"'
    return f'⏰ Reminder: "{text}"'


def missed_notice(text: str, due: float, zone: ZoneInfo) -> str:
    """For a reminder missed by more than a day: told once in the next conversation."""
    return f'While I was offline I missed your reminder for {local_stamp(due, zone)}: "{text}"'


# -- as people say it (the agents' tools: "in 10 minutes", "tomorrow at 9") ---------------------
_UNIT = r"(?:seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d)(?![a-z])"
_SPAN = rf"(?:\d{{1,5}}\s*{_UNIT}|an?\s+{_UNIT})"
# The forms `parse_when` takes, as a pattern (the offline model finds them in a message).
WHEN_PATTERN = (
    rf"in\s+{_SPAN}(?:\s*(?:and\s+)?{_SPAN})*"
    r"|(?:(?:today|tomorrow)\s+(?:at\s+)?|at\s+|\d{4}-\d{2}-\d{2}\s+(?:at\s+)?)"
    r"\d{1,2}(?::[0-5]\d)?(?:\s*[ap]m)?(?![\w:])"
)
_SPOKEN_SPAN = re.compile(rf"(\d{{1,5}}|\ban?\b)\s*({_UNIT})")
_SPOKEN_CLOCK = re.compile(r"^(\d{1,2})(?::([0-5]\d))?\s*([ap]m)?$")


def parse_when(text: str, now: float, zone: ZoneInfo) -> float:
    """When a reminder is due, in UTC seconds, as people say it: `in 10 minutes`, `in 1h30m`,
    `at 9`, `at 18:30`, `at 9pm` (the next one), `today at 17:00`, `tomorrow at 9`,
    `tomorrow 09:00`, `2026-12-24 18:00` (local times in `zone`; they must be ahead)."""
    words = " ".join(text.lower().split())
    head, _, rest = words.partition(" ")
    if head == "in":
        return now + parse_duration(_compact_span(rest)).total_seconds()
    clock = spoken_clock(rest.removeprefix("at "))
    if head == "at":
        return next_at(now, clock, zone)
    today = datetime.fromtimestamp(now, zone).date()
    days = {"today": 0, "tomorrow": 1}
    day = today + timedelta(days=days[head]) if head in days else parse_date(head)
    due = local_to_utc(day, clock, zone)
    if due <= now:
        raise ScheduleError(f"{local_stamp(due, zone)} has passed already.")
    return due


def spoken_clock(text: str) -> time:
    """`9`, `09:30`, `9am`, `9:30 pm` -> a time of day (24-hour without am/pm)."""
    found = _SPOKEN_CLOCK.match(text.strip())
    hour = int(found.group(1)) if found else 99
    if found and found.group(3):
        hour = hour % 12 + (12 if found.group(3) == "pm" else 0) if 1 <= hour <= 12 else 99
    if found is None or hour > 23:
        raise ScheduleError(f"{text[:20]!r} is not a time of day (e.g. 9, 09:30, 9pm).")
    return time(hour, int(found.group(2) or 0))


def _compact_span(text: str) -> str:
    """`1 hour and 30 minutes` / `an hour` -> `1h30m` (parse_duration's form)."""
    totals = dict.fromkeys("dhms", 0)
    for count, unit in _SPOKEN_SPAN.findall(text):
        totals[unit[0]] += 1 if count in ("a", "an") else int(count)
    return "".join(f"{n}{unit}" for unit, n in totals.items() if n) or text
