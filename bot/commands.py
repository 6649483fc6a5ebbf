"""The command list and the user commands, platform-neutral.

Every platform shows the same commands (`COMMANDS`: Telegram's menu, Discord's slash commands
with typed options). Adapters hand the core one text line ("/watchlist add AAPL"); Discord's
typed options are rendered back into that line in the order declared here.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from agents.charts import DEFAULT_RANGE, Charts
from agents.charts import RANGES as CHART_RANGES
from agents.profile import (
    DISLIKES_KEY,
    FORGET_KEY,
    JOKE_TOPICS_KEY,
    NAME_KEY,
    NERD_TOPICS_KEY,
    TICKER_HINT,
    WATCHLIST_KEY,
    Outcome,
    add_to_watchlist,
    as_list,
    describe,
    remove_from_watchlist,
    ticker_suggestions,
    watchlist_of,
)
from agents.quotes import InvalidTicker, QuoteError
from bot.chat_sessions import SYSTEM_AUTHOR, ChatSession, ChatSessions
from bot.link_commands import LINK_USAGE, UNLINK_USAGE, LinkCommands
from bot.memory_commands import MEMORY_USAGE, MemoryCommands
from bot.messages import Action, CommandOption, CommandSpec, Incoming, Reply, ReplyFile
from bot.schedule_commands import SCHEDULE_COMMANDS, ScheduleCommands
from bot.scheduler import QuoteSource
from storage import Event, EventActions, Session, Store
from storage.types import MemoryChange, ScheduleChange

FORGET_CONFIRM_SECONDS = 300
PLATFORM_CHOICES = ("telegram", "discord")
WATCHLIST_EDITS = {"add": add_to_watchlist, "remove": remove_from_watchlist}

USER_COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("start", "Say hello and see what I can do"),
    CommandSpec("help", "List the commands"),
    CommandSpec("prefs", "What I remember about you"),
    CommandSpec(
        "watchlist",
        "Show or edit your stock watchlist",
        options=(
            CommandOption("action", "show, add or remove", choices=("show", "add", "remove")),
            CommandOption("ticker", "Ticker symbol, e.g. AAPL", autocomplete=True),
        ),
    ),
    CommandSpec(
        "chart",
        "A price chart of a stock, as a picture",
        options=(
            CommandOption(
                "ticker",
                "Ticker symbol, e.g. AAPL, or 'watchlist' to compare yours",
                required=True,
                autocomplete=True,
            ),
            CommandOption(
                "range", f"Time range (default {DEFAULT_RANGE})", choices=tuple(CHART_RANGES)
            ),
        ),
    ),
    CommandSpec(
        "memory",
        "What I remember about you: list, forget one, or clear",
        options=(
            CommandOption("action", "list, forget or clear", choices=("list", "forget", "clear")),
            CommandOption("which", "forget: the number in the list; clear: 'confirm' or 'cancel'"),
        ),
    ),
    *SCHEDULE_COMMANDS,
    CommandSpec("reset", "Start a fresh conversation (preferences are kept)"),
    CommandSpec("export", "Download everything I store about you (JSON)"),
    CommandSpec(
        "forgetme",
        "Erase everything I store about you",
        options=(CommandOption("confirm", "Type 'confirm' to erase", choices=("confirm",)),),
    ),
    CommandSpec(
        "link",
        "Link your Telegram and Discord accounts (or list the linked ones)",
        options=(
            # `code` stays the first option: "/link CODE" as before; "list" lists accounts.
            CommandOption("code", "A code from /link on your other account, or 'list'"),
            CommandOption("confirm", "Type 'confirm' to link", choices=("confirm",)),
        ),
    ),
    CommandSpec(
        "unlink",
        "Detach a linked account (it keeps a copy of your preferences)",
        options=(
            CommandOption(
                "platform", "The account to detach", required=True, choices=PLATFORM_CHOICES
            ),
        ),
    ),
)

USAGE = {
    "watchlist": "Usage: /watchlist, /watchlist add TICKER or /watchlist remove TICKER",
    "forgetme": "Usage: /forgetme, then /forgetme confirm (or /forgetme cancel)",
    "chart": (
        f"Usage: /chart TICKER [{'|'.join(CHART_RANGES)}] (default {DEFAULT_RANGE}), or "
        "/chart watchlist [range] to compare your watchlist"
    ),
    "link": LINK_USAGE,
    "unlink": UNLINK_USAGE,
    "memory": MEMORY_USAGE,
}


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    name: str
    args: tuple[str, ...]


def parse_command(text: str) -> ParsedCommand | None:
    """'/Watchlist@MyBot add aapl' -> ParsedCommand('watchlist', ('add', 'aapl'))."""
    parts = text.strip().split()
    if not parts or not parts[0].startswith("/") or len(parts[0]) < 2:
        return None
    name = parts[0][1:].split("@", 1)[0].lower()
    return ParsedCommand(name, tuple(parts[1:]))


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Everything a command needs about the message it answers, and the chat's session as the
    core read it under the session lock."""

    incoming: Incoming
    user_id: str
    chat: ChatSession
    invocation_id: str
    is_admin: bool

    @property
    def session_id(self) -> str:
        return self.chat.session_id

    def event_id(self, suffix: str) -> str:
        # Derived from the message: a redelivered command appends nothing twice.
        return f"{self.invocation_id}:{suffix}"


