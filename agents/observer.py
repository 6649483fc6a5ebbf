"""What the agents and the core report for the operator's metrics: one Protocol, and a null
implementation for code run without metrics (tests, the admin command line).

The Protocol lives here, the lowest layer that reports, so the runner and the quote provider
report without importing `bot` (bot.metrics implements it with prometheus-client). Labels are
bounded names - platforms, agents, tools, models, outcomes - never user ids or message text.
"""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    def turn(self, platform: str, seconds: float) -> None:
        """An agent turn ended (answered or failed) after `seconds`."""
        ...

    def reply_sent(self, platform: str) -> None:
        """A reply (not a preview, not typing) reached the platform."""
        ...

    def model_call(self, model: str, outcome: str) -> None:
        """`outcome`: "ok", or the ModelError kind that ended the call."""
        ...

    def tokens(self, model: str, agent: str, prompt: int, completion: int) -> None: ...

    def delegation(self, agent: str) -> None:
        """The turn was handed to `agent`."""
        ...

    def tool_call(self, tool: str, outcome: str) -> None:
        """`outcome`: "ok" or "error" (the result the model reads says which)."""
        ...

    def lock_wait(self, seconds: float) -> None:
        """How long a turn waited for its session lock."""
        ...

    def rate_limited(self, platform: str) -> None:
        """A message refused by the per-user limits."""
        ...

    def quote_failure(self, reason: str) -> None:
        """The quote provider failed (`reason`: "http", "network", "malformed")."""
        ...


class Unobserved:
    """Reports nowhere."""

    def turn(self, platform: str, seconds: float) -> None:
        pass

    def reply_sent(self, platform: str) -> None:
        pass

    def model_call(self, model: str, outcome: str) -> None:
        pass

    def tokens(self, model: str, agent: str, prompt: int, completion: int) -> None:
        pass

    def delegation(self, agent: str) -> None:
        pass

    def tool_call(self, tool: str, outcome: str) -> None:
        pass

    def lock_wait(self, seconds: float) -> None:
        pass

    def rate_limited(self, platform: str) -> None:
        pass

    def quote_failure(self, reason: str) -> None:
        pass
