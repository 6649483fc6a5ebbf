"""OpenAIModel through the real openai SDK against the chat completions emulator."""

from __future__ import annotations

import pytest

from agents import make_model
from agents.model import ERROR_MESSAGES, ModelError, ModelRequest, ModelResponse, TextDelta
from agents.openai_model import OpenAIModel
from testkit.emulators.llm import CutStream, Fail, Hang, LLMEmulator, Say, StreamError, call
from tests.agents.conftest import make_openai

REQUEST = ModelRequest(
    agent_name="manager",
    system="You are a test.",
    messages=({"role": "user", "content": "hi"},),
    tools=(
        {
            "type": "function",
            "function": {"name": "tell_joke", "parameters": {"type": "object", "properties": {}}},
        },
    ),
)


async def collect(model: OpenAIModel) -> tuple[list[str], ModelResponse]:
    deltas: list[str] = []
    response: ModelResponse | None = None
    async for chunk in model.stream(REQUEST):
        if isinstance(chunk, TextDelta):
            deltas.append(chunk.text)
        else:
            response = chunk
    assert response is not None
    return deltas, response


async def test_streamed_text_arrives_in_deltas_with_usage(
    llm: LLMEmulator, openai_model: OpenAIModel
) -> None:
    llm.script(Say("Hello there, friend!", prompt_tokens=21, completion_tokens=5))
    deltas, response = await collect(openai_model)
    assert len(deltas) > 1 and "".join(deltas) == "Hello there, friend!"
    assert response.text == "Hello there, friend!"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (21, 5)  # type: ignore[union-attr]
    body = llm.requests[0].body
    assert body["stream"] is True and body["model"] == "test/model"
    assert body["messages"][0] == {"role": "system", "content": "You are a test."}
    assert body["tools"][0]["function"]["name"] == "tell_joke"


async def test_streamed_tool_calls_are_reassembled(
    llm: LLMEmulator, openai_model: OpenAIModel
) -> None:
    llm.script(Say(tool_calls=[call("tell_joke", topic="python and rust")]))
    _, response = await collect(openai_model)
    assert [(c.name, dict(c.arguments)) for c in response.tool_calls] == [
        ("tell_joke", {"topic": "python and rust"})
    ]


async def test_non_streaming_mode(llm: LLMEmulator) -> None:
    model = make_openai(llm, stream=False)
    llm.script(Say("plain", tool_calls=[call("tell_joke")], prompt_tokens=3))
    try:
        deltas, response = await collect(model)
    finally:
        await model.aclose()
    assert deltas == [] and response.text == "plain"
    assert response.tool_calls[0].name == "tell_joke" and response.usage.prompt_tokens == 3  # type: ignore[union-attr]
    assert "stream" not in llm.requests[0].body


async def test_bad_json_arguments_are_kept_raw(llm: LLMEmulator, openai_model: OpenAIModel) -> None:
    llm.script(Say(tool_calls=[call("tell_joke")], raw_arguments="{not json"))
    _, response = await collect(openai_model)
    assert response.tool_calls[0].raw_arguments == "{not json"


async def test_attribution_and_auth_headers(llm: LLMEmulator, openai_model: OpenAIModel) -> None:
    llm.script(Say("ok"))
    await collect(openai_model)
    headers = {k.lower(): v for k, v in llm.requests[0].headers.items()}
    assert headers["authorization"] == "Bearer sk-test-secret"
    assert headers["x-title"] == "Switchboard"
    assert headers["http-referer"].startswith("https://")


async def test_429_is_retried_then_succeeds(llm: LLMEmulator, openai_model: OpenAIModel) -> None:
    llm.script(Fail(429, "slow down", headers={"retry-after-ms": "5"}), Say("made it"))
    _, response = await collect(openai_model)
    assert response.text == "made it" and len(llm.requests) == 2


@pytest.mark.parametrize(
    ("status", "kind"), [(429, "rate_limited"), (500, "unavailable"), (503, "unavailable")]
)
async def test_retryable_errors_give_up_after_max_retries(
    llm: LLMEmulator, openai_model: OpenAIModel, status: int, kind: str
) -> None:
    llm.script(*[Fail(status)] * 3)
    with pytest.raises(ModelError) as info:
        await collect(openai_model)
    assert info.value.kind == kind and info.value.status == status
    assert len(llm.requests) == 3  # one call + max_retries=2


@pytest.mark.parametrize(
    ("status", "kind"), [(402, "out_of_credits"), (401, "auth"), (400, "bad_request")]
)
async def test_402_and_other_client_errors_are_not_retried(
    llm: LLMEmulator, openai_model: OpenAIModel, status: int, kind: str
) -> None:
    llm.script(Fail(status, "Insufficient credits"), Say("never sent"))
    with pytest.raises(ModelError) as info:
        await collect(openai_model)
    assert info.value.kind == kind
    assert len(llm.requests) == 1
    assert "credits" in ERROR_MESSAGES[info.value.kind] or kind != "out_of_credits"


async def test_a_hanging_server_times_out(llm: LLMEmulator) -> None:
    model = make_openai(llm, max_retries=1, timeout=0.3)
    llm.script(Hang(), Hang())
    try:
        with pytest.raises(ModelError) as info:
            await collect(model)
    finally:
        await model.aclose()
    assert info.value.kind == "timeout" and len(llm.requests) == 2


async def test_a_stream_cut_mid_answer_is_an_error_and_not_retried(
    llm: LLMEmulator, openai_model: OpenAIModel
) -> None:
    llm.script(CutStream("Once upon a time, a"), Say("not used"))
    deltas: list[str] = []
    with pytest.raises(ModelError) as info:
        async for chunk in openai_model.stream(REQUEST):
            if isinstance(chunk, TextDelta):
                deltas.append(chunk.text)
    assert "".join(deltas) == "Once upon a time, a"
    assert info.value.kind in ("cut_off", "unavailable")
    assert len(llm.requests) == 1  # text was already shown: a retry would repeat it


async def test_an_error_inside_the_stream(llm: LLMEmulator, openai_model: OpenAIModel) -> None:
    llm.script(StreamError("", "Provider returned error", 502), Say("retried fine"))
    _, response = await collect(openai_model)
    # nothing was streamed before the error, so one retry is safe
    assert response.text == "retried fine" and len(llm.requests) == 2


async def test_an_error_inside_the_stream_after_text(
    llm: LLMEmulator, openai_model: OpenAIModel
) -> None:
    llm.script(StreamError("Some words", "Provider returned error", 502))
    with pytest.raises(ModelError) as info:
        await collect(openai_model)
    assert info.value.kind == "unavailable" and len(llm.requests) == 1


async def test_a_model_that_stays_down_falls_back_to_the_next(llm: LLMEmulator) -> None:
    model = make_model("sk-test", llm.base_url, "main/model, backup/model", 1.0, 1)
    assert isinstance(model, OpenAIModel) and "backup/model" in model.description
    fast = {"retry-after-ms": "1"}
    llm.script(Fail(503, headers=fast), Fail(503, headers=fast), Say("from the backup"))
    try:
        _, response = await collect(model)
    finally:
        await model.aclose()
    assert response.text == "from the backup"
    assert [r.body["model"] for r in llm.requests] == ["main/model", "main/model", "backup/model"]


async def test_no_fallback_for_out_of_credits(llm: LLMEmulator) -> None:
    model = make_model("sk-test", llm.base_url, "main/model,backup/model", 1.0, 1)
    llm.script(Fail(402))
    try:
        with pytest.raises(ModelError):
            await collect(model)
    finally:
        await model.aclose()
    assert len(llm.requests) == 1
