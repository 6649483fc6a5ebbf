"""The scheduler: fires due reminders and digests, polls quotes for price alerts, and sends what
fired through the adapters (docs/architecture.md, "How a proactive message travels").

One per process, started and stopped by bot/app.py with the adapters. Two loops tick every
second (one for 1 and 3, one for 2, so a long poll never holds up a reminder):
1. due reminders and digests are claimed (`ScheduleStore.claim`: exactly once across workers),
   each with its outbox row written in the same transaction - before anything is sent;
2. every `ALERT_POLL_SECONDS` (jittered, backing off while the provider fails; across workers
   on one database, by the one that takes the turn) each distinct alert symbol is quoted once,
   with bounded concurrency; alerts met by a fresh quote are
   claimed the same way (a symbol whose quote failed is not evaluated at all: a failing
   provider delays alerts, never fires one);
3. the outbox is sent: a row goes only after the platform accepted it (SENT); RETRY waits with
   backoff; CHAT_GONE sends it to the user's private chat instead, then to their other linked
   identities. Rows left by a crash are sent at the next start, by the first tick.
The rules (conditions, re-arming, DST, wording) are agents/schedules.py's; `clock` is
injectable so tests step time instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from agents.profile import watchlist_of
from agents.quotes import Quote, QuoteError, QuotesUnavailable
from agents.schedules import (
    LATE_REPORT_SECONDS,
    AlertCondition,
    AlertOp,
    alert_text,
    local_day,
    missed_notice,
    next_at,
    next_daily,
    parse_clock,
    reminder_message,
    trading_day,
    zone_or_default,
)
from bot.messages import Outgoing, OutgoingSender, Reply, SendResult
from storage import Store, StoreError
from storage.types import Claim, Job, OutboxItem

log = logging.getLogger(__name__)

QUOTE_CONCURRENCY = 8
MAX_BACKOFF_FACTOR = 16  # a failing provider is asked at most every 16 polls' time
RETRY_SECONDS = 5.0  # a RETRY send waits this long, doubled per attempt ...
MAX_RETRY_SECONDS = 600.0  # ... up to this
DOWN_AFTER = 2 * QUOTE_CONCURRENCY  # quote failures in a row that end a poll early
BATCH = 500  # jobs claimed / outbox rows sent per tick at most
# An outbox row being sent is hidden from other workers this long; one left by a worker that
# died mid-send is sent by another (or after a restart) once it runs out.
LEASE_SECONDS = 15.0  # the default of OUTBOX_LEASE_SECONDS
STOP_WAIT = 10.0  # seconds a stop waits for the passes in flight


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one alert poll did (bench/alerts.py prints these)."""

    symbols: int  # distinct symbols: one quote request each
    quoted: int  # of them answered
    alerts: int  # alerts evaluated
    fired: int  # outbox rows written
    fetch_seconds: float  # reading the symbols and quoting them
    evaluate_seconds: float  # reading the alerts, evaluating, claiming


class SchedulerObserver(Protocol):
    """Where the scheduler counts (bot.metrics.Metrics). Labels are bounded names."""

    def proactive(self, kind: str, outcome: str) -> None:
        """A send of an `alert`/`reminder`/`digest`: `sent`, `retry`, `chat_gone`,
        `dropped`."""

    def alert_poll(self, phase: str, seconds: float) -> None:
        """How long a poll's `quote` and `evaluate` phases took."""


class Unobserved:
    def proactive(self, kind: str, outcome: str) -> None:
        pass

    def alert_poll(self, phase: str, seconds: float) -> None:
        pass


class QuoteSource(Protocol):
    """What the scheduler quotes with (agents.quotes.QuoteProvider)."""

    async def get_quote(self, raw_symbol: str) -> Quote: ...


