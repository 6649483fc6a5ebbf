"""Optional tracing (bot/tracing.py): a turn through the real composition root, its spans caught
by the OpenTelemetry SDK's in-memory exporter. The GenAI span tree, and nothing private in it."""

from __future__ import annotations

import sys

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot.app import open_app
from bot.settings import Settings, SettingsError
from bot.tracing import OtelTracer, open_tracing
from testkit.emulators.llm import LLMEmulator, Say, call

from .conftest import incoming, make_settings

TEXT = "What is AAPL at? My secret is hunter2"
ANSWER = "Quotes are unavailable right now."
USER = "4242"


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def test_a_turn_is_a_span_with_model_tool_and_handover_children(db_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with LLMEmulator() as llm:
        llm.script(
            Say(tool_calls=[call("transfer_to_agent", agent_name="stock_analyst")]),
            # The lookup fails: nothing listens on QUOTES_BASE_URL.
            Say(tool_calls=[call("get_quote", symbol="AAPL")], prompt_tokens=30),
            Say(ANSWER, completion_tokens=9),
        )
        settings = make_settings(
            db_url,
            OPENAI_API_KEY="sk-trace-test",
            LLM_BASE_URL=llm.base_url,
            LLM_MODEL="t/m",
            MEMORY_EXTRACTION="tools",  # one turn's calls traced, no extraction after it
        )
        async with open_app(settings, tracer=OtelTracer(provider)) as app:
            replies = [r async for r in app.core.handle(incoming(TEXT, user=USER))]
        assert replies[-1].text == ANSWER and not llm.unexpected
    spans = list(exporter.get_finished_spans())
    [turn] = [s for s in spans if s.name == "turn"]
    assert turn.parent is None
    assert turn.attributes is not None and turn.attributes["switchboard.platform"] == "telegram"
    children = _children(spans, turn)
    assert len(children) == len(spans) - 1  # every other span hangs off the turn
    chats = [s for s in children if s.name.startswith("chat ")]
    tools = [s for s in children if s.name.startswith("execute_tool ")]
    handovers = [s for s in children if s.name.startswith("invoke_agent ")]
    assert [c.name for c in chats] == ["chat t/m"] * 3
    assert [t.name for t in tools] == ["execute_tool transfer_to_agent", "execute_tool get_quote"]
    assert [h.name for h in handovers] == ["invoke_agent stock_analyst"]
    for chat in chats:
        attrs = dict(chat.attributes or {})
        assert attrs["gen_ai.operation.name"] == "chat"
        assert chat.name == f"chat {attrs['gen_ai.request.model']}"
        assert attrs["gen_ai.agent.name"]
    usage = [
        (c.attributes or {}).get(k)
        for c in chats
        for k in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")
    ]
    assert usage == [11, 7, 30, 7, 11, 9]
    agents = [(c.attributes or {})["gen_ai.agent.name"] for c in chats]
    assert agents[0] != "stock_analyst" and agents[1:] == ["stock_analyst"] * 2
    for tool in tools:
        attrs = dict(tool.attributes or {})
        assert attrs["gen_ai.operation.name"] == "execute_tool"
        assert tool.name == f"execute_tool {attrs['gen_ai.tool.name']}"
    user_id = await _our_user_id(db_url)
    for span in spans:
        for value in (span.name, *(span.attributes or {}).values()):
            text = str(value)
            assert "hunter2" not in text and "AAPL" not in text and "unavailable" not in text
            assert USER not in text and user_id not in text
        assert not span.events  # no recorded exceptions or messages


async def _our_user_id(db_url: str) -> str:
    async with open_app(make_settings(db_url)) as app:
        user_id = await app.store.find_user("telegram", USER)
    assert user_id is not None
    return user_id


def test_a_malformed_endpoint_is_a_settings_error_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, dotenv_path=None)
    unset = Settings.from_env({}, dotenv_path=None)
    assert unset.otel_endpoint is None


async def test_the_endpoint_without_the_package_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An uninstalled package: importing it raises ImportError.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(SettingsError, match=r"OTEL_EXPORTER_OTLP_ENDPOINT.*pip install"):
        async with open_tracing("http://127.0.0.1:4318"):
            pass


async def test_without_the_endpoint_nothing_is_traced() -> None:
    async with open_tracing(None) as tracer:
        with tracer.span("turn", {}) as span:
            span.set("gen_ai.agent.name", "manager")
