"""Optional OpenTelemetry tracing: implements `agents/tracing.py` with the OTel SDK.

Only with OTEL_EXPORTER_OTLP_ENDPOINT set does the composition root import the SDK and export
spans over OTLP/HTTP to `<endpoint>/v1/traces`; unset, the app runs `Untraced` and never imports
OpenTelemetry (an optional install: `pip install opentelemetry-sdk
opentelemetry-exporter-otlp-proto-http`). Set without the packages, the start stops with one line
naming the variable (exit 2). A provider of the app's own, never the global one. Span names and
attributes follow the GenAI semantic conventions; no message text or user id is ever one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from agents.tracing import Attributes, Span, Tracer, Untraced
from bot.settings import SettingsError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span as OtelSpan

INSTALL = "pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http"


class _SpanHandle:
    def __init__(self, span: OtelSpan) -> None:
        self._span = span

    def set(self, key: str, value: str | int) -> None:
        self._span.set_attribute(key, value)


class OtelTracer:
    """Spans on `provider`; the current span (a contextvar) is the parent, across awaits."""

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer("switchboard")

    @contextlib.contextmanager
    def span(self, name: str, attributes: Attributes) -> Iterator[Span]:
        from opentelemetry.trace import Status, StatusCode

        # Exceptions are not recorded: their messages may quote a provider's text.
        with self._tracer.start_as_current_span(
            name, attributes=dict(attributes), record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield _SpanHandle(span)
            except Exception as exc:
                kind = type(exc).__name__
                span.set_attribute("error.type", getattr(exc, "kind", None) or kind)
                span.set_status(Status(StatusCode.ERROR, kind))
                raise


@contextlib.asynccontextmanager
async def open_tracing(endpoint: str | None) -> AsyncIterator[Tracer]:
    """`Untraced` without an endpoint; else an OTLP exporter, flushed and shut down at the end."""
    if endpoint is None:
        yield Untraced()
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise SettingsError(
            f"OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed ({INSTALL})"
        ) from None
    provider = TracerProvider(resource=Resource.create({"service.name": "switchboard"}))
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    try:
        yield OtelTracer(provider)
    finally:
        await asyncio.to_thread(provider.shutdown)  # flushes over the network: off the loop
