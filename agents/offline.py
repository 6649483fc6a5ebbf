"""The offline model: a real mode for running the bot with no LLM key and no network.

It reads intent deterministically (agents/intents.py) and answers the way the real model is
instructed to: the manager calls `set_user_name` and `transfer_to_agent`, the specialists call
their tools, and once the tool results are in it writes a friendly answer from them. So every
flow (delegation events, state deltas, quotes from the provider) is the same as with an LLM.
Answers are streamed a few words at a time, like a real model's, so partial events work too.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from typing import Any

from agents.agent import TRANSFER_TOOL, transfer_targets
from agents.intents import Intent, read_intent
from agents.model import Message, ModelChunk, ModelRequest, ModelResponse, TextDelta, ToolCall
from agents.offline_memory import TELLS_MEMORIES, memory_answer, memory_calls
from agents.replies import compose_results, small_talk
from agents.schedule_intents import PRIVATE_TOOLS, SCHEDULE_TOOLS, read_schedule_intent

# Streamed a few words per delta, like a real model's tokens, but not a partial event per word:
# each one passes through the runner, the core and the adapter, and an instant answer is never
# shown while it streams anyway.
WORDS_PER_DELTA = 3
ROUTES = {
    "joke": "funny_nerd",
    "fact": "funny_nerd",
    "quote": "stock_analyst",
    "chart": "stock_analyst",
    "watch_add": "stock_analyst",
    "watch_remove": "stock_analyst",
    "watch_show": "stock_analyst",
    "watch_quotes": "stock_analyst",
    "alert_set": "stock_analyst",
    "alert_list": "stock_analyst",
    "alert_remove": "stock_analyst",
}


class OfflineModel:
    description = "offline model (no LLM key: built-in intent routing, no network)"
    model = "offline"
    judges_privacy = True  # every answer says whether it tells the user's data back

    async def aclose(self) -> None:
        return None

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelChunk, None]:
        response = respond(request)
        # A private answer is not streamed: a preview would show it where the final never goes.
        words = [] if response.private else re.findall(r"\S+\s*|\s+", response.text)
        for start in range(0, len(words), WORDS_PER_DELTA):
            yield TextDelta("".join(words[start : start + WORDS_PER_DELTA]))
        yield replace(response, private=bool(response.private))  # it judges every answer


def respond(request: ModelRequest) -> ModelResponse:
    user_text, results = _this_turn(request.messages)
    intent = read_schedule_intent(user_text) or _with_follow_up(
        read_intent(user_text), user_text, request.messages
    )
    tools = {_tool_name(t) for t in request.tools}
    asked = {name for name, _ in results}
    calls = _plan(intent, tools, asked, request)
    if calls:
        return ModelResponse(tool_calls=tuple(calls), model="offline")
    own = [(name, result) for name, result in results if name in tools or name == "set_user_name"]
    recalled = memory_answer(intent, tools, request.messages, request.state, results)
    if recalled is not None and intent.kind in TELLS_MEMORIES:
        return ModelResponse(text=recalled, model="offline", private=True)
    if recalled is not None:
        text = recalled
    elif own:
        text = compose_results(own, request.state)
        if any(name in PRIVATE_TOOLS for name, _ in own):  # the user's alerts or reminders
            return ModelResponse(text=text, model="offline", private=True)
    elif intent.kind in ("watch_add", "watch_remove") and "watchlist_add" in tools:
        verb, where = ("add", "to") if intent.kind == "watch_add" else ("remove", "from")
        text = f'Which ticker should I {verb}? For example: "{verb} AAPL {where} my watchlist".'
    else:
        text = small_talk(user_text, request.state, tools)
    return ModelResponse(text=text, model="offline")


def _plan(
    intent: Intent, tools: set[str], asked: set[str], request: ModelRequest
) -> list[ToolCall]:
    """The tool calls to make now (none once this agent's tools have answered)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    if asked & (tools - {TRANSFER_TOOL, "set_user_name"}):
        return []
    if intent.name and "set_user_name" in tools and "set_user_name" not in asked:
        calls.append(("set_user_name", {"name": intent.name}))
    target = ROUTES.get(intent.kind)
    can_transfer = TRANSFER_TOOL in tools and TRANSFER_TOOL not in asked
    if can_transfer and target in transfer_targets(request.tools) and target != request.agent_name:
        calls.append((TRANSFER_TOOL, {"agent_name": target}))
    calls.extend(_specialist_calls(intent, tools))
    calls.extend(memory_calls(intent, tools, request.messages, asked))
    return [
        ToolCall(id=f"call_{uuid.uuid4().hex[:16]}", name=name, arguments=args)
        for name, args in calls
    ]


def _specialist_calls(intent: Intent, tools: set[str]) -> list[tuple[str, dict[str, Any]]]:
    topic = {"topic": intent.topic} if intent.topic else {}
    if SCHEDULE_TOOLS.get(intent.kind) in tools:  # alerts (the analyst), reminders (manager)
        return [(SCHEDULE_TOOLS[intent.kind], dict(intent.arguments))]
    if intent.kind == "joke" and "tell_joke" in tools:
        return [("tell_joke", topic)]
    if intent.kind == "fact" and "nerd_fact" in tools:
        return [("nerd_fact", topic)]
    if intent.kind == "watch_add" and "watchlist_add" in tools and intent.symbols:
        return [("watchlist_add", {"symbols": list(intent.symbols)})]
    if intent.kind == "watch_remove" and "watchlist_remove" in tools and intent.symbols:
        return [("watchlist_remove", {"symbols": list(intent.symbols)})]
    if intent.kind == "watch_show" and "watchlist_show" in tools:
        return [("watchlist_show", {})]
    if intent.kind == "watch_quotes" and "watchlist_quotes" in tools:
        return [("watchlist_quotes", {})]
    if intent.kind == "chart" and "show_chart" in tools:
        return [("show_chart", {"symbol": intent.symbols[0], "range": intent.range or "1mo"})]
    if intent.kind == "quote" and "get_quote" in tools:
        return [("get_quote", {"symbol": s}) for s in intent.symbols[:5]]
    return []


_FOLLOW_UP = re.compile(r"^\W*(another( one)?|one more|more|again|and another)\b", re.I)


def _with_follow_up(intent: Intent, text: str, messages: tuple[Message, ...]) -> Intent:
    """ "another one" / "one more" repeats what the user asked for last (a joke, a fact...)."""
    if intent.kind != "chat" or not _FOLLOW_UP.search(text):
        return intent
    earlier = [str(m.get("content") or "") for m in messages if m.get("role") == "user"][:-1]
    for previous in reversed(earlier):
        before = read_intent(previous)
        if before.kind in ("joke", "fact", "quote", "watch_quotes"):
            return Intent(before.kind, symbols=before.symbols, name=intent.name)
        if before.kind != "chat":
            break
    return intent


def _this_turn(messages: tuple[Message, ...]) -> tuple[str, list[tuple[str, Any]]]:
    """The last user message, and the (tool name, result) pairs that came after it."""
    start = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    user_text = str(messages[start].get("content") or "") if start >= 0 else ""
    names: dict[str, str] = {}
    results: list[tuple[str, Any]] = []
    for message in messages[start + 1 :]:
        for call in message.get("tool_calls") or []:
            names[call["id"]] = call["function"]["name"]
        if message.get("role") == "tool":
            name = names.get(str(message.get("tool_call_id")), "")
            results.append((name, _decode(message.get("content"))))
    return user_text, results


def _decode(content: Any) -> Any:
    try:
        return json.loads(content) if isinstance(content, str) else content
    except ValueError:
        return content


def _tool_name(schema: Mapping[str, Any]) -> str:
    return str(schema.get("function", {}).get("name", ""))
