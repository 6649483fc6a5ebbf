"""Replaying stored events to a model: shapes, and pairs cut by the history window."""

from __future__ import annotations

from agents.history import to_messages
from storage.types import Event


def calls(*ids: str) -> dict[str, object]:
    return {
        "tool_calls": [{"id": i, "name": "tell_joke", "arguments": {"topic": "x"}} for i in ids]
    }


def result(call_id: str) -> dict[str, object]:
    return {"tool_result": {"id": call_id, "name": "tell_joke", "result": {"joke": "j"}}}


def test_events_become_chat_messages() -> None:
    events = [
        Event("user", {"text": "hi"}),
        Event("funny_nerd", calls("c1")),
        Event("funny_nerd", result("c1")),
        Event("funny_nerd", {"text": "ha"}),
        Event("manager", {"text": "The AI service is busy"}, error="rate_limited"),
    ]
    assert to_messages(events) == (
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "tell_joke", "arguments": '{"topic": "x"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"joke": "j"}'},
        {"role": "assistant", "content": "ha"},
    )


def test_a_leading_orphan_result_and_an_unanswered_call_are_dropped() -> None:
    events = [
        Event("funny_nerd", result("c0")),  # its call fell out of the window
        Event("funny_nerd", {"text": "ha"}),
        Event("user", {"text": "again"}),
        Event("funny_nerd", {**calls("c1", "c2"), "text": "let me see"}),
        Event("funny_nerd", result("c2")),
        Event("user", {"text": "and?"}),
        Event("manager", calls("c3")),  # a crash before its result was stored
    ]
    messages = to_messages(events)
    assert [m["role"] for m in messages] == ["assistant", "user", "assistant", "tool", "user"]
    assert [c["id"] for c in messages[2]["tool_calls"]] == ["c2"]


def test_reused_call_ids_pair_within_their_turn_only() -> None:
    events = [
        Event("manager", calls("call_0")),
        Event("manager", result("call_0")),
        Event("user", {"text": "next"}),
        Event("manager", calls("call_0")),  # same id, no result of its own
    ]
    assert [m["role"] for m in to_messages(events)] == ["assistant", "tool", "user"]
