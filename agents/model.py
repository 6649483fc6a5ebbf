"""The boundary between the agent loop and a language model: one Protocol, a few values.

A model client turns a `ModelRequest` (an agent's system prompt, the chat so far as
OpenAI-style messages, and the tool schemas) into a stream: zero or more `TextDelta`s while the
answer is produced, then exactly one `ModelResponse` (full text, tool calls, token usage).
Failures raise `ModelError` whose `kind` the runner turns into an honest short message.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from storage.types import TokenUsage

Message = Mapping[str, Any]  # one OpenAI chat message: {"role", "content", "tool_calls"?, ...}


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    raw_arguments: str | None = None  # what the model sent when it was not a JSON object


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """Everything one model call needs.

    `state` is the session's merged state (read-only). The OpenAI model ignores it (the state it
    may see is already rendered into `system`); the offline model reads it to tailor replies.
    """

    agent_name: str
    system: str
    messages: tuple[Message, ...]
    tools: tuple[Mapping[str, Any], ...] = ()
    model: str | None = None
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ModelResponse:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: TokenUsage | None = None
    model: str | None = None
    # The answer tells the user's own data back (their memories, their profile): in a shared
    # chat it goes only to them (the final event carries it; bot.messages.Reply.private).
    # None: not judged (a real LLM): in a shared chat the runner then makes the answer private
    # when the model was shown the user's memories (agents/runner.py, "_guarded").
    private: bool | None = None


ModelChunk = TextDelta | ModelResponse

# kind -> what the user reads. Honest and short: say what failed and what to do.
ERROR_MESSAGES: Mapping[str, str] = {
    "rate_limited": "The AI service is busy right now (rate limited). Try again in a minute.",
    "out_of_credits": (
        "The AI service is out of credits, so I can't answer right now. "
        "The bot's admin needs to top it up."
    ),
    "unavailable": "The AI service is having trouble right now. Please try again shortly.",
    "timeout": "The AI service took too long to answer. Please try again.",
    "auth": "The AI service rejected the bot's credentials. The admin needs to check the API key.",
    "bad_request": "The AI service couldn't process that request. Try rephrasing it.",
    "cut_off": "My answer was cut off mid-way by the AI service. Please try again.",
    "turn_timeout": "That took too long, so I stopped. Please try again.",
    "too_many_steps": "I went round in circles on that one and stopped. Could you rephrase it?",
    "internal": "Something went wrong on my side. Please try again.",
}


class ModelError(Exception):
    """A model call failed. `kind` is a key of ERROR_MESSAGES; `status` the HTTP status if any."""

    def __init__(
        self,
        kind: str,
        detail: str = "",
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind if kind in ERROR_MESSAGES else "internal"
        self.detail = detail
        self.status = status
        self.retry_after = retry_after  # seconds the server asked us to wait, if it said


class ModelClient(Protocol):
    """An LLM behind one interface: the OpenAI-compatible client or the offline model."""

    description: str
    model: str  # the model asked for when a request names none (a metrics label)

    def stream(self, request: ModelRequest) -> AsyncGenerator[ModelChunk, None]:
        """Yield TextDelta chunks while the answer is produced, then one ModelResponse.
        Raises ModelError."""
        ...

    async def aclose(self) -> None: ...
