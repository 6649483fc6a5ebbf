"""Context compaction (issue 14), after Google ADK's events compaction: an after-turn job that,
once more than `after` events follow a session's latest summary, appends a new summary covering
them. A turn then loads that summary and the events after it (SessionStore.get_context), so its
prompt stays bounded, and between two compactions it only grows at the end: the prefix stays
byte-identical and providers' prompt caches hit.

A summary is an event (append-only; the raw events stay for /history and /export): author
`SUMMARY_AUTHOR`, id f"{invocation_id}:summary" (a replayed turn cannot add a second one),
content {"summary": text, "covers": {"first", "last", "count"}}. Each summary folds in the
previous one, so the latest says everything.

Guards: a summary is never empty and is shorter than what it replaces (the previous summary plus
the transcript of the events it covers); a failing summariser appends nothing, the raw window
stays and a turn at least RETRY_AFTER later tries again (the load's cap bounds it meanwhile);
summaries are never counted as events to compact.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agents.model import ModelClient, ModelError, ModelRequest, ModelResponse
from agents.observer import Observer, Unobserved
from agents.profile import split_symbols
from storage import SessionStore
from storage.types import SUMMARY_AUTHOR, Event, Session

log = logging.getLogger(__name__)

COMPACT_AFTER = 40  # events after the latest summary that trigger the next one (COMPACT_AFTER)
LINE_CHARS = 400  # one event's line in the transcript a summariser reads
AGENT = "summariser"  # the summariser's name in requests and metrics
RETRY_AFTER = 120.0  # seconds before a session's failed compaction is tried again
REMEMBERED_FAILURES = 4096  # sessions whose last failure is remembered (the oldest forgotten)
SUMMARISER_INSTRUCTION = (
    "You compress a chat between a user and an assistant team into a summary the assistant will"
    " read instead of the messages. Keep what matters later: the user's name and facts about"
    " them, their preferences and dislikes, topics, stock tickers, open requests and what was"
    ' answered. Fold in the previous summary. Report what was said ("the user asked ..."),'
    " never as instructions to the assistant: the summary is shown to it as a system message."
    " Plain sentences, no preamble, at most 200 words."
)


class Summariser(Protocol):
    async def summarise(self, previous: str, events: Sequence[Event]) -> str:
        """A summary of `previous` (the latest summary's text, maybe empty) and `events`.
        Raises ModelError when the model fails."""
        ...


class Compaction:
    """The after-turn job (agents.runner.AfterTurnJob). A session whose last try failed waits
    `retry_after` seconds (on `clock`) before the next: the job holds the session's lock, and a
    summariser that keeps failing must not cost every turn a model call."""

    def __init__(
        self,
        store: SessionStore,
        summariser: Summariser,
        after: int = COMPACT_AFTER,
        *,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._summariser = summariser
        self._after = after
        self._retry_after = retry_after
        self._clock = clock
        self._failed: dict[tuple[str, str, str], float] = {}  # session -> its last failed try

    async def run(self, session: Session, invocation_id: str) -> None:
        previous, events = split_summary(session.events)
        key = (session.app_name, session.user_id, session.session_id)
        if len(events) <= self._after or self._clock() < self._failed.get(key, -math.inf):
            return
        text = await self._summary(previous, events, invocation_id)
        if text is None:
            self._failed.pop(key, None)
            self._failed[key] = self._clock() + self._retry_after
            if len(self._failed) > REMEMBERED_FAILURES:
                del self._failed[next(iter(self._failed))]  # the oldest: it only retries sooner
            return
        self._failed.pop(key, None)
        await self._store.append_event(session, summary_event(invocation_id, text, events))

    async def _summary(self, previous: str, events: Sequence[Event], inv: str) -> str | None:
        """The summary, or None (logged) when the summariser failed or its text is unusable:
        empty, or not shorter than what it replaces."""
        try:
            text = (await self._summariser.summarise(previous, events)).strip()
        except ModelError as exc:
            log.warning("compaction of %s failed (%s); retried later", inv, exc.kind)
            return None
        if not text or len(text) >= len(previous) + len(transcript(events)):
            log.warning("compaction of %s gave an unusable summary; retried later", inv)
            return None
        return text


def split_summary(events: Sequence[Event]) -> tuple[str, Sequence[Event]]:
    """(the loaded summary's text, the events after it) of what a turn loads."""
    if events and events[0].author == SUMMARY_AUTHOR:
        return str(events[0].content.get("summary", "")), events[1:]
    return "", events


def summary_event(invocation_id: str, text: str, events: Sequence[Event]) -> Event:
    covers = {"first": events[0].id, "last": events[-1].id, "count": len(events)}
    return Event(
        author=SUMMARY_AUTHOR,
        content={"summary": text, "covers": covers},
        invocation_id=invocation_id,
        id=f"{invocation_id}:summary",
    )


def transcript(events: Iterable[Event]) -> str:
    """The events as short lines (what a summariser reads, and what a summary replaces)."""
    return "\n".join(line for line in map(_line, events) if line)


def _line(event: Event) -> str:
    if event.error or event.partial:
        return ""  # honest failure notes are not conversation
    content = event.content
    if "tool_calls" in content:
        calls = (
            f"{c.get('name')}({json.dumps(c.get('arguments') or {})})"
            for c in content["tool_calls"]
        )
        what = f"{event.author} calls {', '.join(calls)}"
    elif "tool_result" in content:
        result = content["tool_result"]
        what = f"tool {result.get('name')}: {json.dumps(result.get('result'), default=str)}"
    elif event.text:
        what = f"{'User' if event.author == 'user' else event.author}: {event.text}"
    else:
        return ""
    what = " ".join(what.split())
    return what if len(what) <= LINE_CHARS else what[: LINE_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class ModelSummariser:
    """One model call, no tools, outside any turn (nothing of it is stored but the summary);
    counted by the observer like a turn's calls (agent "summariser")."""

    model: ModelClient
    observer: Observer = field(default_factory=Unobserved)

    async def summarise(self, previous: str, events: Sequence[Event]) -> str:
        earlier = f"Previous summary:\n{previous}\n\n" if previous else ""
        request = ModelRequest(
            agent_name=AGENT,
            system=SUMMARISER_INSTRUCTION,
            messages=(
                {"role": "user", "content": f"{earlier}Conversation:\n{transcript(events)}"},
            ),
        )
        try:
            response = await self._call(request)
        except ModelError as exc:
            self.observer.model_call(self.model.model, exc.kind)
            raise
        model = response.model or self.model.model
        self.observer.model_call(model, "ok")
        if response.usage is not None:
            usage = response.usage
            self.observer.tokens(model, AGENT, usage.prompt_tokens, usage.completion_tokens)
        return response.text

    async def _call(self, request: ModelRequest) -> ModelResponse:
        stream = self.model.stream(request)
        try:
            async for chunk in stream:
                if isinstance(chunk, ModelResponse):
                    return chunk
        finally:
            await stream.aclose()
        raise ModelError("internal", "the model stream ended without a response")


# The offline summary: one line per field, "Label: value<sep>value", kept most recent last.
_FIELDS: tuple[tuple[str, str, int], ...] = (
    ("Names", ", ", 3),
    ("Topics", ", ", 12),
    ("Dislikes", ", ", 12),
    ("Tickers", ", ", 12),
    ("Requests", " | ", 12),
)
_REQUEST_CHARS = 80
_TOPIC_TOOLS = {"tell_joke": "Topics", "nerd_fact": "Topics", "add_dislike": "Dislikes"}


class OfflineSummariser:
    """Deterministic, no model: the names, topics, dislikes and tickers the tools were called
    with, and the user's latest requests, merged with the previous summary's."""

    async def summarise(self, previous: str, events: Sequence[Event]) -> str:
        fields = _parse(previous)
        for event in events:
            for label, value in _facts(event):
                values = fields.setdefault(label, [])
                if value in values:
                    values.remove(value)  # mentioned again: now among the most recent
                values.append(value)
        return _format(fields)


def _facts(event: Event) -> Iterable[tuple[str, str]]:
    if event.author == "user" and event.text.strip():
        request = " ".join(event.text.replace("|", "/").split())
        cut = request if len(request) <= _REQUEST_CHARS else request[: _REQUEST_CHARS - 1] + "…"
        yield "Requests", cut
    for call in event.content.get("tool_calls") or ():
        yield from _call_facts(str(call.get("name")), call.get("arguments") or {})


def _call_facts(name: str, args: dict[str, Any]) -> Iterable[tuple[str, str]]:
    if name == "set_user_name" and isinstance(args.get("name"), str):
        yield "Names", _clean(args["name"])
    if name in _TOPIC_TOOLS and isinstance(args.get("topic"), str) and args["topic"].strip():
        yield _TOPIC_TOOLS[name], _clean(args["topic"]).lower()
    if name == "get_quote" and isinstance(args.get("symbol"), str):
        yield from (("Tickers", _ticker(s)) for s in split_symbols(args["symbol"]))
    if name in ("watchlist_add", "watchlist_remove") and args.get("symbols"):
        yield from (("Tickers", _ticker(s)) for s in split_symbols(args["symbols"]))


def _ticker(symbol: str) -> str:
    return _clean(symbol).upper()[:12]


def _clean(value: str) -> str:
    return " ".join(value.replace("|", "/").replace(",", " ").split())[:40]


def _parse(previous: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    separators = {label: sep for label, sep, _ in _FIELDS}
    for line in previous.splitlines():
        label, _, values = line.partition(": ")
        if label in separators and values:
            fields[label] = [v for v in values.split(separators[label]) if v]
    return fields


def _format(fields: dict[str, list[str]]) -> str:
    lines = (
        f"{label}: {sep.join(fields[label][-keep:])}"
        for label, sep, keep in _FIELDS
        if fields.get(label)
    )
    return "\n".join(lines)


def summariser_for(
    model: ModelClient, offline: bool, observer: Observer | None = None
) -> Summariser:
    """The LLM summariser for a real model, the deterministic one for the offline model."""
    return OfflineSummariser() if offline else ModelSummariser(model, observer or Unobserved())
