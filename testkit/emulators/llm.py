"""An OpenAI-compatible chat completions emulator on 127.0.0.1, scripted per test.

`POST /v1/chat/completions` answers with the next scripted step: `Say` (text and/or tool calls,
as a JSON completion or, for `stream=True`, as SSE chunks ending with `data: [DONE]`), `Fail`
(an HTTP error in OpenRouter's shape, e.g. 429 / 500 / 402), `Hang` (never answers: the client's
timeout must fire), `CutStream` (streams some text, then drops the connection) or `StreamError`
(streams some text, then an error object inside the stream, as OpenRouter does after a 200).
A step may also be a function of the request body returning a step (for routing by agent).
Every request is recorded in `requests`; a request with no step left gets a 400 and is listed
in `unexpected`, so a test fails loudly instead of hanging.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web


def call(tool: str, /, **arguments: Any) -> dict[str, Any]:
    """A tool call for `Say(tool_calls=[...])`."""
    return {"name": tool, "arguments": arguments}


@dataclass(frozen=True)
class Say:
    text: str = ""
    tool_calls: tuple[Mapping[str, Any], ...] | list[Mapping[str, Any]] = ()
    prompt_tokens: int = 11
    completion_tokens: int = 7
    raw_arguments: str | None = None  # send this string as every call's arguments (bad JSON)


@dataclass(frozen=True)
class Fail:
    status: int
    message: str = "emulated failure"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hang:
    pass


@dataclass(frozen=True)
class CutStream:
    text: str = "Here is the begin"


@dataclass(frozen=True)
class StreamError:
    text: str = "Partial"
    message: str = "Provider returned error"
    code: int = 502


Step = Say | Fail | Hang | CutStream | StreamError
Script = Step | Callable[[dict[str, Any]], Step]


@dataclass
class Request:
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def system(self) -> str:
        first = self.body["messages"][0]
        return str(first["content"]) if first.get("role") == "system" else ""

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.body.get("tools", [])]

    @property
    def last_user_text(self) -> str:
        users = [m for m in self.body["messages"] if m.get("role") == "user"]
        return str(users[-1]["content"]) if users else ""


class LLMEmulator:
    """`async with LLMEmulator() as llm:` then `llm.script(...)`; base URL in `llm.base_url`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.unexpected: list[Request] = []
        self._steps: deque[Script] = deque()
        self._ids = itertools.count(1)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def script(self, *steps: Script) -> None:
        self._steps.extend(steps)

    @property
    def remaining(self) -> int:
        return len(self._steps)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        recorded = Request(body, dict(request.headers))
        self.requests.append(recorded)
        if not self._steps:
            self.unexpected.append(recorded)
            return _error(400, "emulator: no scripted step left for this request")
        step = self._steps.popleft()
        if callable(step):
            step = step(body)
        if isinstance(step, Fail):
            return _error(step.status, step.message, step.headers)
        if isinstance(step, Hang):
            await self._closing.wait()
            return _error(504, "emulator closing")
        model = str(body.get("model", "emulated-model"))
        if body.get("stream"):
            return await self._stream(request, body, step, model)
        if not isinstance(step, Say):
            return _error(400, f"emulator: {type(step).__name__} needs stream=True")
        return web.json_response(self._completion(step, model))

    def _completion(self, say: Say, model: str) -> dict[str, Any]:
        calls = self._calls(say)
        message: dict[str, Any] = {"role": "assistant", "content": say.text or None}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
            ],
            "usage": _usage(say),
        }

    def _calls(self, say: Say) -> list[dict[str, Any]]:
        return [
            {
                "id": f"call_{next(self._ids)}",
                "type": "function",
                "function": {
                    "name": c["name"],
                    "arguments": say.raw_arguments
                    if say.raw_arguments is not None
                    else json.dumps(c.get("arguments", {})),
                },
            }
            for c in say.tool_calls
        ]

    async def _stream(
        self, request: web.Request, body: dict[str, Any], step: Step, model: str
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk_id = f"chatcmpl-{next(self._ids)}"

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            data = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": choices,
                **extra,
            }
            await response.write(f"data: {json.dumps(data)}\n\n".encode())

        text = step.text if isinstance(step, Say | CutStream | StreamError) else ""
        for piece in _pieces(text):
            await send([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        if isinstance(step, CutStream):
            # Drop the connection mid-answer: no finish_reason, no [DONE], no clean end.
            assert request.transport is not None
            request.transport.close()
            return response
        if isinstance(step, StreamError):
            error = {"error": {"message": step.message, "code": step.code}}
            await response.write(f"data: {json.dumps(error)}\n\n".encode())
            await response.write_eof()
            return response
        assert isinstance(step, Say)
        calls = self._calls(step)
        for index, c in enumerate(calls):
            head = {
                "index": index,
                "id": c["id"],
                "type": "function",
                "function": {"name": c["function"]["name"], "arguments": ""},
            }
            await send([{"index": 0, "delta": {"tool_calls": [head]}, "finish_reason": None}])
            for piece in _pieces(c["function"]["arguments"], size=8):
                part = {"index": index, "function": {"arguments": piece}}
                await send([{"index": 0, "delta": {"tool_calls": [part]}, "finish_reason": None}])
        finish = "tool_calls" if calls else "stop"
        await send([{"index": 0, "delta": {}, "finish_reason": finish}])
        if (body.get("stream_options") or {}).get("include_usage"):
            await send([], usage=_usage(step))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _pieces(text: str, size: int = 6) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _usage(say: Say) -> dict[str, int]:
    return {
        "prompt_tokens": say.prompt_tokens,
        "completion_tokens": say.completion_tokens,
        "total_tokens": say.prompt_tokens + say.completion_tokens,
    }


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "code": status}}
    return web.json_response(body, status=status, headers=dict(headers or {}))