def help_text(commands: tuple[CommandSpec, ...], is_admin: bool) -> str:
    lines = ["Just talk to me: ask for a joke, a nerdy fact, or a stock price.", "", "Commands:"]
    lines += [f"/{c.name} — {c.description}" for c in commands if not c.admin]
    if is_admin:
        lines += ["", "Admin:"] + [f"/{c.name} — {c.description}" for c in commands if c.admin]
    return "\n".join(lines)


# Buttons under /help: the commands people reach for first.
HELP_ACTIONS = (
    Action("What you remember", "/prefs"),
    Action("My watchlist", "/watchlist"),
    Action("Linked accounts", "/link list"),
)
FORGET_ACTIONS = (
    Action("Erase everything", "/forgetme confirm"),
    Action("Cancel", "/forgetme cancel"),
)


def favourite_agent(delegations: dict[str, int]) -> tuple[str, int] | None:
    ranked = sorted(((n, a) for a, n in delegations.items() if n > 0), key=lambda x: (-x[0], x[1]))
    return (ranked[0][1], ranked[0][0]) if ranked else None


class UserCommands:
    """/start /help /prefs /watchlist /chart /reset /export /forgetme /link /unlink."""

    def __init__(
        self,
        store: Store,
        app_name: str,
        sessions: ChatSessions,
        all_commands: tuple[CommandSpec, ...],
        charts: Charts | None = None,
        clock: Callable[[], float] = time.time,
        quotes: QuoteSource | None = None,
    ) -> None:
        """`clock`: wall time, what reminders and digests are timed from (tests step it).
        `quotes`: what /alert checks a symbol with."""
        self._store = store
        self._charts = charts
        self._app = app_name
        self._sessions = sessions
        self._all = all_commands
        self._links = LinkCommands(store, app_name)
        self._memory = MemoryCommands(store, app_name)
        self._schedules = ScheduleCommands(
            store, app_name, self._record_schedule, self._state, clock, quotes
        )

    def handles(self, name: str) -> bool:
        return any(c.name == name for c in USER_COMMANDS)

    async def run(self, ctx: CommandContext, cmd: ParsedCommand) -> list[Reply]:
        if self._schedules.handles(cmd.name):
            return await self._schedules.run(ctx, cmd.name, cmd.args)
        handler = getattr(self, f"_cmd_{cmd.name}")
        return await handler(ctx, cmd.args)

    async def watchlist_suggestions(self, user_id: str, typed: str) -> list[str]:
        """The user's watchlist and recent symbols starting with `typed` (user state rides on
        every one of the user's sessions: the latest is read)."""
        for row in await self._store.list_sessions(self._app, user_id, limit=1):
            session = await self._store.get_session(
                self._app, user_id, row.session_id, recent_events=0
            )
            if session is not None:
                return ticker_suggestions(dict(session.state), typed)
        return []

    async def _session(self, ctx: CommandContext) -> Session:
        """The chat's session, created when the chat has none yet."""
        return ctx.chat.session or await self._sessions.create(ctx.user_id, ctx.session_id)

    async def _state(self, ctx: CommandContext) -> dict[str, Any]:
        return dict((await self._session(ctx)).state)

    async def _record(
        self,
        ctx: CommandContext,
        suffix: str,
        text: str,
        delta: dict,
        memory_changes: tuple[MemoryChange, ...] = (),
        schedule_changes: tuple[ScheduleChange, ...] = (),
    ) -> bool:
        """A command's reply as an event; its state, memory and schedule changes ride on it (the
        only way to write)."""
        session = await self._session(ctx)
        event = Event(
            id=ctx.event_id(suffix),
            invocation_id=ctx.invocation_id,
            author=SYSTEM_AUTHOR,
            content={"text": text, "command": ctx.incoming.text.strip()[:200]},
            actions=EventActions(
                state_delta=delta,
                memory_changes=memory_changes,
                schedule_changes=schedule_changes,
            ),
        )
        return await self._store.append_event(session, event)

    async def _record_schedule(
        self,
        ctx: CommandContext,
        suffix: str,
        text: str,
        delta: dict[str, Any],
        changes: tuple[ScheduleChange, ...],
    ) -> bool:
        return await self._record(ctx, suffix, text, delta, schedule_changes=changes)

    async def _cmd_start(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        name = (await self._state(ctx)).get(NAME_KEY)
        display = ctx.incoming.display_name
        hello = f"Welcome back, {name}!" if name else f"Hi {display}!" if display else "Hi there!"
        return [
            Reply(
                f"{hello} I'm a small team of agents: a manager, a funny nerd (jokes and nerdy "
                'facts) and a stock analyst (quotes and your watchlist). Try "Tell me a joke '
                'about Python" or "What\'s AAPL at?". /help lists the commands.'
            )
        ]

    async def _cmd_help(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        return [Reply(help_text(self._all, ctx.is_admin), actions=HELP_ACTIONS)]

    async def _cmd_prefs(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        state = await self._state(ctx)
        stats = await self._store.stats(self._app, ctx.user_id)
        fav = favourite_agent(dict(stats.delegations))
        none = "—"
        lines = [
            "What I remember about you:",
            f"Name: {state.get(NAME_KEY) or none}",
            f"Joke topics: {', '.join(as_list(state.get(JOKE_TOPICS_KEY))) or none}",
            f"Nerd topics: {', '.join(as_list(state.get(NERD_TOPICS_KEY))) or none}",
            f"Dislikes: {', '.join(as_list(state.get(DISLIKES_KEY))) or none}",
            f"Watchlist: {', '.join(watchlist_of(state)) or none}",
            f"Favourite agent: {f'{fav[0]} ({fav[1]}×)' if fav else none}",
            f"Turns: {stats.turns}",
            "Facts you told me: /memory",
        ]
        return [Reply("\n".join(lines), private=True)]

    async def _cmd_memory(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        async def record(
            suffix: str,
            text: str,
            delta: dict[str, Any],
            memory_changes: tuple[MemoryChange, ...] = (),
        ) -> bool:
            return await self._record(ctx, suffix, text, delta, memory_changes)

        return await self._memory.run(ctx.user_id, await self._state(ctx), record, args)

    async def _cmd_watchlist(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        current = watchlist_of(await self._state(ctx))
        action = args[0].lower() if args else "show"
        if action == "show":
            text = ", ".join(current) if current else "empty — add one with /watchlist add AAPL"
            removes = tuple(Action(f"Remove {s}", f"/watchlist remove {s}") for s in current)
            return [Reply(f"Your watchlist: {text}", actions=removes)]
        if action not in WATCHLIST_EDITS or len(args) != 2:
            return [Reply(USAGE["watchlist"])]
        edit = WATCHLIST_EDITS[action](current, args[1:])  # the agents' tools' rules too
        if edit.outcomes[0][1] is Outcome.INVALID:
            return [Reply(f"{USAGE['watchlist']}\n{TICKER_HINT}")]
        text = describe(edit.by_outcome())
        if not edit.changed:
            return [Reply(text)]
        await self._record(ctx, "watchlist", text, {WATCHLIST_KEY: list(edit.watchlist)})
        return [Reply(f"{text} Now: {', '.join(edit.watchlist) or 'empty'}.")]

    async def _cmd_reset(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        inc = ctx.incoming
        session = await self._session(ctx)
        await self._sessions.reset(session, inc.platform, inc.chat_id, ctx.event_id("reset"))
        return [Reply("Fresh start: this chat has a new conversation. Your preferences are kept.")]

    async def _cmd_chart(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        if not 1 <= len(args) <= 2 or (len(args) == 2 and args[1].lower() not in CHART_RANGES):
            return [Reply(USAGE["chart"])]
        if self._charts is None:
            return [Reply("Charts are not available here.")]
        range_ = args[1].lower() if len(args) == 2 else DEFAULT_RANGE
        if args[0].lower() == "watchlist":
            return await self._watchlist_chart(ctx, self._charts, range_)
        try:
            chart = await self._charts.chart(args[0], range_)
        except InvalidTicker:
            return [Reply(f"{USAGE['chart']}\n{TICKER_HINT}")]
        except QuoteError as exc:
            return [Reply(f"No chart: {exc}.")]
        png = ReplyFile(chart.filename, chart.png, mime_type="image/png")
        return [Reply(chart.series.summary(), file=png)]

    async def _watchlist_chart(
        self, ctx: CommandContext, charts: Charts, range_: str
    ) -> list[Reply]:
        symbols = watchlist_of(await self._state(ctx))
        if not symbols:
            return [Reply("Your watchlist is empty — add one with /watchlist add AAPL")]
        try:
            comparison = await charts.compare(symbols, range_)
        except QuoteError as exc:
            return [Reply(f"No chart: {exc}.")]
        png = ReplyFile(comparison.filename, comparison.png, mime_type="image/png")
        return [Reply(comparison.summary(), file=png)]

    async def _cmd_export(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        data = await self._store.export_user(self._app, ctx.user_id)
        blob = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode()
        name = f"switchboard-export-{ctx.user_id}.json"
        return [
            Reply(
                "Here is everything I store about you.",
                file=ReplyFile(name, blob),
                private=True,
            )
        ]

    async def _cmd_forgetme(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        if not args:
            text = (
                "This erases everything I store about you: preferences, watchlist, history, "
                f"linked accounts. To go ahead, send /forgetme confirm within "
                f"{FORGET_CONFIRM_SECONDS // 60} minutes."
            )
            note = "The user asked to erase their data; waiting for /forgetme confirm."
            await self._record(ctx, "forgetme", note, {FORGET_KEY: time.time()})
            return [Reply(text, private=True, actions=FORGET_ACTIONS)]
        if [a.lower() for a in args] == ["cancel"]:
            return await self._forget_cancel(ctx)
        if [a.lower() for a in args] != ["confirm"]:
            return [Reply(USAGE["forgetme"], private=True)]
        asked = (await self._state(ctx)).get(FORGET_KEY)
        if not isinstance(asked, int | float) or time.time() - asked > FORGET_CONFIRM_SECONDS:
            return [
                Reply("Nothing to confirm (or it expired). Send /forgetme first.", private=True)
            ]
        await self._store.delete_user(self._app, ctx.user_id)
        return [Reply("Done. I erased everything I stored about you. Goodbye!", private=True)]

    async def _forget_cancel(self, ctx: CommandContext) -> list[Reply]:
        """Withdraws a pending /forgetme: a later /forgetme confirm (or an old button) erases
        nothing."""
        if (await self._state(ctx)).get(FORGET_KEY) is not None:
            note = "The user cancelled the erasure."
            await self._record(ctx, "forgetme-cancel", note, {FORGET_KEY: None})
        return [Reply("Cancelled: nothing was erased.", private=True)]

    async def _cmd_link(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        return await self._links.link(ctx.user_id, ctx.incoming, args)

    async def _cmd_unlink(self, ctx: CommandContext, args: tuple[str, ...]) -> list[Reply]:
        return await self._links.unlink(ctx.user_id, ctx.incoming, args, await self._state(ctx))

    def notices(self, user_id: str, incoming: Incoming) -> AsyncGenerator[Reply, None]:
        """Notices waiting for this identity (bot.link_commands), for the core to show first."""
        return self._links.notices(user_id, incoming)
