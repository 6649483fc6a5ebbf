"""Transcript-style assertions for runner events, like ADK's `simplify_events` tests.

    assert transcript(events) == [
        ("user", "tell me a joke about python"),
        ("manager", "call transfer_to_agent(agent_name='funny_nerd')"),
        ("manager", "-> funny_nerd"),
        ("funny_nerd", "call tell_joke(topic='python')"),
        ("funny_nerd", Contains("tell_joke ->")),
        ("funny_nerd", Contains("Python")),
    ]

Partial (streamed) events are left out; a tool call is one line per call; a transfer result is
"-> agent"; other tool results are "name -> <compact JSON>"; a final error is "error:<kind> text".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from storage.types import Event


class Contains:
    """Matches any string containing `part` (use inside expected transcripts)."""

    def __init__(self, part: str) -> None:
        self.part = part

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.part in other

    def __hash__(self) -> int:
        return hash(self.part)

    def __repr__(self) -> str:
        return f"Contains({self.part!r})"


class Matches:
    """Matches any string the regular expression `pattern` finds something in."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern, re.S)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.pattern.search(other) is not None

    def __hash__(self) -> int:
        return hash(self.pattern.pattern)

    def __repr__(self) -> str:
        return f"Matches({self.pattern.pattern!r})"


def transcript(events: Iterable[Event]) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for event in events:
        if event.partial:
            continue
        lines.extend((event.author, line) for line in _lines(event))
    return lines


def _lines(event: Event) -> list[str]:
    content = event.content
    if "tool_calls" in content:
        out = [content["text"]] if content.get("text") else []
        for c in content["tool_calls"]:
            args = ", ".join(f"{k}={v!r}" for k, v in (c.get("arguments") or {}).items())
            out.append(f"call {c['name']}({args})")
        return out
    if "tool_result" in content:
        result = content["tool_result"]
        if event.actions.transfer_to_agent:
            return [f"-> {event.actions.transfer_to_agent}"]
        return [f"{result['name']} -> {_compact(result.get('result'))}"]
    if event.error:
        return [f"error:{event.error} {event.text}"]
    return [event.text]


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def final_text(events: Iterable[Event]) -> str:
    finals = [e for e in events if e.final]
    assert len(finals) == 1, f"expected exactly one final event, got {len(finals)}"
    return finals[0].text
