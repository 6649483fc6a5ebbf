"""Agents, their tools and model clients.

`build_team(model, quotes)` gives the manager with its sub-agents; `make_model(...)` the model
client (the OpenAI-compatible one when a key is given, else the offline model);
`QuoteProvider(base_url)` the market-data client.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from agents.agent import TRANSFER_TOOL, Agent, Tool, ToolContext, render_instruction
from agents.jokes import JokeBook
from agents.model import (
    ERROR_MESSAGES,
    ModelClient,
    ModelError,
    ModelRequest,
    ModelResponse,
    TextDelta,
    ToolCall,
)
from agents.offline import OfflineModel
from agents.quotes import Quote, QuoteError, QuoteProvider, QuotesUnavailable, normalize_ticker
from agents.team import FUNNY_NERD, MANAGER, STOCK_ANALYST, build_team

if TYPE_CHECKING:
    from agents.openai_model import OpenAIModel

log = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    # The openai SDK takes seconds to import; an offline bot (and its restart after a crash)
    # should not pay for it. `agents.OpenAIModel` still works, imported on first use.
    if name == "OpenAIModel":
        from agents.openai_model import OpenAIModel

        return OpenAIModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_model(
    api_key: str | None,
    base_url: str,
    model: str,
    timeout: float,
    max_retries: int,
    *,
    max_tokens: int = 1024,
) -> ModelClient:
    """The real LLM client when a key is configured, else the offline model (announced once,
    here, since the composition root builds the model once per process).

    `model` may list fallbacks after commas ("openai/gpt-4o-mini,mistralai/mistral-small"):
    they are tried in order when the first model is down (502/503)."""
    if api_key:
        from agents.openai_model import OpenAIModel

        names = [name.strip() for name in model.split(",") if name.strip()]
        client = OpenAIModel(
            api_key=api_key,
            base_url=base_url,
            model=names[0] if names else model,
            fallback_models=tuple(names[1:]),
            timeout=timeout,
            max_retries=max_retries,
            max_tokens=max_tokens,
        )
        log.info("model: %s", client.description)
        return client
    offline = OfflineModel()
    log.warning(
        "No OPENROUTER_API_KEY or OPENAI_API_KEY set: using the %s. Set a key to use a real LLM.",
        offline.description,
    )
    return offline


__all__ = [
    "ERROR_MESSAGES",
    "FUNNY_NERD",
    "MANAGER",
    "STOCK_ANALYST",
    "TRANSFER_TOOL",
    "Agent",
    "JokeBook",
    "ModelClient",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "OfflineModel",
    "OpenAIModel",
    "Quote",
    "QuoteError",
    "QuoteProvider",
    "QuotesUnavailable",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolContext",
    "build_team",
    "make_model",
    "normalize_ticker",
    "render_instruction",
]
