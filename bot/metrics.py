"""The operator's metrics (docs/architecture.md, "Health and metrics"): Prometheus counters,
histograms and gauges on a registry of this object's own.

prometheus-client's default REGISTRY is process-global; a registry per app keeps two apps in
one process (tests) from counting into each other. `Metrics` implements agents.observer.Observer,
which the core, the runner and the quote provider report through. Labels are bounded names
(platform, agent, tool, model, outcome), never a user id or message text.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

# Seconds: an offline turn takes milliseconds, a model turn seconds, the turn deadline is 60.
_TURN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)
_LOCK_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30)
# An alert poll's phases: a handful of symbols in milliseconds, 5,000 in seconds.
_POLL_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60)
_PREFIX = "switchboard"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r, p = self.registry, _PREFIX
        self._turns = Histogram(
            f"{p}_turn_seconds", "Agent turns and their latency", ["platform"],
            registry=r, buckets=_TURN_BUCKETS,
        )  # fmt: skip
        self._replies = Counter(f"{p}_replies_sent", "Replies delivered", ["platform"], registry=r)
        self._model_calls = Counter(
            f"{p}_model_calls", "Model calls by outcome", ["model", "outcome"], registry=r
        )
        self._tokens = Counter(
            f"{p}_tokens", "Model tokens", ["model", "agent", "kind"], registry=r
        )
        self._delegations = Counter(
            f"{p}_delegations", "Turns handed to an agent", ["agent"], registry=r
        )
        self._tool_calls = Counter(
            f"{p}_tool_calls", "Tool calls by outcome", ["tool", "outcome"], registry=r
        )
        self._lock_waits = Histogram(
            f"{p}_session_lock_wait_seconds", "Waits for a session lock",
            registry=r, buckets=_LOCK_BUCKETS,
        )  # fmt: skip
        self._rate_limited = Counter(
            f"{p}_rate_limited_messages", "Messages refused by per-user limits", ["platform"],
            registry=r,
        )  # fmt: skip
        self._quote_failures = Counter(
            f"{p}_quote_provider_failures", "Quote provider failures", ["reason"], registry=r
        )
        self._proactive = Counter(
            f"{p}_proactive_messages", "Alerts, reminders and digests by what their send did",
            ["kind", "outcome"], registry=r,
        )  # fmt: skip
        self._polls = Histogram(
            f"{p}_alert_poll_seconds", "Alert polls: quoting and evaluating", ["phase"],
            registry=r, buckets=_POLL_BUCKETS,
        )  # fmt: skip
        self._backlog = Gauge(f"{p}_inbox_backlog", "Unanswered inbox messages", registry=r)
        self._oldest = Gauge(
            f"{p}_inbox_oldest_pending_seconds", "Age of the oldest unanswered message",
            registry=r,
        )  # fmt: skip

    def turn(self, platform: str, seconds: float) -> None:
        self._turns.labels(platform).observe(seconds)

    def reply_sent(self, platform: str) -> None:
        self._replies.labels(platform).inc()

    def model_call(self, model: str, outcome: str) -> None:
        self._model_calls.labels(model, outcome).inc()

    def tokens(self, model: str, agent: str, prompt: int, completion: int) -> None:
        self._tokens.labels(model, agent, "prompt").inc(prompt)
        self._tokens.labels(model, agent, "completion").inc(completion)

    def delegation(self, agent: str) -> None:
        self._delegations.labels(agent).inc()

    def tool_call(self, tool: str, outcome: str) -> None:
        self._tool_calls.labels(tool, outcome).inc()

    def lock_wait(self, seconds: float) -> None:
        self._lock_waits.observe(seconds)

    def rate_limited(self, platform: str) -> None:
        self._rate_limited.labels(platform).inc()

    def quote_failure(self, reason: str) -> None:
        self._quote_failures.labels(reason).inc()

    def proactive(self, kind: str, outcome: str) -> None:
        """bot.scheduler.SchedulerObserver: one send of an alert, reminder or digest."""
        self._proactive.labels(kind, outcome).inc()

    def alert_poll(self, phase: str, seconds: float) -> None:
        self._polls.labels(phase).observe(seconds)

    def inbox(self, backlog: int, oldest_age: float) -> None:
        """The inbox as last read (by a scrape or a readiness check)."""
        self._backlog.set(backlog)
        self._oldest.set(oldest_age)

    def render(self) -> bytes:
        """The Prometheus text exposition of everything above."""
        return generate_latest(self.registry)
