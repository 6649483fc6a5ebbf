"""Agents are plain data; tools are typed functions that see the world through a ToolContext.

Delegation design (ADK-style `transfer_to_agent`, not agent-as-tool): an agent with sub-agents
builds its own `transfer_to_agent(agent_name)` tool (here: schema, check and effect). The tool
records the handover on its ToolContext; the runner stores the call and its result as events, the
result event carrying `actions.transfer_to_agent`, and hands the rest of the turn to the named
agent, which sees the same history. So every delegation is one stored event the
store's stats count per agent. Each turn starts again at the root agent (the manager), which
keeps routing predictable when the user changes subject.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.memory import UserMemories
from agents.model import ModelClient
from agents.user_schedules import UserSchedules
from storage.types import (
    APP_PREFIX,
    TEMP_PREFIX,
    USER_PREFIX,
    Memory,
    MemoryChange,
    ScheduleChange,
)

log = logging.getLogger(__name__)

TRANSFER_TOOL = "transfer_to_agent"


class ToolContext:
    """What a tool may touch: the state of the calling user's session and that user's
    memories, nothing else.

    Bound by the runner to (app, user, session); a tool never gets a user id from the model's
    arguments. Reads see the session's merged state plus this call's own writes; writes are
    collected into `state_delta`, which the runner stores on the tool-result event (so they are
    applied atomically with it). `app:` keys are read-only for tools: one user's prompt must not
    change what every user sees.
    """

    def __init__(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        agent_name: str,
        invocation_id: str,
        state: Mapping[str, Any],
        memories: UserMemories | None = None,
        schedules: UserSchedules | None = None,
    ) -> None:
        self._app_name = app_name
        self._user_id = user_id
        self._session_id = session_id
        self._agent_name = agent_name
        self._invocation_id = invocation_id
        self._state = dict(state)
        self._delta: dict[str, Any] = {}
        self._transfer: str | None = None
        self._memories = memories
        self._memory_changes: list[MemoryChange] = []
        self._revealed = False
        self._schedules = schedules
        self._schedule_changes: list[ScheduleChange] = []

    @property
    def user_id(self) -> str:
        return self._user_id

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def app_name(self) -> str:
        return self._app_name

    @property
    def agent_name(self) -> str:
        return self._agent_name

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._delta:
            value = self._delta[key]
            return default if value is None else value
        return self._state.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Record a state change (None deletes the key)."""
        if key.startswith(APP_PREFIX):
            raise PermissionError("tools may not change app-wide state")
        self._delta[key] = value

    @property
    def state_delta(self) -> dict[str, Any]:
        return dict(self._delta)

    def transfer_to(self, agent_name: str) -> None:
        """Hand the rest of the turn to `agent_name` (only the transfer tool does this)."""
        self._transfer = agent_name

    @property
    def transferred_to(self) -> str | None:
        return self._transfer

    # The user's memories: changes are collected like state writes (the runner stores them on
    # the tool-result event, applied with it); reads go through the reader bound to this user.
    def remember(self, text: str) -> None:
        self._memory_changes.append(MemoryChange("add", text=text))

    def update_memory(self, memory_id: str, text: str) -> None:
        self._memory_changes.append(MemoryChange("update", text=text, memory_id=memory_id))

    def forget_memory(self, memory_id: str) -> None:
        self._memory_changes.append(MemoryChange("delete", memory_id=memory_id))

    @property
    def memory_changes(self) -> tuple[MemoryChange, ...]:
        return tuple(self._memory_changes)

    async def search_memories(self, query: str) -> list[Memory]:
        """The user's memories matching `query` best first, then the most recent ones."""
        found = await self._memories.search(query) if self._memories else []
        self._revealed = self._revealed or bool(found)
        return found

    def reveal_private(self) -> None:
        """This call showed the model some of the user's private data (their alerts or
        reminders): like a memory search, it keeps the answer out of a shared chat."""
        self._revealed = True

    @property
    def revealed_memories(self) -> bool:
        """Whether a search showed the model any of the user's memories (the runner keeps such
        an answer out of a shared chat)."""
        return self._revealed

    async def all_memories(self) -> list[Memory]:
        return await self._memories.all() if self._memories else []

    # The user's alerts and reminders (agents/user_schedules.py): changes are collected like
    # state writes and stored on the tool-result event (applied with it); None where the turn
    # has no chat to fire into.
    @property
    def schedules(self) -> UserSchedules | None:
        return self._schedules

    def change_schedule(self, change: ScheduleChange) -> None:
        self._schedule_changes.append(change)

    @property
    def schedule_changes(self) -> tuple[ScheduleChange, ...]:
        return tuple(self._schedule_changes)


