"""The tools that set alerts and reminders by chat: the stock analyst's `set_alert`,
`list_alerts`, `remove_alert`; the manager's `set_reminder`, `list_reminders`,
`remove_reminder`.

The rules are agents/schedules.py's (the /alert and /remind commands use the same), the jobs
the user's data: a tool only collects `ScheduleChange`s on its ToolContext, stored on the
tool-result event and applied with it, like state. A job fires into the chat the message came
from (the runner binds it; a tool never names a chat or a user). Each result carries a
`message` in the commands' words, which the offline model shows as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from agents.agent import Tool, ToolContext
from agents.profile import TICKER_HINT, TIME_ZONE_KEY, parse_ticker
from agents.schedules import (
    MAX_ALERTS,
    MAX_REMINDERS,
    AlertOp,
    ScheduleError,
    alert_line,
    local_stamp,
    parse_condition,
    parse_when,
    reminder_line,
    reminder_text,
    zone_or_default,
)
from agents.user_schedules import UserSchedules
from storage.types import Job, ScheduleChange, new_id

Clock = Callable[[], float]
NO_CHAT = "alerts and reminders can only be set in a chat with me"


def alert_tools(clock: Clock = time.time) -> tuple[Tool, ...]:
    async def set_alert(
        ctx: ToolContext, symbol: Any, condition: Any, value: Any
    ) -> Mapping[str, Any]:
        schedules = ctx.schedules
        ticker = parse_ticker(symbol)
        if schedules is None or ticker is None:
            return _error(NO_CHAT if schedules is None else TICKER_HINT)
        try:
            rule = parse_condition([str(condition), _amount(value)])
        except ScheduleError as exc:
            return _error(str(exc))
        if len(await schedules.jobs("alert")) >= MAX_ALERTS:
            return _error(f"you have {MAX_ALERTS} alerts already; remove one first")
        job = _job(
            ctx, schedules, "alert", clock(), symbol=ticker, op=rule.op.value, value=rule.value
        )
        ctx.change_schedule(ScheduleChange("add", job=job))
        where = "here" if schedules.origin.chat_id else "in our private chat"
        said = f"{ticker} {rule.describe()}"
        return {"ok": True, "alert": said, "message": f"OK: I'll tell you {where} when {said}."}

    return (
        Tool(
            "set_alert",
            "Tell the user, in this chat, when a stock crosses a price (condition above or "
            "below, value the price) or moves by a percentage in a day (condition move, value "
            f"the percent). At most {MAX_ALERTS} alerts per user.",
            set_alert,
            {
                "type": "object",
                "properties": {
                    "symbol": {"type": "string", "description": "Ticker, e.g. TSLA"},
                    "condition": {"type": "string", "enum": [op.value for op in AlertOp]},
                    "value": {"type": "number", "description": "A price, or a percent"},
                },
                "required": ["symbol", "condition", "value"],
            },
        ),
        *_list_and_remove("alert", alert_line, "price alert", "You have no price alerts."),
    )


def reminder_tools(clock: Clock = time.time) -> tuple[Tool, ...]:
    async def set_reminder(ctx: ToolContext, when: Any, text: Any) -> Mapping[str, Any]:
        schedules = ctx.schedules
        if schedules is None:
            return _error(NO_CHAT)
        zone = _zone(ctx)
        now = clock()
        try:
            due, what = parse_when(str(when), now, zone), reminder_text(str(text))
        except ScheduleError as exc:
            return _error(str(exc))
        if len(await schedules.jobs("reminder")) >= MAX_REMINDERS:
            return _error(f"you have {MAX_REMINDERS} reminders pending; remove one first")
        job = _job(ctx, schedules, "reminder", now, text=what, due_at=due, zone=zone.key)
        ctx.change_schedule(ScheduleChange("add", job=job))
        stamp = f"{local_stamp(due, zone)} ({zone.key})"
        return {"ok": True, "due": stamp, "message": f'OK: at {stamp} I\'ll remind you: "{what}"'}

    return (
        Tool(
            "set_reminder",
            "Remind the user, in this chat, of something. `when` as the user said it: "
            '"in 10 minutes", "in 1h30m", "at 18:30", "tomorrow at 9", "2026-12-24 18:00" '
            f"(their time zone). At most {MAX_REMINDERS} pending per user.",
            set_reminder,
            {
                "type": "object",
                "properties": {
                    "when": {"type": "string", "description": 'e.g. "tomorrow at 9"'},
                    "text": {"type": "string", "description": "What to remind them of"},
                },
                "required": ["when", "text"],
            },
        ),
        *_list_and_remove(
            "reminder", reminder_line, "pending reminder", "You have no reminders pending."
        ),
    )


_NO_ARGS: Mapping[str, Any] = {"type": "object", "properties": {}}
_NUMBER: Mapping[str, Any] = {
    "type": "object",
    "properties": {"number": {"type": "integer", "description": "Its number in the list"}},
    "required": ["number"],
}


def _list_and_remove(
    kind: str, line: Callable[[Job], str], noun: str, empty: str
) -> tuple[Tool, Tool]:
    """`list_<kind>s` and `remove_<kind>`: one way to number a user's jobs of any kind, so the
    number a list shows is the number removal takes. `noun`: a job, as the model is told."""

    async def list_jobs(ctx: ToolContext) -> Mapping[str, Any]:
        if ctx.schedules is None:
            return _error(NO_CHAT)
        shown = [line(job) for job in await ctx.schedules.jobs(kind)]
        return _listing(ctx, f"{kind}s", shown, empty)

    async def remove_job(ctx: ToolContext, number: Any) -> Mapping[str, Any]:
        return await _remove(ctx, kind, number, line)

    return (
        Tool(f"list_{kind}s", f"The user's {noun}s, numbered.", list_jobs, _NO_ARGS),
        Tool(f"remove_{kind}", f"Remove a {noun} by its number.", remove_job, _NUMBER),
    )


def _job(ctx: ToolContext, schedules: UserSchedules, kind: str, now: float, **fields: Any) -> Job:
    origin = schedules.origin
    fields.setdefault("zone", _zone(ctx).key)
    return Job(
        id=new_id(),
        kind=kind,
        platform=origin.platform,
        chat_id=origin.chat_id,
        platform_user_id=origin.platform_user_id,
        created_at=now,
        user_id=ctx.user_id,
        **fields,
    )


async def _remove(
    ctx: ToolContext, kind: str, number: Any, line: Callable[[Job], str]
) -> Mapping[str, Any]:
    if ctx.schedules is None:
        return _error(NO_CHAT)
    jobs = await ctx.schedules.jobs(kind)
    index = _index(number)
    if index is None or not 1 <= index <= len(jobs):
        return _error(f"there is no {kind} number {str(number)[:10]} (you have {len(jobs)})")
    ctx.change_schedule(ScheduleChange("remove", job_id=jobs[index - 1].id))
    ctx.reveal_private()  # the answer names the job removed
    return {
        "ok": True,
        "removed": line(jobs[index - 1]),
        "message": f"Removed: {line(jobs[index - 1])}",
    }


def _listing(ctx: ToolContext, kind: str, lines: list[str], empty: str) -> Mapping[str, Any]:
    """The user's jobs, numbered as /alerts and /reminders number them: private, like those
    commands' answers (the runner keeps the answer out of a shared chat)."""
    ctx.reveal_private()
    numbered = [f"{n}. {text}" for n, text in enumerate(lines, start=1)]
    message = f"Your {kind}:\n" + "\n".join(numbered) if numbered else empty
    return {kind: numbered, "message": message}


def _zone(ctx: ToolContext) -> ZoneInfo:
    return zone_or_default(ctx.get(TIME_ZONE_KEY))


def _amount(value: Any) -> str:
    """A model may send 150, 150.0, "150", "$150" or "5%": the condition parser's words."""
    return str(value).strip()


def _index(number: Any) -> int | None:
    try:
        return int(str(number).strip().lstrip("#"))
    except ValueError:
        return None


def _error(text: str) -> dict[str, Any]:
    return {"error": text.rstrip(".")}
