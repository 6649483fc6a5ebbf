"""The OpenAI-compatible model client (OpenRouter by default; OpenAI, Ollama, vLLM by base URL).

Retries are ours, not the SDK's (it gets max_retries=0): we retry only what is worth retrying
(429, 408, 5xx, connection errors and timeouts), never a 402 (out of credits) or another 4xx,
never after part of an answer has been streamed, and with short waits that honour Retry-After.
The SDK's own defaults (600 s per attempt, 2 retries) are far too long for chat.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from typing import Any

import openai

from agents.model import ModelChunk, ModelError, ModelRequest, ModelResponse, TextDelta, ToolCall
from storage.types import TokenUsage

log = logging.getLogger(__name__)

# OpenRouter's optional app attribution headers (https://openrouter.ai/docs/app-attribution).
ATTRIBUTION_HEADERS = {
    "HTTP-Referer": "https://github.com/switchboard-bot/switchboard",
    "X-Title": "Switchboard",
}
MAX_RETRY_WAIT = 10.0  # a Retry-After longer than this is not worth keeping a chat waiting
# Bounds what one model call may cost (and how long it may stream); LLM_MAX_TOKENS sets it.
DEFAULT_MAX_TOKENS = 1024


class OpenAIModel:
    """`ModelClient` on `openai.AsyncOpenAI`. Streams by default (token deltas → partial events)."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        model: str,
        timeout: float = 30.0,
        max_retries: int = 2,
        stream: bool = True,
        backoff: float = 0.5,
        fallback_models: tuple[str, ...] = (),
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=0,
            default_headers=ATTRIBUTION_HEADERS,
        )
        self._model = self.model = model
        self._max_retries = max_retries
        self._stream = stream
        self._backoff = backoff
        self._fallbacks = fallback_models
        self._max_tokens = max_tokens
        fallbacks = f" (fallbacks: {', '.join(fallback_models)})" if fallback_models else ""
        self.description = f"LLM {model} at {base_url}{fallbacks}"

    async def aclose(self) -> None:
        await self._client.close()

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelChunk, None]:
        """With retries; when the model stays unavailable (502/503, as OpenRouter answers for a
        model that is down) and nothing was shown yet, the next fallback model is tried."""
        models = [request.model or self._model, *self._fallbacks]
        for index, model in enumerate(models):
            streamed = False
            try:
                async for chunk in self._with_retries(replace(request, model=model)):
                    streamed = streamed or isinstance(chunk, TextDelta)
                    yield chunk
                return
            except ModelError as exc:
                last = index == len(models) - 1
                if last or streamed or exc.status not in (502, 503):
                    raise
                log.warning(
                    "model %s unavailable (%s); trying %s", model, exc.status, models[index + 1]
                )

    async def _with_retries(self, request: ModelRequest) -> AsyncGenerator[ModelChunk, None]:
        attempt = 0
        while True:
            streamed = False
            try:
                if self._stream:
                    async for chunk in self._stream_once(request):
                        streamed = streamed or isinstance(chunk, TextDelta)
                        yield chunk
                else:
                    yield await self._complete_once(request)
                return
            except ModelError as exc:
                wait = self._retry_wait(exc, attempt, streamed)
                if wait is None:
                    log.warning(
                        "model call failed (%s, status %s): %s", exc.kind, exc.status, exc.detail
                    )
                    raise
                attempt += 1
                log.info("model call failed (%s); retry %d in %.2fs", exc.kind, attempt, wait)
                await asyncio.sleep(wait)

    def _retry_wait(self, exc: ModelError, attempt: int, streamed: bool) -> float | None:
        retryable = exc.kind in ("rate_limited", "unavailable", "timeout")
        if streamed or not retryable or attempt >= self._max_retries:
            return None
        if exc.retry_after is not None:
            return exc.retry_after if exc.retry_after <= MAX_RETRY_WAIT else None
        return min(self._backoff * 2**attempt, 4.0) * (1 - 0.25 * random.random())

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}, *map(dict, request.messages)]
        params: dict[str, Any] = {
            "model": request.model or self._model,
            "messages": messages,
            "max_tokens": self._max_tokens,
        }
        if request.tools:
            params["tools"] = [dict(t) for t in request.tools]
        return params

    async def _complete_once(self, request: ModelRequest) -> ModelResponse:
        try:
            response = await self._client.chat.completions.create(**self._params(request))
        except openai.APIError as exc:
            raise _translate(exc) from None
        if not response.choices:
            raise ModelError("unavailable", "no choices in the response")
        message = response.choices[0].message
        calls = tuple(
            _tool_call(c.id, c.function.name, c.function.arguments)
            for c in (message.tool_calls or [])
            if getattr(c, "function", None) is not None
        )
        return ModelResponse(
            text=message.content or "",
            tool_calls=calls,
            usage=_usage(response.usage),
            model=response.model,
        )

    async def _stream_once(self, request: ModelRequest) -> AsyncGenerator[ModelChunk, None]:
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage: TokenUsage | None = None
        finished = False
        model_name: str | None = None
        try:
            # The SDK's public `post` with `cast_to=object`: the same request, retries, auth,
            # headers and error handling as `chat.completions.create`, but chunks arrive as
            # plain JSON. The typed path walked every message through the SDK's TypedDict
            # transform and built pydantic models per chunk: over a third of the bot's CPU for
            # a turn with a real model (bench/e2e.py's LLM rows, py-spy).
            stream = await self._client.post(
                "/chat/completions",
                body={
                    **self._params(request),
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
                cast_to=object,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
            async for chunk in stream:
                if not isinstance(chunk, Mapping):
                    continue
                model_name = model_name or chunk.get("model")
                usage = _usage(chunk.get("usage")) or usage
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    content = delta.get("content")
                    if content:
                        text.append(content)
                        yield TextDelta(content)
                    for call in delta.get("tool_calls") or ():
                        slot = calls.setdefault(
                            call.get("index", 0), {"id": "", "name": "", "args": ""}
                        )
                        slot["id"] = call.get("id") or slot["id"]
                        function = call.get("function") or {}
                        slot["name"] += function.get("name") or ""
                        slot["args"] += function.get("arguments") or ""
                    finished = finished or choice.get("finish_reason") is not None
        except openai.APIConnectionError as exc:
            if text:  # the user already saw the start of the answer: say it was cut off
                raise ModelError("cut_off", "the connection dropped mid-answer") from None
            raise _translate(exc) from None
        except openai.APIError as exc:
            raise _translate(exc) from None
        if not finished:
            # The connection ended without a finish_reason: the answer is incomplete.
            raise ModelError("cut_off", "stream ended before the answer finished")
        yield ModelResponse(
            text="".join(text),
            tool_calls=tuple(
                _tool_call(c["id"] or f"call_{i}", c["name"], c["args"])
                for i, c in sorted(calls.items())
            ),
            usage=usage,
            model=model_name,
        )


def _tool_call(call_id: str, name: str, raw: str | None) -> ToolCall:
    try:
        arguments = json.loads(raw) if raw and raw.strip() else {}
    except ValueError:
        arguments = None
    if arguments is None and raw is not None and raw.strip() == "null":
        arguments = {}  # some servers send "null" for a call without arguments
    if not isinstance(arguments, dict):
        return ToolCall(call_id, name, {}, raw_arguments=raw or "")
    return ToolCall(call_id, name, arguments)


def _usage(usage: Any) -> TokenUsage | None:
    """Token usage from the SDK's response object or a streamed chunk's plain JSON."""
    if not usage:
        return None
    get = usage.get if isinstance(usage, Mapping) else lambda name: getattr(usage, name, 0)
    return TokenUsage(
        prompt_tokens=int(get("prompt_tokens") or 0),
        completion_tokens=int(get("completion_tokens") or 0),
    )


def _translate(exc: openai.APIError) -> ModelError:
    """SDK exception → ModelError with a kind the runner can explain."""
    if isinstance(exc, openai.APITimeoutError):
        return ModelError("timeout", "request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ModelError("unavailable", "connection error")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return ModelError(
            _kind_for_status(status),
            exc.message[:200],
            status=status,
            retry_after=_retry_after(exc.response.headers),
        )
    # An error reported inside an SSE stream (after a 200): look at its code.
    body = exc.body if isinstance(exc.body, Mapping) else {}
    code = body.get("code")
    in_stream = code if isinstance(code, int) else None
    kind = _kind_for_status(in_stream) if in_stream else "unavailable"
    return ModelError(kind, f"error inside the stream: {exc.message[:200]}", status=in_stream)


def _kind_for_status(status: int) -> str:
    if status == 402:
        return "out_of_credits"
    if status == 429:
        return "rate_limited"
    if status == 408:
        return "timeout"
    if status in (401, 403):
        return "auth"
    if 400 <= status < 500:
        return "bad_request"
    return "unavailable"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None