ToolFunc = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call. `parameters` is its JSON schema (an "object").

    `func(ctx, **arguments)` receives only the declared parameters: anything else the model
    sends (say, a smuggled `user_id`) is dropped before the call and logged. `shared_state`
    says the tool reads or writes `user:`/`app:` state, which the runner then reads afresh
    just before the call (another chat of the user may have changed it meanwhile).
    """

    name: str
    description: str
    func: ToolFunc
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    shared_state: bool = True

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }

    def accepted_arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        allowed = set(self.parameters.get("properties", {}))
        extra = sorted(set(arguments) - allowed)
        if extra:
            log.warning("tool %s: ignoring undeclared arguments %s", self.name, extra)
        return {k: v for k, v in arguments.items() if k in allowed}

    def missing_arguments(self, arguments: Mapping[str, Any]) -> list[str]:
        required = self.parameters.get("required", [])
        return [name for name in required if name not in arguments]


@dataclass(frozen=True, slots=True)
class Agent:
    """One agent: what it is for (`description`, read by its parent to route), how it behaves
    (`instruction`, with ADK-style `{user:name}` / `{user:name?}` placeholders filled from state),
    what it can do (`tools`), whom it can hand over to (`sub_agents`), which model client runs it
    (`model`; a sub-agent without one uses its root's) and an optional model name override
    (`model_name`, else the client's default model)."""

    name: str
    description: str
    instruction: str
    tools: tuple[Tool, ...] = ()
    sub_agents: tuple[Agent, ...] = ()
    model: ModelClient | None = field(default=None, compare=False)
    model_name: str | None = None
    # `tools`, plus the transfer tool when there are sub-agents: what the model may call.
    callable_tools: tuple[Tool, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        transfer = (self._transfer_tool(),) if self.sub_agents else ()
        object.__setattr__(self, "callable_tools", self.tools + transfer)

    def find(self, name: str) -> Agent | None:
        """This agent or a descendant by name."""
        if self.name == name:
            return self
        for sub in self.sub_agents:
            found = sub.find(name)
            if found is not None:
                return found
        return None

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.callable_tools if t.name == name), None)

    def _transfer_tool(self) -> Tool:
        names = [sub.name for sub in self.sub_agents]

        async def transfer_to_agent(ctx: ToolContext, agent_name: Any) -> dict[str, Any]:
            target = str(agent_name)
            if target not in names:
                return {"error": f"unknown agent {target[:40]!r}; choose one of {names}"}
            ctx.transfer_to(target)
            return {"transferred_to": target}

        return Tool(
            TRANSFER_TOOL,
            "Hand the conversation to the named agent, who answers next.",
            transfer_to_agent,
            {
                "type": "object",
                "properties": {"agent_name": {"type": "string", "enum": names}},
                "required": ["agent_name"],
            },
            shared_state=False,
        )

    def system_prompt(self, state: Mapping[str, Any]) -> str:
        prompt = render_instruction(self.instruction, state)
        if self.sub_agents:
            lines = [f"- {sub.name}: {sub.description}" for sub in self.sub_agents]
            prompt += (
                "\n\nYou can hand the conversation to one of these agents with the "
                f"{TRANSFER_TOOL} tool when the request is theirs:\n" + "\n".join(lines)
            )
        return prompt


_SCOPES = "|".join(re.escape(p) for p in (APP_PREFIX, USER_PREFIX, TEMP_PREFIX))
_PLACEHOLDER = re.compile(rf"\{{((?:{_SCOPES})?[A-Za-z_][A-Za-z0-9_]*)(\?)?\}}")


def render_instruction(template: str, state: Mapping[str, Any]) -> str:
    """Fill `{key}` and `{key?}` from state, as ADK does. A missing key renders as "" for the
    optional form and as "unknown" otherwise (ADK 2.13 raises; a chat bot should not)."""

    def fill(match: re.Match[str]) -> str:
        key, optional = match.group(1), match.group(2)
        value = state.get(key)
        if value is None or value == [] or value == "":
            return "" if optional else "unknown"
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return str(value)

    return _PLACEHOLDER.sub(fill, template)


def transfer_targets(tool_schemas: Iterable[Mapping[str, Any]]) -> set[str]:
    """The agents a transfer tool among these schemas (as a model receives them) can name."""
    for schema in tool_schemas:
        function = schema.get("function", {})
        if function.get("name") == TRANSFER_TOOL:
            return set(function["parameters"]["properties"]["agent_name"].get("enum", []))
    return set()
