"""/alert, /alerts, /remind, /reminders, /digest and /tz: what the bot sends on its own.

A job fires into the chat it was set in (a private chat: the user's private chat with the bot).
Every change is recorded as a `system` event carrying `schedule_changes` (and, for /tz, the
time zone as `user:` state), so it commits with the event and a redelivered command changes
nothing twice (job ids derive from the event id). Lists and removals are private; the rules
and wording are agents/schedules.py's, shared with the agents' tools.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from agents.profile import TICKER_HINT, TIME_ZONE_KEY, parse_ticker
from agents.quotes import Quote, QuoteError, UnknownTicker
from agents.schedules import (
    ALERT_USAGE,
    DIGEST_USAGE,
    MAX_ALERTS,
    MAX_REMINDERS,
    TZ_USAGE,
    ScheduleError,
    alert_line,
    local_stamp,
    next_at,
    parse_clock,
    parse_condition,
    parse_reminder,
    parse_zone,
    reminder_line,
    zone_or_default,
)
from bot.messages import Action, ChatKind, CommandOption, CommandSpec, Reply
from bot.scheduler import QuoteSource
from storage import Store
from storage.types import Job, ScheduleChange

if TYPE_CHECKING:
    from bot.commands import CommandContext

# (ctx, suffix, text, state delta, schedule changes) -> stored; UserCommands._record.
Record = Callable[
    ["CommandContext", str, str, dict[str, Any], tuple[ScheduleChange, ...]], Awaitable[bool]
]
State = Callable[["CommandContext"], Awaitable[dict[str, Any]]]

SCHEDULE_COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "alert",
        "Tell me when a stock crosses a price or moves (or remove an alert)",
        options=(
            CommandOption(
                "ticker", "Ticker symbol, e.g. AAPL (or 'remove')", required=True, autocomplete=True
            ),
            CommandOption("condition", "above, below or move", choices=("above", "below", "move")),
            CommandOption("value", "A price, a percent like 5% (move), or the number to remove"),
        ),
    ),
    CommandSpec("alerts", "List your price alerts"),
    CommandSpec(
        "remind",
        "Remind me: in 10m / at 09:00 / on YYYY-MM-DD HH:MM (or remove one)",
        options=(
            CommandOption(
                "when", "in 1h30m, at 09:00, 2026-12-24 18:00 (or 'remove')", required=True
            ),
            CommandOption("text", "What to remind you of (or the number to remove)", required=True),
        ),
    ),
    CommandSpec("reminders", "List your pending reminders"),
    CommandSpec(
        "digest",
        "Your watchlist every day at a time of yours (or off)",
        options=(CommandOption("time", "HH:MM in your time zone, or off"),),
    ),
    CommandSpec(
        "tz",
        "Show or set your time zone",
        options=(CommandOption("zone", "An IANA time zone, e.g. Europe/Berlin"),),
    ),
)


def job_id(event_id: str, index: int = 0) -> str:
    """Derived from the recording event: a redelivered command adds the same job (no-op)."""
    return hashlib.blake2b(f"{event_id}#{index}".encode(), digest_size=6).hexdigest()


def _private(text: str, actions: tuple[Action, ...] = ()) -> list[Reply]:
    return [Reply(text, private=True, actions=actions)]


class ScheduleCommands:
    """The proactive-message commands of one app; UserCommands hands them over."""

    def __init__(
        self,
        store: Store,
        app_name: str,
        record: Record,
        state: State,
        clock: Callable[[], float] = time.time,
        quotes: QuoteSource | None = None,
    ) -> None:
        """`quotes`: what /alert checks a symbol with (none: any well-formed one is taken)."""
        self._quotes = quotes
        self._store = store
        self._app = app_name
        self._record = record
        self._state = state
        self._clock = clock

    def handles(self, name: str) -> bool:
        return any(c.name == name for c in SCHEDULE_COMMANDS)

    async def run(self, ctx: CommandContext, name: str, args: tuple[str, ...]) -> list[Reply]:
        handler = getattr(self, f"_cmd_{name}")
        try:
            return await handler(ctx, args)
        except ScheduleError as exc:
            return [Reply(str(exc))]

    async def _jobs(self, ctx: CommandContext, kind: str) -> list[Job]:
        return [j for j in await self._store.jobs(self._app, ctx.user_id) if j.kind == kind]

    def _new_job(self, ctx: CommandContext, kind: str, **fields: Any) -> Job:
        inc = ctx.incoming
        # The digest lists the user's watchlist, which is theirs alone: always the private
        # chat. Alerts and reminders fire where they were set (the user said them there).
        private = inc.chat_kind is ChatKind.PRIVATE or kind == "digest"
        return Job(
            id=job_id(ctx.event_id(kind)),
            kind=kind,
            platform=inc.platform,
            chat_id=None if private else inc.chat_id,
            platform_user_id=inc.platform_user_id,
            created_at=self._clock(),
            **fields,
        )

    async def _zone(self, ctx: CommandContext) -> ZoneInfo:
        return zone_or_default((await self._state(ctx)).get(TIME_ZONE_KEY))

    # -- alerts ------------------------------------------------------------------------------
    async def _cmd_alert(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        if len(args) == 2 and args[0].lower() == "remove":
            return await self._remove(ctx, "alert", args[1], alert_line)
        if len(args) != 3:
            return [Reply(ALERT_USAGE)]
        symbol = parse_ticker(args[0])
        if symbol is None:
            return [Reply(f"{ALERT_USAGE}\n{TICKER_HINT}")]
        rule = parse_condition(list(args[1:]))
        if len(await self._jobs(ctx, "alert")) >= MAX_ALERTS:
            return [Reply(f"You have {MAX_ALERTS} alerts, the most I keep — remove one first.")]
        current = await self._current(symbol)
        job = self._new_job(ctx, "alert", symbol=symbol, op=rule.op.value, value=rule.value)
        now = "" if current is None else f" (now {current.price:,.2f} {current.currency})"
        text = f"Alert set: {alert_line(job)}{now}. I'll tell you here when it happens."
        await self._record(ctx, "alert", text, {}, (ScheduleChange("add", job),))
        return [Reply(text)]

    async def _cmd_alerts(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        jobs = await self._jobs(ctx, "alert")
        if not jobs:
            return _private("No alerts. Set one with /alert AAPL above 200")
        return self._listing("alert", "Your alerts", jobs, alert_line)

    async def _current(self, symbol: str) -> Quote | None:
        """The symbol's quote now, or None when it cannot be checked (no provider, or it is
        down: the alert is set anyway). A symbol the provider does not know is refused."""
        if self._quotes is None:
            return None
        try:
            return await self._quotes.get_quote(symbol)
        except UnknownTicker:
            unknown = f"I couldn't find a quote for {symbol}; check the symbol."
            raise ScheduleError(unknown) from None
        except QuoteError:
            return None

    # -- reminders ---------------------------------------------------------------------------
    async def _cmd_remind(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        if len(args) == 2 and args[0].lower() == "remove":
            return await self._remove(ctx, "reminder", args[1], reminder_line)
        zone = await self._zone(ctx)
        request = parse_reminder(" ".join(args), self._clock(), zone)
        if len(await self._jobs(ctx, "reminder")) >= MAX_REMINDERS:
            return [Reply(f"You have {MAX_REMINDERS} reminders waiting — remove one first.")]
        job = self._new_job(ctx, "reminder", text=request.text, due_at=request.due, zone=zone.key)
        when = local_stamp(request.due, zone)
        text = f'Reminder set for {when} ({zone.key}): "{request.text}"'
        await self._record(ctx, "remind", text, {}, (ScheduleChange("add", job),))
        return [Reply(text)]

    async def _cmd_reminders(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        jobs = sorted(await self._jobs(ctx, "reminder"), key=lambda j: (j.created_at, j.id))
        if not jobs:
            return _private("No reminders. Set one with /remind in 10m stretch")
        return self._listing("remind", "Your reminders", jobs, reminder_line)

    @staticmethod
    def _listing(
        command: str, title: str, jobs: Sequence[Job], line: Callable[[Job], str]
    ) -> list[Reply]:
        numbered = "\n".join(f"{n}. {line(job)}" for n, job in enumerate(jobs, start=1))
        # A button names its job by id: pressed after the list changed, it still removes the
        # one shown beside it (or says it is gone), never whichever now has that number.
        buttons = tuple(
            Action(f"Remove {n}", f"/{command} remove {job.id}")
            for n, job in enumerate(jobs, start=1)
        )
        return _private(f"{title}:\n{numbered}", buttons)

    async def _remove(
        self, ctx: CommandContext, kind: str, which: str, line: Callable[[Job], str]
    ) -> list[Reply]:
        """`which` is the number the list shows (typed) or the job's id (a button)."""
        jobs = await self._jobs(ctx, kind)
        index = int(which) if which.isdigit() and len(which) < 6 else 0
        by_id = [j for j in jobs if j.id == which]
        if not by_id and not 1 <= index <= len(jobs):
            if not which.isdigit():
                return _private(f"That {kind} is already gone.")
            return _private(f"There is no {kind} number {which[:10]} (you have {len(jobs)}).")
        gone = by_id[0] if by_id else jobs[index - 1]
        text = f"Removed: {line(gone)}"
        change = ScheduleChange("remove", job_id=gone.id)
        await self._record(ctx, f"{kind}-remove", text, {}, (change,))
        return _private(text)

    # -- digest and time zone ----------------------------------------------------------------
    async def _cmd_digest(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        current = await self._jobs(ctx, "digest")
        if not args:
            shown = f"every day at {current[0].at} ({current[0].zone})" if current else "off"
            return _private(f"Your digest: {shown}. {DIGEST_USAGE}")
        if len(args) != 1:
            return [Reply(DIGEST_USAGE)]
        removes = tuple(ScheduleChange("remove", job_id=j.id) for j in current)
        if args[0].lower() == "off":
            text = "Digest off." if current else "Your digest was off already."
            await self._record(ctx, "digest", text, {}, removes)
            return [Reply(text)]
        at, zone = parse_clock(args[0]), await self._zone(ctx)
        job = self._digest(ctx, at.strftime("%H:%M"), zone)
        text = (
            f"Every day at {job.at} ({zone.key}) I'll send you your watchlist with prices"
            " (in our private chat)."
        )
        await self._record(ctx, "digest", text, {}, (*removes, ScheduleChange("add", job)))
        return [Reply(text)]

    def _digest(self, ctx: CommandContext, at: str, zone: ZoneInfo) -> Job:
        due = next_at(self._clock(), parse_clock(at), zone)
        return self._new_job(ctx, "digest", at=at, zone=zone.key, due_at=due)

    async def _cmd_tz(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        if not args:
            zone = await self._zone(ctx)
            return _private(f"Your time zone: {zone.key}. {TZ_USAGE}")
        if len(args) != 1:
            return [Reply(TZ_USAGE)]
        zone = parse_zone(args[0])
        changes: tuple[ScheduleChange, ...] = ()
        for old in await self._jobs(ctx, "digest"):  # the digest follows the user's clock
            new = self._digest(ctx, old.at or "09:00", zone)
            # It keeps going to the account it was set on.
            moved = replace(new, platform=old.platform, platform_user_id=old.platform_user_id)
            changes += (ScheduleChange("remove", job_id=old.id), ScheduleChange("add", moved))
        text = f"Your time zone is now {zone.key}."
        await self._record(ctx, "tz", text, {TIME_ZONE_KEY: zone.key}, changes)
        return _private(text)