class Scheduler:
    def __init__(
        self,
        store: Store,
        app_name: str,
        quotes: QuoteSource,
        senders: Sequence[OutgoingSender],
        *,
        poll_seconds: float = 60.0,
        lease_seconds: float = LEASE_SECONDS,
        tick_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        jitter: float = 0.1,
        concurrency: int = QUOTE_CONCURRENCY,
        observer: SchedulerObserver | None = None,
    ) -> None:
        """`jitter`: each poll is moved up to this fraction of `poll_seconds` later, so many
        processes do not ask the provider in lockstep (0 in tests)."""
        self._store = store
        self._app = app_name
        self._quotes = quotes
        self._senders = {sender.name: sender for sender in senders}
        self._poll = poll_seconds
        self._lease = lease_seconds
        self._tick_seconds = tick_seconds
        self._clock = clock
        self._jitter = jitter
        self._concurrency = concurrency
        self._observer = observer or Unobserved()
        self._next_poll = 0.0
        self._failed_polls = 0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.quote_requests = 0  # for the benchmark and tests: requests made so far

    # -- lifetime ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Begin ticking; the first tick sends what a previous run left in the outbox."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        """Let the passes in flight finish (a send half done would otherwise wait out its
        lease, and on Telegram might arrive twice), then end; cancelled after STOP_WAIT."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_WAIT)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        # Two loops: a long poll (thousands of quotes) never holds up a due reminder.
        await asyncio.gather(self._every_tick(self._due_pass), self._every_tick(self._poll_pass))

    async def _every_tick(self, step: Callable[[float], Awaitable[object]]) -> None:
        while not self._stopping.is_set():
            try:
                await step(self._clock())
            except StoreError as exc:  # a busy or unreachable database: next tick
                log.warning("scheduler: store unavailable: %s", type(exc).__name__)
            except Exception:
                log.exception("scheduler: tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._tick_seconds)

    async def _due_pass(self, now: float) -> None:
        await self.fire_due(now)
        await self.flush(now)

    async def _poll_pass(self, now: float) -> None:
        """Poll when due - and, across the workers on one database, only the one that takes
        the turn (`claim_poll`): one request per distinct symbol per interval in all."""
        if now < self._next_poll:
            return
        taken, self._next_poll = await self._store.claim_poll(self._app, now, self._after(now, 1))
        if taken:
            await self.poll_alerts(now)

    async def tick(self) -> None:
        """One pass of both loops, in order (tests step the clock and call this): due jobs,
        alerts when a poll is due, the outbox."""
        async with self._lock:
            now = self._clock()
            await self.fire_due(now)
            await self._poll_pass(now)
            await self.flush(now)

    # -- reminders and digests ---------------------------------------------------------------
    async def fire_due(self, now: float) -> None:
        jobs = await self._store.due_jobs(self._app, now, BATCH)
        watchlists = {
            job.user_id: watchlist_of(await self._store.user_state(self._app, job.user_id))
            for job in jobs
            if job.kind == "digest"
        }
        # One quote per symbol for all the digests due together (09:00 is popular).
        wanted = list(dict.fromkeys(s for symbols in watchlists.values() for s in symbols))
        quotes = await self._fetch(wanted) if wanted else {}
        claims = [self._due_claim(job, now, watchlists, quotes) for job in jobs]
        await self._store.claim(self._app, claims)

    def _due_claim(
        self,
        job: Job,
        now: float,
        watchlists: Mapping[str, Sequence[str]],
        quotes: Mapping[str, Quote],
    ) -> Claim:
        due = job.due_at or now
        zone = zone_or_default(job.zone)
        if job.kind == "digest":
            at = parse_clock(job.at or "09:00")
            following = next_daily(due, at, zone)
            text = digest_text(watchlists.get(job.user_id, ()), quotes, now, zone)
            outbox = self._outbox(job, f"digest:{job.id}:{local_day(due, zone)}", text, now)
            # Once per local day: the next day's time, or (after days offline) the next one.
            following = max(following, next_at(now, at, zone))
            return Claim(job.id, job.version, next_due=following, outbox=outbox)
        late = now - due > LATE_REPORT_SECONDS
        if late:  # reported once in the user's next conversation instead
            text = missed_notice(job.text, due, zone)
        else:
            text = reminder_message(job.text, due, now, zone)
        outbox = self._outbox(job, f"reminder:{job.id}:{int(due)}", text, now)
        return Claim(job.id, job.version, done=True, outbox=outbox, as_notice=late)

    @staticmethod
    def _outbox(job: Job, outbox_id: str, text: str, now: float) -> OutboxItem:
        return OutboxItem(
            outbox_id, job.user_id, job.platform, job.chat_id, job.platform_user_id, text, now
        )

    # -- alerts ------------------------------------------------------------------------------
    async def poll_alerts(self, now: float) -> PollReport:
        started = time.perf_counter()
        symbols = await self._store.alert_symbols(self._app)
        quotes, down = await self._quote_all(symbols)
        fetched = time.perf_counter()
        if down:  # every worker waits longer
            self._failed_polls += 1
            factor = min(2**self._failed_polls, MAX_BACKOFF_FACTOR)
            self._next_poll = self._after(now, factor)
            await self._store.delay_poll(self._app, self._next_poll)
        else:
            self._failed_polls = 0
        jobs = await self._store.alerts_for(self._app, list(quotes)) if quotes else []
        days = {s: trading_day(q.market_time or now) for s, q in quotes.items()}
        claims = [
            claim
            for job in jobs
            if (claim := alert_claim(job, quotes[job.symbol or ""], days[job.symbol or ""]))
        ]
        fired = 0
        for start in range(0, len(claims), BATCH):
            fired += len(await self._store.claim(self._app, claims[start : start + BATCH]))
        done = time.perf_counter()
        fetch, evaluate = fetched - started, done - fetched
        self._observer.alert_poll("quote", fetch)
        self._observer.alert_poll("evaluate", evaluate)
        return PollReport(len(symbols), len(quotes), len(jobs), fired, fetch, evaluate)

    def _after(self, now: float, factor: float) -> float:
        spread = random.uniform(0, self._jitter) if self._jitter else 0.0
        return now + self._poll * (factor + spread)

    async def _fetch(self, symbols: Sequence[str]) -> dict[str, Quote]:
        return (await self._quote_all(symbols))[0]

    async def _quote_all(self, symbols: Sequence[str]) -> tuple[dict[str, Quote], bool]:
        """One request per symbol, `concurrency` at a time; failures are left out. Once the
        provider looks down (`DOWN_AFTER` failures in a row, none answered), the symbols still
        waiting are given up: 5,000 symbols against a hanging provider would take an hour.
        Also says whether the provider was down (unavailable, and no quote came back; unknown
        symbols do not count)."""
        gate = asyncio.Semaphore(self._concurrency)
        failures_in_a_row = unavailable = 0

        async def one(symbol: str) -> Quote | None:
            nonlocal failures_in_a_row, unavailable
            async with gate:
                if failures_in_a_row >= DOWN_AFTER:
                    return None
                self.quote_requests += 1
                try:
                    quote = await self._quotes.get_quote(symbol)
                except QuotesUnavailable:
                    failures_in_a_row += 1
                    unavailable += 1
                    return None
                except QuoteError:  # an unknown symbol: the provider answered
                    failures_in_a_row = 0
                    return None
                failures_in_a_row = 0
                return quote

        found = await asyncio.gather(*(one(s) for s in symbols))
        quotes = {s: q for s, q in zip(symbols, found, strict=True) if q is not None}
        return quotes, bool(unavailable) and not quotes

    # -- sending -----------------------------------------------------------------------------
    async def flush(self, now: float) -> None:
        until = now + self._lease
        platforms = list(self._senders)  # another process sends the others' rows
        for item in await self._store.lease_outbox(self._app, now, until, platforms, BATCH):
            await self._send(item, now)

    async def _send(self, item: OutboxItem, now: float) -> None:
        sender = self._senders[item.platform]
        reply = Reply(item.text)
        outgoing = Outgoing(
            item.id, item.platform, item.chat_id, item.platform_user_id, item.user_id, reply
        )
        try:
            result = await sender.send_outgoing(outgoing)
        except Exception:
            log.exception("scheduler: %s send_outgoing failed", item.platform)
            result = SendResult.RETRY
        self._observer.proactive(_kind(item), result.value)
        if result is SendResult.SENT:
            await self._store.outbox_sent(self._app, item.id)
        elif result is SendResult.RETRY:
            wait = min(RETRY_SECONDS * 2**item.attempts, MAX_RETRY_SECONDS)
            await self._store.outbox_later(self._app, item.id, now + wait)
        else:
            await self._fall_back(item)

    async def _fall_back(self, item: OutboxItem) -> None:
        """The chat is gone: the same identity's private chat, then each other linked identity
        of the user once (on any platform: the process running it sends it; in the order they
        were made, whichever refused first); with none left the message is dropped."""
        target = (
            replace(item, chat_id=None)
            if item.chat_id is not None
            else await self._next_identity(item)
        )
        if target is None:
            log.warning("scheduler: no chat left for outgoing %s; dropped", item.id)
            self._observer.proactive(_kind(item), "dropped")
            await self._store.outbox_sent(self._app, item.id)
        else:
            await self._store.outbox_redirect(self._app, target)

    async def _next_identity(self, item: OutboxItem) -> OutboxItem | None:
        tried = (*item.tried, f"{item.platform}:{item.platform_user_id}")
        for identity in await self._store.identities(item.user_id):
            if f"{identity.platform}:{identity.platform_user_id}" not in tried:
                return replace(
                    item,
                    platform=identity.platform,
                    chat_id=None,
                    platform_user_id=identity.platform_user_id,
                    tried=tried,
                )
        return None


def alert_claim(job: Job, quote: Quote, day: str) -> Claim | None:
    """What a fresh quote does to one alert: fire it, re-arm it, or nothing (None). `day` is
    the quote's trading day (a `move` alert fires at most once in it)."""
    condition = AlertCondition(AlertOp(job.op or "above"), float(job.value or 0.0))
    change = quote.change_percent
    if condition.op is AlertOp.MOVE:  # once per trading day
        if job.fired_day == day or not condition.met(quote.price, change):
            return None
        return Claim(job.id, job.version, fired_day=day, outbox=_alert_outbox(job, quote, day))
    if job.armed and condition.met(quote.price, change):
        fired = _alert_outbox(job, quote, str(job.version))
        return Claim(job.id, job.version, armed=False, fired_day=job.fired_day, outbox=fired)
    if not job.armed and condition.rearmed(quote.price):
        return Claim(job.id, job.version, armed=True, fired_day=job.fired_day)
    return None


def _alert_outbox(job: Job, quote: Quote, mark: str) -> OutboxItem:
    condition = AlertCondition(AlertOp(job.op or "above"), float(job.value or 0.0))
    text = alert_text(quote.symbol, condition, quote.price, quote.change_percent)
    return OutboxItem(
        f"alert:{job.id}:{mark}",
        job.user_id,
        job.platform,
        job.chat_id,
        job.platform_user_id,
        text,
        time.time(),
    )


def digest_text(
    symbols: Sequence[str], quotes: Mapping[str, Quote], now: float, zone: ZoneInfo
) -> str:
    """The daily digest: the watchlist with prices and day changes."""
    day = datetime.fromtimestamp(now, zone).strftime("%a %d %b")
    if not symbols:
        return f"📰 Your digest ({day}): your watchlist is empty — /watchlist add AAPL"
    lines = [_digest_line(s, quotes.get(s)) for s in symbols]
    return f"📰 Your digest ({day}):\n" + "\n".join(lines)


def _kind(item: OutboxItem) -> str:
    """`alert`, `reminder` or `digest`: the outbox id's first part."""
    return item.id.split(":", 1)[0]


def _digest_line(symbol: str, quote: Quote | None) -> str:
    if quote is None:
        return f"{symbol}: no quote right now"
    change = quote.change_percent
    moved = "" if change is None else f" ({change:+.2f}%)"
    return f"{symbol} {quote.price:,.2f} {quote.currency}{moved}"
