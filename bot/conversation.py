"""The conversation core: the one entry point every adapter calls (bot.messages.ConversationCore).

For each Incoming: identity -> user_id and a record in the inbox (dedupe) - once, on receipt
(`accept`, whose receipt `handle` then uses) or at the start of `handle` - then the chat's session
lock, the session read once under it, the command or the agent turn, Replies yielded, and the
inbox row marked done once the adapter comes back after the last reply (i.e. after it sent it).
No platform library here.

Ordering: turns of one user in one chat are answered in arrival order. An in-process FIFO lock per
(platform, chat, user) is taken *before* the first await, so messages queue in the order their
`handle` generators were started; the store's session lock (a database lock on PostgreSQL) then
serialises writers across worker processes. Across workers, arrival order is the inbox's: a
user's next message may reach another worker and take the session lock before the worker that
acknowledged the previous one does, so a turn also waits (bounded) while an older message of the
same user is still unanswered.

Fairness (bot.fairness): before anything is awaited, a message of a user past their rate or
queue limit is refused - recorded and closed, the user told once per burst - so a flood from
one user queues at most a few turns and cannot starve anyone. Replays are never refused.
Typing: a turn that holds its lock and has no answer after `typing_after` yields
`Reply.working()`, which the adapter shows as its typing indicator.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Protocol

from agents.chart_tools import CHART_ATTACHMENT
from agents.charts import Charts
from agents.observer import Observer, Unobserved
from agents.quotes import QuoteError
from agents.tracing import Tracer, Untraced
from agents.user_schedules import ChatOrigin
from bot.admin_commands import ADMIN_COMMANDS, AdminCommands
from bot.after_turn import AfterTurn, AfterTurnRunner
from bot.chat_sessions import ChatSession, ChatSessions
from bot.commands import USER_COMMANDS, CommandContext, UserCommands, parse_command
from bot.fairness import FREE, FairnessGate, Ticket, Verdict
from bot.messages import ChatKind, CommandSpec, Incoming, Reply, ReplyFile, chat_origin
from bot.scheduler import QuoteSource
from bot.settings import RateLimit
from storage import Event, InboxStatus, Session, Store, StoreBusy
from storage.common import storable_text
from storage.locks import KeyedLocks

log = logging.getLogger(__name__)

NON_TEXT = "I can only read text for now."
GROUP_ADMIN = "Ask me in a private chat."
BUSY = "I'm a little overloaded right now. Please send that again in a moment."
FAILED = "Sorry, something went wrong on my side. Please try again."
NO_ANSWER = "Sorry, I couldn't come up with an answer. Please try again."
MAX_TEXT = 8000  # characters; longer messages are refused rather than sent to the model
TOO_LONG = f"That message is too long for me. Please keep it under {MAX_TEXT:,} characters."
SLOW_DOWN = (
    "You're sending messages faster than I can answer, so I skipped some. "
    "Please wait for my answers, then send the rest again."
)
# How long a turn lets an older unanswered message of its user go first (time spent outside the
# session lock). Normally milliseconds: the other worker acknowledged it and is about to take the
# lock. Past this, that worker is presumed dead (its message is replayed at its restart).
ORDER_WAIT = 3.0
_ORDER_STEP = 0.01
# Only an older message recorded less than this long ago can be in a live worker's hands (a
# turn's own deadline is 60 s); one stuck longer (e.g. a reply the platform never took) must
# not make each later message of its user wait ORDER_WAIT.
ORDER_AGE = 60.0
# A turn that holds its lock and has no answer after this long shows "typing…"; a quicker
# answer goes out without it (one platform call instead of two or three).
TYPING_AFTER = 0.5
# A busy database (each attempt already waited the store's busy timeout) is tried again this
# many times before the user is asked to resend.
BUSY_RETRIES = 2
BUSY_BACKOFF = 0.5
# Receipts (see _Receipt) kept for messages whose `handle` has not started yet.
MAX_RECEIPTS = 4096


def storable(incoming: Incoming) -> Incoming:
    """The message with lone surrogates replaced by U+FFFD, so it can be recorded and answered
    (everything else, NUL and control characters included, is kept exactly)."""
    text = storable_text(incoming.text)
    name = incoming.display_name
    name = storable_text(name) if name else name
    if text == incoming.text and name == incoming.display_name:
        return incoming
    return replace(incoming, text=text, display_name=name)


class TurnRunner(AfterTurnRunner, Protocol):
    """What the core needs of agents.runner.Runner."""

    @property
    def history_window(self) -> int: ...

    def run_async(
        self,
        user_id: str,
        session_id: str,
        new_message: str,
        *,
        invocation_id: str | None = None,
        session: Session | None = None,
        origin: ChatOrigin | None = None,
    ) -> AsyncGenerator[Event, None]: ...


@dataclass(frozen=True, slots=True)
class _Recorded:
    """What recording a message found: its user and its inbox status."""

    user_id: str | None  # None: not looked up (group chatter, or a replay)
    status: InboxStatus


@dataclass(frozen=True, slots=True)
class _Receipt:
    """A message `accept` is recording or recorded, kept for its `handle` so the message is
    sanitised, looked up and written once. An adapter may start `handle` while `accept` is
    still at work (Discord records beside the turn): `handle` then waits for its result."""

    received: Incoming  # as the adapter gave it
    stored: Incoming  # storable(received)
    recorded: asyncio.Future[_Recorded | None]  # None: accept failed, handle records it

    @classmethod
    def known(cls, incoming: Incoming, recorded: _Recorded) -> _Receipt:
        future: asyncio.Future[_Recorded | None] = asyncio.get_running_loop().create_future()
        future.set_result(recorded)
        return cls(incoming, incoming, future)

    async def result(self) -> _Recorded | None:
        # Shielded: a turn cancelled while it waits must not cancel accept's result.
        return await asyncio.shield(self.recorded)


class Conversation:
    """Implements bot.messages.ConversationCore. Dependencies come in through the constructor."""

    def __init__(
        self,
        store: Store,
        runner: TurnRunner,
        *,
        app_name: str,
        admin_ids: frozenset[str] = frozenset(),
        rate_limit: RateLimit | None = None,
        queue_limit: int | None = None,
        typing_after: float | None = TYPING_AFTER,
        order_wait: float = ORDER_WAIT,
        clock: Callable[[], float] = time.time,
        observer: Observer | None = None,
        tracer: Tracer | None = None,
        charts: Charts | None = None,
        quotes: QuoteSource | None = None,
    ) -> None:
        """`clock` (wall time, as the inbox records it) paces the per-user limits and dates
        the order wait's bound; tests step it. `typing_after=None`: never signal typing.
        `observer`: where turns, replies, lock waits and refusals are counted (bot.metrics).
        `tracer`: where each turn is a span, the runner's spans its children (bot.tracing).
        `charts`: what /chart draws with (none: /chart says charts are unavailable).
        `quotes`: what /alert checks a symbol with (none: not checked)."""
        self._observer = observer or Unobserved()
        self._tracer = tracer or Untraced()
        self._store = store
        self._runner = runner
        self._app = app_name
        self._admin_ids = admin_ids
        self._gate = FairnessGate(rate_limit, queue_limit, clock=clock)
        self._typing_after = typing_after
        self._order_wait = order_wait
        self._clock = clock
        # (platform, message_id) of messages pending() handed out for a replay (never
        # refused), and of accepted messages being handled (a redelivery is not refused).
        self._replays: set[tuple[str, str]] = set()
        self._in_flight: set[tuple[str, str]] = set()
        self._receipts: dict[tuple[str, str], _Receipt] = {}
        self._sessions = ChatSessions(store, app_name)
        self.commands: tuple[CommandSpec, ...] = USER_COMMANDS + ADMIN_COMMANDS
        self._charts = charts
        self._user_commands = UserCommands(
            store, app_name, self._sessions, self.commands, charts, clock, quotes
        )
        self._admin_commands = AdminCommands(store, app_name)
        self._order = KeyedLocks()
        self._after_turn = AfterTurn(store, runner, app_name)

    async def aclose(self) -> None:
        """At stop, after the adapters: the post-turn jobs in flight finish (or are cancelled)."""
        await self._after_turn.close()

    async def after_turn_idle(self) -> None:
        """Until the post-turn jobs of the turns answered so far are done (tests, benchmarks)."""
        await self._after_turn.wait()

    def is_admin(self, platform: str, platform_user_id: str) -> bool:
        return f"{platform}:{platform_user_id}" in self._admin_ids

    async def accept(self, incoming: Incoming) -> None:
        stored = storable(incoming)
        receipt = _Receipt(incoming, stored, asyncio.get_running_loop().create_future())
        self._keep(receipt)  # before the first await: a handle started meanwhile finds it
        recorded: _Recorded | None = None
        try:
            user_id = await self._user_of(stored) if stored.addressed else None
            status = await self._record(stored, user_id)
            recorded = _Recorded(user_id, status)
        finally:
            if not receipt.recorded.done():
                receipt.recorded.set_result(recorded)

    async def pending(self, platform: str) -> list[Incoming]:
        items = await self._store.inbox_pending(platform)
        result = []
        for item in items:
            try:
                result.append(Incoming.from_payload(dict(item.payload)))
            except (KeyError, ValueError, TypeError):
                log.warning("inbox row %s:%s is unreadable; skipped", platform, item.message_id)
        self._replays.update((m.platform, m.message_id) for m in result)
        return result

    async def handle(self, incoming: Incoming) -> AsyncGenerator[Reply, None]:
        # Everything up to the order lock below is decided before the first await: in arrival
        # order.
        where = (incoming.platform, incoming.message_id)
        receipt = self._receipts.pop(where, None)
        if receipt is not None and receipt.received != incoming:
            receipt = None  # not what was recorded under this id: record it again
        incoming = receipt.stored if receipt is not None else storable(incoming)
        replay = where in self._replays
        self._replays.discard(where)
        verdict, ticket = self._admit(incoming, replay)
        if verdict is not Verdict.ACCEPT:
            tell = verdict is Verdict.REFUSE_AND_TELL
            async for reply in self._refuse(incoming, receipt, tell=tell):
                yield reply
            return
        if receipt is None and replay:
            # Its row is there (pending() read it): read under the lock, never written again.
            receipt = _Receipt.known(incoming, _Recorded(None, InboxStatus.PENDING))
        self._in_flight.add(where)
        try:
            async for reply in self._handle_in_order(incoming, receipt, ticket):
                yield reply
        finally:
            ticket.release()
            self._in_flight.discard(where)

    def _keep(self, receipt: _Receipt) -> None:
        """Kept until its `handle` starts (at once, normally). Bounded: an adapter stopping
        between the two leaves some behind, and a forgotten one only costs its `handle` the
        lookup and the write."""
        where = (receipt.stored.platform, receipt.stored.message_id)
        self._receipts.pop(where, None)
        self._receipts[where] = receipt
        if len(self._receipts) > MAX_RECEIPTS:
            del self._receipts[next(iter(self._receipts))]

    def _admit(self, incoming: Incoming, replay: bool) -> tuple[Verdict, Ticket]:
        """Admins, replays and group chatter (never answered) are not limited."""
        if replay or not incoming.addressed:
            return Verdict.ACCEPT, FREE
        if self.is_admin(incoming.platform, incoming.platform_user_id):
            return Verdict.ACCEPT, FREE
        return self._gate.admit((incoming.platform, incoming.platform_user_id))

    async def _refuse(
        self, incoming: Incoming, receipt: _Receipt | None, *, tell: bool
    ) -> AsyncGenerator[Reply, None]:
        """Recorded and closed, never answered nor replayed; the user is told once a burst."""
        where = f"{incoming.platform}:{incoming.message_id}"
        if (incoming.platform, incoming.message_id) in self._in_flight:
            log.info("redelivered %s ignored (being answered)", where)
            return
        recorded = await receipt.result() if receipt is not None else None
        status = recorded.status if recorded else await self._record_refused(incoming)
        if status is InboxStatus.DONE:
            return  # a redelivery of something already answered (or refused)
        # Counted before the notice goes out, so whoever saw the notice sees the count.
        self._observer.rate_limited(incoming.platform)
        # A slash command is always answered (ephemerally: nobody else sees it), or the
        # platform shows it as failed.
        if tell or incoming.extra.get("interaction"):
            yield Reply(SLOW_DOWN)
        await self._done_quietly(incoming)
        # Logged once closed: a message logged as refused is one no replay will answer.
        log.info("%s refused: its user is past the per-user rate or queue limit", where)

    async def _record_refused(self, incoming: Incoming) -> InboxStatus:
        try:
            return await self._store.inbox_put(
                incoming.platform, incoming.message_id, incoming.to_payload()
            )
        except Exception:
            log.warning("could not record refused message %s", incoming.message_id)
            return InboxStatus.NEW

    async def _handle_in_order(
        self, incoming: Incoming, receipt: _Receipt | None, ticket: Ticket
    ) -> AsyncGenerator[Reply, None]:
        key = (incoming.platform, incoming.chat_id, incoming.platform_user_id)
        answered = False
        for attempt in range(BUSY_RETRIES + 1):
            try:
                async with self._order.hold(key):
                    async for reply in self._handle(incoming, receipt, ticket):
                        answered = answered or not (reply.partial or reply.typing)
                        yield reply
                return
            except StoreBusy:
                where = f"{incoming.platform}:{incoming.message_id}"
                if not answered and attempt < BUSY_RETRIES:
                    # The turn is resumable by its invocation id, so running it again after
                    # the database was busy neither loses the message nor doubles it.
                    log.warning("store busy while handling %s; trying again", where)
                    await asyncio.sleep(BUSY_BACKOFF * (attempt + 1))
                    continue
                log.warning("store busy while handling %s; giving up", where)
                if not answered:
                    yield Reply(BUSY)
            except Exception:
                log.exception("failed handling %s:%s", incoming.platform, incoming.message_id)
                if not answered:  # after the answer went out, an apology would only confuse
                    yield Reply(FAILED)
            await self._done_quietly(incoming)
            return

    async def _handle(
        self, incoming: Incoming, receipt: _Receipt | None, ticket: Ticket
    ) -> AsyncGenerator[Reply, None]:
        if not incoming.addressed:
            # Group chatter not meant for us: recorded (an adapter may have accepted it) and
            # closed, so it is never replayed, but not answered.
            recorded = await receipt.result() if receipt is not None else None
            status = recorded.status if recorded else await self._record(incoming, None)
            if status is not InboxStatus.DONE:
                await self._store.inbox_done(incoming.platform, incoming.message_id)
            return
        user_id, status = await self._received(incoming, receipt)
        if status is InboxStatus.DONE:
            log.info("redelivered %s:%s ignored", incoming.platform, incoming.message_id)
            return
        async with self._in_turn(incoming, user_id) as chat:
            ticket.release()  # holding its turn: no longer one of its user's waiting messages
            # Another worker (which got the lock first, whatever the receipt told each of us)
            # may have answered it while we waited: read again under the lock.
            if (
                await self._store.inbox_status(incoming.platform, incoming.message_id)
                is InboxStatus.DONE
            ):
                return
            turns: list[str] = []  # the invocation id, once an agent turn answered
            async for reply in self._with_typing(self._answer(incoming, user_id, chat, turns)):
                yield reply
                if not (reply.partial or reply.typing):  # the adapter came back: it went out
                    self._observer.reply_sent(incoming.platform)
            # Reached only when the adapter asks for more after the last reply: it was sent.
            await self._store.inbox_done(incoming.platform, incoming.message_id)
            for invocation_id in turns:  # compaction, memory extraction: off the turn's path
                self._after_turn.start(user_id, chat.session_id, invocation_id)

    async def _received(
        self, incoming: Incoming, receipt: _Receipt | None
    ) -> tuple[str, InboxStatus]:
        """The user and the inbox status of an addressed message: one identity lookup, and the
        inbox row written unless accept() or pending() already found it."""
        recorded = await receipt.result() if receipt is not None else None
        if recorded is not None and recorded.user_id is not None:
            return recorded.user_id, recorded.status
        user_id = await self._user_of(incoming)
        if recorded is not None:
            return user_id, recorded.status
        return user_id, await self._record(incoming, user_id)

    @asynccontextmanager
    async def _in_turn(self, incoming: Incoming, user_id: str) -> AsyncIterator[ChatSession]:
        """The session lock, taken when no older message of this user recorded in the last
        ORDER_AGE is still unanswered (those go first: they were acknowledged first), or once
        `order_wait` has passed; yields the chat's session, read once under it."""
        platform, chat_id = incoming.platform, incoming.chat_id
        session_id, named = self._sessions.likely(user_id, platform, chat_id), False
        waited, step = 0.0, _ORDER_STEP
        while True:
            asked = time.monotonic()
            async with self._store.session_lock(self._app, user_id, session_id):
                self._observer.lock_wait(time.monotonic() - asked)
                if await self._goes_now(incoming, user_id, waited):
                    window = self._runner.history_window
                    chat = await self._sessions.open(
                        user_id, platform, chat_id, session_id, window, named=named
                    )
                    if chat.session_id == session_id:
                        yield chat
                        return
                    # The chat moved on (a /reset, maybe by another worker): lock that one.
                    session_id, named = chat.session_id, True
                    continue
            # Outside the lock, so the older message's worker can take it.
            await asyncio.sleep(step)
            waited += step
            step = min(step * 2, 0.2)

    async def _goes_now(self, incoming: Incoming, user_id: str, waited: float) -> bool:
        """No older message of the user is still unanswered, or it was waited for long enough."""
        earlier = await self._store.inbox_earlier_pending(
            incoming.platform, incoming.message_id, user_id, since=self._clock() - ORDER_AGE
        )
        if earlier and waited >= self._order_wait:
            log.warning(
                "%s:%s answered although an older message of its user is still unanswered"
                " after %.0fs",
                incoming.platform,
                incoming.message_id,
                waited,
            )
        return not earlier or waited >= self._order_wait

    async def _with_typing(
        self, replies: AsyncGenerator[Reply, None]
    ) -> AsyncGenerator[Reply, None]:
        """`replies`, preceded by one `Reply.working()` when no non-partial reply came within
        `typing_after`. The replies are produced in a task of their own (see _Pump) so the wait
        for the next one can time out without disturbing it."""
        if self._typing_after is None:
            async for reply in replies:
                yield reply
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._typing_after
        signalled = False
        pump = _Pump(replies)
        try:
            while True:
                timeout = None if signalled else max(deadline - loop.time(), 0.0)
                got = await pump.next(timeout)
                if got is _TIMED_OUT:
                    signalled = True
                    yield Reply.working()
                    continue
                if got is _END:
                    return
                assert isinstance(got, Reply)
                signalled = signalled or not got.partial
                yield got
        finally:
            await pump.aclose()

    async def _answer(
        self, incoming: Incoming, user_id: str, chat: ChatSession, turns: list[str]
    ) -> AsyncGenerator[Reply, None]:
        # Left for this identity by something done elsewhere (e.g. an account linked to it).
        async for notice in self._user_commands.notices(user_id, incoming):
            yield notice
        if incoming.kind != "text":
            yield Reply(NON_TEXT)
            return
        invocation_id = f"{incoming.platform}:{incoming.message_id}"
        if incoming.is_command:
            for reply in await self._command(incoming, user_id, chat, invocation_id):
                yield reply
            return
        if not incoming.text.strip():
            yield Reply("Say something and I'll answer. /help lists what I can do.")
            return
        if len(incoming.text) > MAX_TEXT:
            log.info("message %s refused: %d characters", invocation_id, len(incoming.text))
            yield Reply(TOO_LONG)
            return
        async for reply in self._turn(incoming, user_id, chat, invocation_id):
            yield reply
        turns.append(invocation_id)

    async def _command(
        self, incoming: Incoming, user_id: str, chat: ChatSession, invocation_id: str
    ) -> list[Reply]:
        cmd = parse_command(incoming.text)
        if cmd is None:
            return [Reply("Send /help to see the commands.")]
        admin = self.is_admin(incoming.platform, incoming.platform_user_id)
        actor = f"{incoming.platform}:{incoming.platform_user_id}"
        if self._admin_commands.handles(cmd.name):
            if not admin:
                log.info("admin command /%s refused for %s", cmd.name, incoming.platform)
                # Ephemeral where the platform can; a Telegram group just sees the refusal
                # (a private message for it would be odd).
                private = incoming.chat_kind is ChatKind.PRIVATE or bool(
                    incoming.extra.get("ephemeral")
                )
                return await self._admin_commands.refuse(actor, cmd, private=private)
            if incoming.chat_kind is ChatKind.GROUP and not incoming.extra.get("ephemeral"):
                return [Reply(GROUP_ADMIN)]
            return await self._admin_commands.run(actor, cmd, user_id)
        if self._user_commands.handles(cmd.name):
            ctx = CommandContext(incoming, user_id, chat, invocation_id, admin)
            return await self._user_commands.run(ctx, cmd)
        log.info("unknown command /%s", cmd.name[:32])
        return [Reply(f"I don't know /{cmd.name[:32]}. Send /help to see what I can do.")]

    async def _turn(
        self, incoming: Incoming, user_id: str, chat: ChatSession, invocation_id: str
    ) -> AsyncGenerator[Reply, None]:
        session = chat.session or await self._sessions.create(user_id, chat.session_id)
        streamed = ""
        final: Event | None = None
        began = time.monotonic()
        # Only bounded names: never the text, the user or the chat.
        attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "switchboard.platform": incoming.platform,
        }
        with self._tracer.span("turn", attributes):
            async for event in self._runner.run_async(
                user_id,
                chat.session_id,
                incoming.text,
                invocation_id=invocation_id,
                session=session,
                origin=chat_origin(incoming),
            ):
                if event.partial and event.text:
                    streamed += event.text
                    yield Reply(streamed, partial=True, markdown=True)
                elif event.final:
                    final = event
        self._observer.turn(incoming.platform, time.monotonic() - began)
        if final is None:
            log.error("turn %s ended without a final event", invocation_id)
            yield Reply(NO_ANSWER)
            return
        if final.error:
            log.warning("turn %s failed: %s", invocation_id, final.error)
        # The model writes Markdown; our own fallback wording is plain.
        answer = Reply(final.text, markdown=True) if final.text else Reply(NO_ANSWER)
        # An answer about the user's own data (their memories) goes only to them.
        answer = replace(answer, private=bool(final.content.get("private")))
        yield replace(answer, file=await self._attached(final))

    async def _attached(self, final: Event) -> ReplyFile | None:
        """The picture an answer carries (the analyst's chart), drawn again through the chart
        cache: also for a replayed turn. A chart that cannot be drawn now leaves the text."""
        for item in final.content.get("attachments") or ():
            if item.get("kind") != CHART_ATTACHMENT or self._charts is None:
                continue
            try:
                chart = await self._charts.chart(str(item["symbol"]), str(item["range"]))
            except (QuoteError, KeyError, ValueError) as exc:
                log.info("chart for %s not attached: %s", final.invocation_id, type(exc).__name__)
                return None
            return ReplyFile(chart.filename, chart.png, mime_type="image/png")
        return None

    async def suggest_tickers(self, platform: str, platform_user_id: str, typed: str) -> list[str]:
        user_id = await self._store.find_user(platform, platform_user_id)
        if user_id is None:
            return []
        return await self._user_commands.watchlist_suggestions(user_id, typed)

    async def _user_of(self, incoming: Incoming) -> str:
        return await self._store.resolve_user(
            incoming.platform, incoming.platform_user_id, incoming.display_name, incoming.username
        )

    async def _record(self, incoming: Incoming, user_id: str | None) -> InboxStatus:
        return await self._store.inbox_put(
            incoming.platform, incoming.message_id, incoming.to_payload(), user_id
        )

    async def _done_quietly(self, incoming: Incoming) -> None:
        """After an error reply: close the row so a failing message is not replayed forever."""
        try:
            await self._store.inbox_done(incoming.platform, incoming.message_id)
        except Exception:
            log.warning("could not mark %s:%s answered", incoming.platform, incoming.message_id)


