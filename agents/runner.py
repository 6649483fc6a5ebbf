"""The ADK-style runner: one user message in, a stream of events out.

`run_async` loads the session with its latest compaction summary and the events after it, at
most `history_window` of them (or takes the one its caller just loaded under the session lock),
appends the user event, runs the root agent and whichever agent it transfers to, stores every
event with its state delta, and yields: partial events (streamed text, never stored), every
stored event, and last exactly one final event.
Failures end the turn with an honest final message (`error` set); the user's message stays
stored. The caller holds the session lock.

With an `invocation_id` a turn is idempotent and resumable: the user event's id is
f"{invocation_id}:u" and the final event's f"{invocation_id}:final"; a turn whose final event is
stored is replayed from the store, and one with only its user event continues from there.

`after_turn` runs the post-turn jobs (`AfterTurnJob`: compaction, memory extraction) once a
turn's answer has been delivered; the caller runs it off the turn's path, under the session lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agents.agent import Agent, Tool, ToolContext
from agents.chart_tools import attachments_of
from agents.history import to_messages, tool_call_content
from agents.memory import MEMORY_PROMPT_CHARS, NO_MEMORIES, UserMemories, memory_message
from agents.model import (
    ERROR_MESSAGES,
    Message,
    ModelClient,
    ModelError,
    ModelRequest,
    ModelResponse,
    TextDelta,
    ToolCall,
)
from agents.observer import Observer, Unobserved
from agents.tracing import Span, Tracer, Untraced
from agents.user_schedules import ChatOrigin, JobSource, UserSchedules
from storage import SessionStore
from storage.protocols import MemoryStore
from storage.types import APP_PREFIX, USER_PREFIX, Event, EventActions, Session, new_id

log = logging.getLogger(__name__)

EMPTY_ANSWER = "Sorry, I came up empty on that one. Could you rephrase it?"


class TurnTimeout(Exception):
    pass


@dataclass
class _Turn:
    """Mutable bookkeeping of one turn (never shared between turns)."""

    session: Session
    invocation_id: str
    deadline: float
    state: dict[str, Any]
    agent: Agent
    events: list[Event] = field(default_factory=list)
    messages: dict[str, Any] = field(default_factory=dict)  # event id -> its model message
    text: str = ""  # the user's message: what the memory block is recalled with
    memory: Message | None = None  # the memory block, recalled once per turn
    revealed: bool = False  # the model was shown some of the user's memories this turn
    origin: ChatOrigin | None = None  # the chat the message came from (where jobs set fire)


class TurnStore(SessionStore, MemoryStore, JobSource, Protocol):
    """What a turn reads and writes: sessions and events, the user's memories and jobs."""


class AfterTurnJob(Protocol):
    """Work done after a turn was answered (agents/compaction.py, memory extraction): given the
    session as a turn would load it now. Idempotent by `invocation_id` (a replayed turn runs it
    again); a failure is only logged."""

    async def run(self, session: Session, invocation_id: str) -> None: ...


