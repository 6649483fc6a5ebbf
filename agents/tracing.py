"""The tracing boundary: one Protocol, and a null implementation for code run without tracing.

Like `agents/observer.py`, it lives here so the runner and the core trace without importing
`bot`; bot/tracing.py implements it with OpenTelemetry (only when OTEL_EXPORTER_OTLP_ENDPOINT is
set). Attributes are bounded names and counts - models, agents, tools, token counts - never
message text or user ids. The span a `with` opens is the parent of the spans opened inside it,
across awaits (a contextvar carries it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Protocol

Attributes = Mapping[str, str | int]


class Span(Protocol):
    def set(self, key: str, value: str | int) -> None:
        """Add an attribute learned during the span (e.g. the token counts of a reply)."""
        ...


class Tracer(Protocol):
    def span(self, name: str, attributes: Attributes) -> contextlib.AbstractContextManager[Span]:
        """A span around the `with` body; an exception leaving it marks the span an error."""
        ...


class _NoSpan:
    def set(self, key: str, value: str | int) -> None:
        pass


class Untraced:
    """Traces nowhere."""

    @contextlib.contextmanager
    def span(self, name: str, attributes: Attributes) -> Iterator[Span]:
        yield _NoSpan()
