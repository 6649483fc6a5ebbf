"""Admin commands: /history /sessions /stats /user /forget (and `export` from the shell).

The same code serves the chat commands and `python -m bot admin ...`. Every call, allowed or
refused, goes to the store's audit log; the permission check itself is the caller's (the core
knows who is asking, the shell is trusted). A "user" argument is read by bot/user_refs.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents.charts import ACTIVITY_DAYS, render_activity_png
from agents.profile import SESSION_POINTER_PREFIX, as_list
from bot.commands import ParsedCommand
from bot.messages import Action, CommandOption, CommandSpec, Reply, ReplyFile
from bot.user_refs import USERNAME, user_ref_candidates
from storage import Event, EventNotFound, Memory, Store
from storage.types import SUMMARY_AUTHOR, USER_PREFIX

PAGE = 10
MAX_LIMIT = 200
LINE_CHARS = 300
MEMORIES_SHOWN = 50  # of a user's memories in /user; the export has them all

ADMIN_COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "history",
        "A user's recent messages, newest last",
        admin=True,
        options=(
            CommandOption("user", "the user (default: you)", type="user"),
            CommandOption("limit", "how many events (default 20)", type="int"),
            CommandOption("before", "page: show events older than this event id"),
        ),
    ),
    CommandSpec(
        "sessions",
        "Sessions by last activity",
        admin=True,
        options=(CommandOption("page", "page number, from 1", type="int"),),
    ),
    CommandSpec("stats", "Users, sessions, turns, delegations, tokens", admin=True),
    CommandSpec(
        "user",
        "A user's profile and preferences",
        admin=True,
        options=(CommandOption("user", "the user", type="user", required=True),),
    ),
    CommandSpec(
        "forget",
        "Erase a user's data",
        admin=True,
        options=(CommandOption("user", "the user", type="user", required=True),),
    ),
)

USAGE = {
    "history": "Usage: /history [user] [limit] [before-event-id]",
    "sessions": "Usage: /sessions [page]",
    "stats": "Usage: /stats",
    "user": "Usage: /user <user: @mention, platform:id or user id>",
    "forget": "Usage: /forget <user: @mention, platform:id or user id>",
}


REFUSAL = "Sorry, that command is only for the bot's admins."


class UsageError(ValueError):
    """Bad arguments: the message is the one-line usage."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An admin command's answer: its text, and the pager's buttons in a chat."""

    text: str
    actions: tuple[Action, ...] = ()
    file: ReplyFile | None = None


def when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else "never"


def describe_event(event: Event) -> str:
    """One line per event: time, who, what (tool calls and transfers made visible)."""
    content = event.content
    if event.actions.transfer_to_agent:
        what = f"→ hands over to {event.actions.transfer_to_agent}"
    elif "tool_calls" in content:
        names = ", ".join(str(c.get("name")) for c in content.get("tool_calls") or [])
        what = f"calls {names}"
    elif "tool_result" in content:
        result = content["tool_result"]
        what = f"tool {result.get('name')} → {result.get('result')}"
    elif event.actions.memory_changes and not event.text:  # memory extraction: no text
        what = "memories: " + ", ".join(c.op for c in event.actions.memory_changes)
    elif event.author == SUMMARY_AUTHOR:  # compaction: the events it covers stay listed too
        covers = event.content.get("covers") or {}
        what = f"summary of {covers.get('count', '?')} events: {event.content.get('summary')}"
    else:
        what = event.text
    line = f"{when(event.timestamp)} {event.author}: {' '.join(str(what).split())}"
    return line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 1] + "…"