class Runner:
    def __init__(
        self,
        store: TurnStore,
        root_agent: Agent,
        *,
        app_name: str,
        history_window: int = 20,
        turn_timeout: float = 60.0,
        max_steps: int = 8,
        observer: Observer | None = None,
        tracer: Tracer | None = None,
        memory_prompt_chars: int = MEMORY_PROMPT_CHARS,
        after_turn: Sequence[AfterTurnJob] = (),
    ) -> None:
        """`observer` counts model calls, tokens, handovers and tool calls (bot.metrics);
        `tracer` spans each of them (bot.tracing), inside the caller's turn span;
        `memory_prompt_chars` bounds the memory block (agents/memory.py)."""
        if root_agent.model is None:
            raise ValueError(f"the root agent {root_agent.name!r} needs a model client")
        self._store = store
        self._root = root_agent
        self._app_name = app_name
        self._window = history_window
        self._turn_timeout = turn_timeout
        self._max_steps = max_steps
        self._observer = observer or Unobserved()
        self._tracer = tracer or Untraced()
        self._memory_chars = memory_prompt_chars
        # Whether the model marks each answer private or not (ModelResponse.private), so it may
        # see the latest memories in a shared chat too (the offline model does; an LLM does not).
        self._judges_privacy = bool(getattr(root_agent.model, "judges_privacy", False))
        self._jobs = tuple(after_turn)

    @property
    def history_window(self) -> int:
        """At most how many events after the latest summary a turn loads (a caller passing
        `session` loads as many, with SessionStore.get_context)."""
        return self._window

    @property
    def has_after_turn(self) -> bool:
        """Whether `after_turn` has anything to do (else the caller need not schedule it)."""
        return bool(self._jobs)

    async def after_turn(self, user_id: str, session_id: str, invocation_id: str) -> None:
        """Run each post-turn job in order, each on the session as it is when the job starts
        (an earlier job may have appended to it). The caller holds the session lock."""
        for job in self._jobs:
            session = await self._store.get_context(
                self._app_name, user_id, session_id, max_events=self._window
            )
            if session is None:
                return  # erased (/forgetme) or moved (/link) since the turn
            try:
                await job.run(session, invocation_id)
            except Exception:
                log.exception("after-turn job %s failed", type(job).__name__)

    async def run_async(
        self,
        user_id: str,
        session_id: str,
        new_message: str,
        *,
        invocation_id: str | None = None,
        session: Session | None = None,
        origin: ChatOrigin | None = None,
    ) -> AsyncGenerator[Event, None]:
        """`session`: the session as the caller read it under the session lock, with
        `history_window` events (so a turn reads it once); read here when None. `origin`: the
        chat the message came from, where alerts and reminders its tools set will fire (without
        it, the tools cannot set any)."""
        inv = invocation_id or new_id()
        if session is None:
            session = await self._load(user_id, session_id)
        mine = [e for e in session.events if e.invocation_id == inv]
        done = next((e for e in mine if e.final), None)
        if done is not None:
            yield done  # a replayed turn: answer again from the store, no model call
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._turn_timeout
        # A resumed turn continues with the agent that was answering when it stopped: the
        # manager would only see its handover done and close the turn without the real answer.
        turn = _Turn(session, inv, deadline, dict(session.state), self._answering(mine))
        turn.text = new_message
        turn.origin = origin
        turn.events.extend(session.events)
        if not any(e.id == f"{inv}:u" for e in mine):
            yield await self._append(
                turn,
                Event(
                    author="user", content={"text": new_message}, invocation_id=inv, id=f"{inv}:u"
                ),
            )
        try:
            async for event in self._agent_loop(turn):
                yield event
        except TurnTimeout:
            log.warning("turn %s passed its %.0fs deadline", inv, self._turn_timeout)
            yield await self._final_error(turn, "turn_timeout")
        except ModelError as exc:
            yield await self._final_error(turn, exc.kind)

    def _answering(self, stored: list[Event]) -> Agent:
        """The agent a turn with these stored events is in: the target of its last handover
        (whose result event is stored), else the root."""
        for event in reversed(stored):
            target = event.actions.transfer_to_agent
            agent = self._root.find(target) if target else None
            if agent is not None:
                return agent
        return self._root

    async def _load(self, user_id: str, session_id: str) -> Session:
        app, window = self._app_name, self._window
        session = await self._store.get_context(app, user_id, session_id, max_events=window)
        # A new session has no events to cut to the window: the created one is the loaded one.
        return session or await self._store.create_session(app, user_id, session_id)

    async def _append(self, turn: _Turn, event: Event) -> Event:
        if not await self._store.append_event(turn.session, event) and event.final:
            stored = await self._stored_final(turn, event.id)
            if stored is not None:
                # Another run of this invocation finished first: its answer is the one kept,
                # so it is the one to send (this run's text would contradict the history).
                log.warning("invocation %s was answered by another run", turn.invocation_id)
                turn.events.append(stored)
                return stored
        for key, value in event.actions.state_delta.items():
            if value is None:
                turn.state.pop(key, None)
            else:
                turn.state[key] = value
        turn.events.append(event)
        return event

    async def _stored_final(self, turn: _Turn, event_id: str) -> Event | None:
        s = turn.session
        session = await self._store.get_session(
            self._app_name, s.user_id, s.session_id, recent_events=self._window
        )
        events = session.events if session is not None else ()
        return next((e for e in events if e.id == event_id), None)

    async def _final_error(self, turn: _Turn, kind: str) -> Event:
        """The honest message that ends a failed turn, from the agent that was answering."""
        event = Event(
            author=turn.agent.name,
            content={"text": ERROR_MESSAGES[kind]},
            invocation_id=turn.invocation_id,
            id=f"{turn.invocation_id}:final",
            final=True,
            error=kind,
        )
        return await self._append(turn, event)

    async def _agent_loop(self, turn: _Turn) -> AsyncGenerator[Event, None]:
        agent = turn.agent
        for _ in range(self._max_steps):
            response: ModelResponse | None = None
            async for chunk in self._call_model(turn, agent):
                if isinstance(chunk, TextDelta):
                    if _guarded(turn) and not self._judges_privacy:
                        continue  # a preview in a shared chat, of what may be private
                    yield Event(
                        author=agent.name,
                        content={"text": chunk.text},
                        invocation_id=turn.invocation_id,
                        partial=True,
                    )
                else:
                    response = chunk
            if response is None:
                raise ModelError("internal", "the model stream ended without a response")
            if not response.tool_calls:
                yield await self._append(turn, self._final(turn, agent, response))
                return
            yield await self._append(
                turn,
                Event(
                    author=agent.name,
                    content=tool_call_content(response.tool_calls, response.text),
                    invocation_id=turn.invocation_id,
                    usage=response.usage,
                ),
            )
            next_agent: Agent | None = None
            for call in response.tool_calls:
                event = await self._run_tool(turn, agent, call)
                yield await self._append(turn, event)
                target = event.actions.transfer_to_agent
                if target and next_agent is None:
                    next_agent = self._root.find(target)
            if next_agent is not None:
                self._observer.delegation(next_agent.name)
                with self._tracer.span(f"invoke_agent {next_agent.name}", _handover(next_agent)):
                    pass  # a marker: the handover's model calls follow it in the turn
            agent = turn.agent = next_agent or agent
        raise ModelError("too_many_steps", f"more than {self._max_steps} model calls")

    def _final(self, turn: _Turn, agent: Agent, response: ModelResponse) -> Event:
        text = response.text.strip()
        if not text:
            log.warning("agent %s gave an empty answer", agent.name)
        content: dict[str, Any] = {"text": text or EMPTY_ANSWER}
        # A real LLM does not judge (None): in a shared chat, having seen memories decides.
        if response.private or (response.private is None and _guarded(turn)):
            content["private"] = True  # stored: a replayed turn is private too
        attachments = attachments_of(_tool_results(turn))
        if attachments:
            content["attachments"] = attachments  # e.g. a chart the core sends as a picture
        return Event(
            author=agent.name,
            content=content,
            invocation_id=turn.invocation_id,
            id=f"{turn.invocation_id}:final",
            usage=response.usage,
            final=True,
        )

    async def _call_model(self, turn: _Turn, agent: Agent) -> AsyncGenerator[Any, None]:
        model = self._model_of(agent)
        request = ModelRequest(
            agent_name=agent.name,
            system=agent.system_prompt(turn.state),
            messages=await self._messages(turn),
            tools=tuple(tool.schema() for tool in agent.callable_tools),
            model=agent.model_name,
            state=dict(turn.state),
        )
        stream = model.stream(request)
        asked = request.model or model.model
        with self._tracer.span(f"chat {asked}", _chat(asked, agent)) as span:
            try:
                while True:
                    try:
                        async with asyncio.timeout_at(turn.deadline):
                            chunk = await anext(stream)
                    except StopAsyncIteration:
                        return
                    except TimeoutError:
                        self._observe_call(model, request, "turn_timeout")
                        raise TurnTimeout() from None
                    except ModelError as exc:
                        self._observe_call(model, request, exc.kind)
                        raise
                    except Exception:
                        log.exception("model client %s failed", type(model).__name__)
                        self._observe_call(model, request, "internal")
                        raise ModelError("internal", "model client crashed") from None
                    if isinstance(chunk, ModelResponse):
                        self._observe_call(model, request, "ok", chunk)
                        _trace_response(span, chunk)
                    yield chunk
            finally:
                await stream.aclose()

    async def _messages(self, turn: _Turn) -> tuple[Message, ...]:
        """The history as chat messages, the memory block immediately before the user's
        message: everything before it stays byte-identical between turns (prompt caches)."""
        if turn.memory is None:
            memories = self._memories(turn.session.user_id)
            # In a shared chat only the memories the message is about, not the latest besides:
            # an answer a model did not judge, written after seeing any, goes to the user alone
            # (_guarded). A model that judges (the offline one) marks such answers itself.
            recent = 0 if _shared(turn) and not self._judges_privacy else 4
            turn.memory = await memory_message(
                memories, turn.text, self._memory_chars, recent=recent
            )
            turn.revealed = turn.memory["content"] != NO_MEMORIES
        cut = _current_message(turn)
        before = to_messages(turn.events[:cut], turn.messages)
        return (*before, turn.memory, *to_messages(turn.events[cut:], turn.messages))

    def _memories(self, user_id: str) -> UserMemories:
        return UserMemories(self._store, self._app_name, user_id)

    def _schedules(self, turn: _Turn) -> UserSchedules | None:
        if turn.origin is None:
            return None
        return UserSchedules(self._store, self._app_name, turn.session.user_id, turn.origin)

    def _observe_call(
        self,
        client: ModelClient,
        request: ModelRequest,
        outcome: str,
        response: ModelResponse | None = None,
    ) -> None:
        # The model that answered when known (a fallback, maybe), else the one asked for.
        model = (response.model if response else None) or request.model or client.model
        self._observer.model_call(model, outcome)
        if response is not None and response.usage is not None:
            usage = response.usage
            self._observer.tokens(
                model, request.agent_name, usage.prompt_tokens, usage.completion_tokens
            )

    def _model_of(self, agent: Agent) -> ModelClient:
        return agent.model or self._root.model  # type: ignore[return-value]

    async def _run_tool(self, turn: _Turn, agent: Agent, call: ToolCall) -> Event:
        """Run one tool call; every failure becomes a result the model can read."""
        tool = agent.tool(call.name)
        if tool is not None and tool.shared_state:
            await self._refresh_shared_state(turn)
        ctx = ToolContext(
            app_name=self._app_name,
            user_id=turn.session.user_id,
            session_id=turn.session.session_id,
            agent_name=agent.name,
            invocation_id=turn.invocation_id,
            state=turn.state,
            memories=self._memories(turn.session.user_id),
            schedules=self._schedules(turn),
        )
        # The tool's own name: the model's call.name is arbitrary text (unbounded labels).
        name = tool.name if tool else "unknown"
        with self._tracer.span(f"execute_tool {name}", _tool(name, agent)) as span:
            result = await self._call_tool(turn, tool, call, ctx)
            failed = isinstance(result, Mapping) and "error" in result
            turn.revealed = turn.revealed or ctx.revealed_memories
            if failed:
                span.set("error.type", "tool_error")
        self._observer.tool_call(name, "error" if failed else "ok")
        actions = EventActions()
        if not failed:
            actions = EventActions(
                ctx.state_delta,
                transfer_to_agent=ctx.transferred_to,
                memory_changes=ctx.memory_changes,
                schedule_changes=ctx.schedule_changes,
            )
        return Event(
            author=agent.name,
            content={"tool_result": {"id": call.id, "name": call.name, "result": result}},
            invocation_id=turn.invocation_id,
            actions=actions,
        )

    async def _refresh_shared_state(self, turn: _Turn) -> None:
        """Re-read `user:`/`app:` state just before a tool runs. The session lock serialises this
        session only; another session of the same user (a group chat, the other platform) may
        have changed the watchlist while our model was thinking, and a tool that read the turn's
        old snapshot would write that change away."""
        s = turn.session
        fresh = await self._store.get_session(
            self._app_name, s.user_id, s.session_id, recent_events=0
        )
        if fresh is None:
            return
        shared = (USER_PREFIX, APP_PREFIX)
        for key in [k for k in turn.state if k.startswith(shared)]:
            if key not in fresh.state:
                del turn.state[key]
        turn.state.update({k: v for k, v in fresh.state.items() if k.startswith(shared)})

    async def _call_tool(
        self, turn: _Turn, tool: Tool | None, call: ToolCall, ctx: ToolContext
    ) -> Any:
        if tool is None:
            return {"error": f"there is no tool named {call.name[:60]!r}"}
        if call.raw_arguments is not None:
            return {"error": "the arguments were not a valid JSON object"}
        arguments = tool.accepted_arguments(call.arguments)
        missing = tool.missing_arguments(arguments)
        if missing:
            return {"error": f"missing argument(s): {', '.join(missing)}"}
        try:
            async with asyncio.timeout_at(turn.deadline):
                result = await tool.func(ctx, **arguments)
        except TimeoutError:
            if asyncio.get_running_loop().time() >= turn.deadline:
                raise TurnTimeout() from None
            log.warning("tool %s timed out", call.name)
            return {"error": "the tool timed out"}
        except Exception:
            log.exception("tool %s failed", call.name)
            return {"error": "the tool failed unexpectedly"}
        try:
            return _jsonable(result)
        except ValueError:
            log.error("tool %s returned a value JSON cannot hold", call.name)
            return {"error": "the tool returned an unusable result"}