_END = object()
_TIMED_OUT = object()


class _Pump:
    """Runs an async iterator in one task of its own, one item per request (never ahead of the
    consumer), so the consumer can wait for an item with a timeout. Everything the iterator
    does - context managers across its yields included - stays in that one task."""

    def __init__(self, source: AsyncGenerator[Reply, None]) -> None:
        self._source = source
        self._asks: asyncio.Queue[None] = asyncio.Queue()
        self._items: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
        self._asked = False
        self._task = asyncio.create_task(self._run())

    async def next(self, timeout: float | None) -> object:
        """The next item, `_END`, or `_TIMED_OUT` (then the same item is still coming)."""
        if not self._asked:
            self._asked = True
            self._asks.put_nowait(None)
        try:
            item, error = await asyncio.wait_for(self._items.get(), timeout)
        except TimeoutError:
            return _TIMED_OUT
        self._asked = False
        if error is not None:
            raise error
        return item

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            while True:
                await self._asks.get()
                try:
                    item = await anext(self._source)
                except StopAsyncIteration:
                    self._items.put_nowait((_END, None))
                    return
                except BaseException as exc:
                    # Handed to the consumer, which would otherwise wait for ever (a
                    # cancellation from aclose() finds nobody waiting: harmless).
                    self._items.put_nowait((None, exc))
                    if not isinstance(exc, Exception):
                        raise
                    return
                self._items.put_nowait((item, None))
        finally:
            await self._source.aclose()
