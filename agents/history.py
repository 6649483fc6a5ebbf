"""Stored events → OpenAI-style chat messages, for replaying a session's history to a model.

The history window can cut a tool call from its result (or a crash can leave a call without
one). Chat APIs reject both shapes, so a tool result whose call is not in view is dropped, and
so is a tool call whose result is missing; the rest of the conversation is kept.

A compaction summary (agents/compaction.py) becomes one system message in its place: a turn loads
it first, then the events after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from agents.model import Message
from storage.types import SUMMARY_AUTHOR, Event

SUMMARY_INTRO = "Summary of the earlier conversation: "


def tool_call_content(calls: Iterable[Any], text: str = "") -> dict[str, Any]:
    """Event content for a model's tool calls (see storage.types.Event)."""
    content: dict[str, Any] = {
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": dict(c.arguments)}
            | ({"raw_arguments": c.raw_arguments[:2000]} if c.raw_arguments is not None else {})
            for c in calls
        ]
    }
    if text:
        content["text"] = text
    return content


def to_messages(
    events: Iterable[Event], memo: dict[str, dict[str, Any] | None] | None = None
) -> tuple[Message, ...]:
    """`memo` (event id -> message) lets a caller that converts a growing list of events
    several times (a turn calls the model once per step) convert each event only once."""
    messages: list[dict[str, Any]] = []
    for event in events:
        if memo is None:
            message = _message(event)
        elif event.id in memo:
            message = memo[event.id]
        else:
            message = memo[event.id] = _message(event)
        if message is not None:
            messages.append(message)
    return tuple(_pair_tool_messages(messages))


def _message(event: Event) -> dict[str, Any] | None:
    if event.partial or event.error:
        # Honest failure notes are for the user, not context the model should build on.
        return None
    content = event.content
    if event.author == SUMMARY_AUTHOR:
        return {"role": "system", "content": SUMMARY_INTRO + str(content.get("summary", ""))}
    if "tool_calls" in content:
        return {
            "role": "assistant",
            "content": content.get("text") or None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {
                        "name": call["name"],
                        "arguments": json.dumps(call.get("arguments") or {}),
                    },
                }
                for call in content["tool_calls"]
            ],
        }
    if "tool_result" in content:
        result = content["tool_result"]
        return {
            "role": "tool",
            "tool_call_id": result["id"],
            "content": json.dumps(result.get("result"), ensure_ascii=False, default=str),
        }
    if not event.text:
        return None
    return {"role": "user" if event.author == "user" else "assistant", "content": event.text}


def _pair_tool_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results directly follow their call message; pair them within that group only (some
    servers reuse ids like "call_0" across turns)."""
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(messages):
        message = messages[i]
        i += 1
        if message["role"] == "tool":
            continue  # an orphan: its call is outside the window (or was never stored)
        calls = message.get("tool_calls")
        if calls is None:
            out.append(message)
            continue
        results = []
        while i < len(messages) and messages[i]["role"] == "tool":
            results.append(messages[i])
            i += 1
        answered = {r["tool_call_id"] for r in results}
        kept = [c for c in calls if c["id"] in answered]
        ids = {c["id"] for c in kept}
        if kept:
            out.append({**message, "tool_calls": kept})
            out.extend(r for r in results if r["tool_call_id"] in ids)
        elif message.get("content"):
            out.append({"role": "assistant", "content": message["content"]})
    return out