class AdminCommands:
    def __init__(
        self,
        store: Store,
        app_name: str,
        *,
        invoke: str = "/",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`invoke` is how a command is typed where its answer is read (paging hints): "/" in
        a chat, "python -m bot admin " in a shell. `clock`: what "today" is for /stats."""
        self._clock = clock
        self._store = store
        self._app = app_name
        self._invoke = invoke

    def handles(self, name: str) -> bool:
        return name in USAGE

    async def run(self, actor: str, cmd: ParsedCommand, own_user_id: str | None) -> list[Reply]:
        """For the chat: the answer, or the usage line; admin output is always private."""
        try:
            answer = await self.answer(actor, cmd, own_user_id)
        except UsageError as exc:
            answer = Answer(str(exc))
        return [Reply(answer.text, private=True, actions=answer.actions, file=answer.file)]

    async def execute(self, actor: str, cmd: ParsedCommand, own_user_id: str | None) -> str:
        """Audit, then answer (its text: the shell has no buttons). Raises UsageError for bad
        arguments or an unknown user."""
        return (await self.answer(actor, cmd, own_user_id)).text

    async def answer(self, actor: str, cmd: ParsedCommand, own_user_id: str | None) -> Answer:
        await self._store.audit(actor, f"/{cmd.name}", await self._audit_detail(cmd))
        result = await getattr(self, f"_cmd_{cmd.name}")(cmd.args, own_user_id)
        return result if isinstance(result, Answer) else Answer(result)

    async def _audit_detail(self, cmd: ParsedCommand) -> str:
        """Which user was looked at, pseudonymous: a digest of our random user id (never a
        platform id or a name), so the audit log keeps nothing personal once a user is erased."""
        parts = [a for a in cmd.args if _is_limit(a)]
        ref = _target_ref(cmd)
        if ref is not None:
            try:
                parts.insert(0, f"user=#{digest(await self.resolve_user(ref))}")
            except UsageError:
                parts.insert(0, "user=unknown")
        return " ".join(parts)

    async def refuse(self, actor: str, cmd: ParsedCommand, *, private: bool) -> list[Reply]:
        """The same plain refusal whatever the arguments: nothing about any user leaks."""
        await self._store.audit(actor, f"denied /{cmd.name}", "")
        return [Reply(REFUSAL, private=private)]

    async def resolve_user(self, ref: str) -> str:
        """Our user id for `ref` (see bot/user_refs.py); UsageError when unknown."""
        for named in user_ref_candidates(ref):
            if named.platform is None:
                if (await self._store.stats(self._app, named.user_id)).users:
                    return named.user_id
            elif named.platform == USERNAME:
                return await self._by_username(ref, named.user_id)
            elif found := await self._store.find_user(named.platform, named.user_id):
                return found
        raise UsageError(f"No such user: {ref}")

    async def _by_username(self, ref: str, username: str) -> str:
        users = {i.user_id for i in await self._store.find_by_username(username)}
        if len(users) > 1:  # e.g. one name on Telegram and another person's on Discord
            raise UsageError(f"More than one user is {ref}: name them as platform:id")
        if not users:
            raise UsageError(f"No such user: {ref}")
        return users.pop()

    async def _cmd_history(self, args: tuple[str, ...], own: str | None) -> Answer:
        ref, asked, before = _history_args(args)
        limit = min(asked, MAX_LIMIT)
        if ref is None and own is None:
            raise UsageError(USAGE["history"])
        user_id = await self.resolve_user(ref) if ref else str(own)
        try:
            events = await self._store.history(self._app, user_id, before=before, limit=limit)
        except EventNotFound:
            raise UsageError(f"No event {before} in the history of {user_id}") from None
        if not events:
            return Answer(f"No history for {user_id}" + (" before that event." if before else "."))
        capped = f", the most shown at once is {MAX_LIMIT}" if limit == MAX_LIMIT < asked else ""
        lines = [f"History of {user_id} (newest last{capped}):", *map(describe_event, events)]
        if len(events) < limit:
            return Answer("\n".join(lines))
        older = f"history {user_id} {limit} {events[0].id}"
        lines.append(f"Older: {self._invoke}{older}")
        return Answer("\n".join(lines), (Action("Older", f"/{older}"),))

    async def _cmd_sessions(self, args: tuple[str, ...], own: str | None) -> Answer:
        page = _int_arg(args, "sessions", default=1, low=1, high=100_000)
        rows = await self._store.list_sessions(
            self._app, None, limit=PAGE, offset=(page - 1) * PAGE
        )
        if not rows:
            return Answer("No sessions." if page == 1 else f"No sessions on page {page}.")
        lines = [f"Sessions, page {page} (last activity first):"]
        lines += [
            f"{r.user_id} {r.session_id} — {when(r.updated_at)}, {r.turns} turns, {r.events} events"
            for r in rows
        ]
        pager = [Action("Previous", f"/sessions {page - 1}")] if page > 1 else []
        if len(rows) == PAGE:
            lines.append(f"Next: {self._invoke}sessions {page + 1}")
            pager.append(Action("Next", f"/sessions {page + 1}"))
        return Answer("\n".join(lines), tuple(pager))

    async def _cmd_stats(self, args: tuple[str, ...], own: str | None) -> Answer:
        if args:
            raise UsageError(USAGE["stats"])
        s = await self._store.stats(self._app)
        delegations = ", ".join(f"{a} {n}" for a, n in sorted(s.delegations.items())) or "none"
        text = "\n".join(
            [
                f"Users: {s.users}",
                f"Sessions: {s.sessions}",
                f"Turns: {s.turns} ({s.events} events)",
                f"Delegations: {delegations}",
                f"Tokens: {s.prompt_tokens} prompt + {s.completion_tokens} completion",
            ]
        )
        return Answer(text, file=await self._activity_png(dict(s.delegations)))

    async def _activity_png(self, delegations: dict[str, int]) -> ReplyFile:
        """Turns per day over the last ACTIVITY_DAYS and delegations per agent, drawn off the
        event loop (matplotlib, Agg)."""
        today = int(self._clock() // 86_400)
        since = (today - ACTIVITY_DAYS + 1) * 86_400
        days = dict(await self._store.turns_per_day(self._app, since))
        png = await asyncio.to_thread(render_activity_png, days, today, delegations)
        return ReplyFile("stats.png", png, mime_type="image/png")

    async def _cmd_user(self, args: tuple[str, ...], own: str | None) -> str:
        if len(args) != 1:
            raise UsageError(USAGE["user"])
        user_id = await self.resolve_user(args[0])
        stats = await self._store.stats(self._app, user_id)
        sessions = await self._store.list_sessions(self._app, user_id, limit=5)
        state = await self._user_state(user_id, [s.session_id for s in sessions])
        lines = [f"User {user_id}", f"Sessions: {stats.sessions}, turns: {stats.turns}"]
        if sessions:
            lines.append(f"Last active: {when(sessions[0].updated_at)}")
        lines += [f"{k.removeprefix(USER_PREFIX)}: {_show(v)}" for k, v in sorted(state.items())]
        lines += memory_lines(await self._store.memories(self._app, user_id))
        return "\n".join(lines)

    async def _user_state(self, user_id: str, session_ids: list[str]) -> dict[str, Any]:
        for session_id in session_ids[:1]:
            session = await self._store.get_session(self._app, user_id, session_id, recent_events=0)
            if session is not None:
                return {
                    k: v
                    for k, v in session.state.items()
                    if k.startswith(USER_PREFIX) and not k.startswith(SESSION_POINTER_PREFIX)
                }
        return {}

    async def _cmd_forget(self, args: tuple[str, ...], own: str | None) -> str:
        if len(args) != 1:
            raise UsageError(USAGE["forget"])
        user_id = await self.resolve_user(args[0])
        await self._store.delete_user(self._app, user_id)
        return f"Erased everything stored about {user_id}."

    async def export(self, actor: str, ref: str) -> dict[str, Any]:
        """For the shell: the user's data as a dict (chat users get /export for their own)."""
        await self._store.audit(
            actor, "export", await self._audit_detail(ParsedCommand("user", (ref,)))
        )
        return await self._store.export_user(self._app, await self.resolve_user(ref))


def memory_lines(memories: list[Memory]) -> list[str]:
    """The user's memories as /memory numbers them (oldest first), the first MEMORIES_SHOWN."""
    if not memories:
        return ["Memories: none"]
    lines = [f"Memories ({len(memories)}):"]
    lines += [f"{n}. {m.text} [{m.id}]" for n, m in enumerate(memories[:MEMORIES_SHOWN], 1)]
    if len(memories) > MEMORIES_SHOWN:
        lines.append(f"… {len(memories) - MEMORIES_SHOWN} more: python -m bot admin export USER")
    return lines


def digest(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


def _target_ref(cmd: ParsedCommand) -> str | None:
    if cmd.name == "history":
        try:
            return _history_args(cmd.args)[0]
        except UsageError:
            return None
    if cmd.name in ("user", "forget") and len(cmd.args) == 1:
        return cmd.args[0]
    return None


def _show(value: Any) -> str:
    if isinstance(value, list | tuple | dict):
        return ", ".join(as_list(value)) or "—"
    return str(value)


def _history_args(args: tuple[str, ...]) -> tuple[str | None, int, str | None]:
    """[user] [limit] [before]; a lone short number is the limit (Discord may omit `user`).
    The limit is as asked: above MAX_LIMIT, the caller shows the maximum and says so."""
    rest = list(args)
    ref = None
    if rest and not _is_limit(rest[0]):
        ref = rest.pop(0)
    limit = 20
    if rest:
        if not _is_limit(rest[0]):
            raise UsageError(USAGE["history"])
        limit = int(rest.pop(0))
        if limit < 1:
            raise UsageError(f"limit must be between 1 and {MAX_LIMIT}")
    before = rest.pop(0) if rest else None
    if rest:
        raise UsageError(USAGE["history"])
    return ref, limit, before


def _is_limit(arg: str) -> bool:
    return arg.isdigit() and len(arg) <= 4


def _int_arg(args: tuple[str, ...], name: str, *, default: int, low: int, high: int) -> int:
    if not args:
        return default
    if len(args) > 1 or not args[0].isdigit() or not low <= int(args[0]) <= high:
        raise UsageError(USAGE[name])
    return int(args[0])