def _tool_results(turn: _Turn) -> list[Mapping[str, Any]]:
    """The results of this turn's tool calls (a resumed turn's stored ones included)."""
    results = (e.content.get("tool_result") for e in turn.events)
    mine = (
        r
        for e, r in zip(turn.events, results, strict=True)
        if r and e.invocation_id == turn.invocation_id
    )
    return [r["result"] for r in mine if isinstance(r.get("result"), Mapping)]


def _shared(turn: _Turn) -> bool:
    """The turn's message was written in a shared chat (a group, a guild channel)."""
    return turn.origin is not None and turn.origin.chat_id is not None


def _guarded(turn: _Turn) -> bool:
    """In a shared chat, after the model was shown some of the user's memories: no preview, and
    an answer the model did not judge (a real LLM) goes to the user alone."""
    return turn.revealed and _shared(turn)


def _current_message(turn: _Turn) -> int:
    """Where this turn's user message is among the turn's events (its first own event when the
    user event is out of view; the end when there is none)."""
    own = (i for i, e in enumerate(turn.events) if e.invocation_id == turn.invocation_id)
    user = f"{turn.invocation_id}:u"
    index = next((i for i, e in enumerate(turn.events) if e.id == user), None)
    return index if index is not None else next(own, len(turn.events))


def _jsonable(value: Any) -> Any:
    """What the store can hold: round-trip through JSON (unknown objects become strings)."""
    return json.loads(json.dumps(value, default=str, allow_nan=False))


# OpenTelemetry GenAI semantic conventions: bounded names and counts, never message text.
def _chat(model: str, agent: Agent) -> dict[str, str | int]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.agent.name": agent.name,
    }


def _trace_response(span: Span, response: ModelResponse) -> None:
    if response.model:
        span.set("gen_ai.response.model", response.model)
    if response.usage is not None:
        span.set("gen_ai.usage.input_tokens", response.usage.prompt_tokens)
        span.set("gen_ai.usage.output_tokens", response.usage.completion_tokens)


def _tool(name: str, agent: Agent) -> dict[str, str | int]:
    return {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.agent.name": agent.name,
    }


def _handover(agent: Agent) -> dict[str, str | int]:
    return {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent.name}
