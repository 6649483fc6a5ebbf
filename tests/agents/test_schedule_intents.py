"""The offline model's reading of alert and reminder requests (agents/schedule_intents.py):
what it takes, with which arguments, and what it leaves to the other intents."""

from __future__ import annotations

import pytest

from agents.schedule_intents import read_schedule_intent


@pytest.mark.parametrize(
    ("text", "kind", "arguments"),
    [
        (
            "tell me when TSLA drops below 150",
            "alert_set",
            {"symbol": "TSLA", "condition": "below", "value": 150.0},
        ),
        (
            "alert me if AAPL goes above 200",
            "alert_set",
            {"symbol": "AAPL", "condition": "above", "value": 200.0},
        ),
        (
            "let me know when tesla falls under $150.5",
            "alert_set",
            {"symbol": "TSLA", "condition": "below", "value": 150.5},
        ),
        (
            "notify me if NVDA moves 5%",
            "alert_set",
            {"symbol": "NVDA", "condition": "move", "value": 5.0},
        ),
        (
            "remind me in 10 minutes to stretch",
            "remind_set",
            {"when": "in 10 minutes", "text": "stretch"},
        ),
        (
            "remind me tomorrow at 9 to call mom",
            "remind_set",
            {"when": "tomorrow at 9", "text": "call mom"},
        ),
        (
            "Remind me to water the plants at 18:30.",
            "remind_set",
            {"when": "at 18:30", "text": "water the plants"},
        ),
        ("show my alerts", "alert_list", {}),
        ("what reminders do I have?", "remind_list", {}),
        ("remove alert 2", "alert_remove", {"number": 2}),
        ("delete reminder #1", "remind_remove", {"number": 1}),
    ],
)
def test_requests_are_read_with_their_arguments(
    text: str, kind: str, arguments: dict[str, object]
) -> None:
    intent = read_schedule_intent(text)
    assert intent is not None
    assert (intent.kind, dict(intent.arguments)) == (kind, arguments)


@pytest.mark.parametrize(
    "text",
    [
        "tell me a joke about python",
        "add TSLA to my watchlist",
        "how is my watchlist doing?",
        "let me know if you can help",
        "tell me when you are free",  # no ticker, no condition
        "remind me",  # no time
        "remember that I like tea",
        "what's AAPL at?",
    ],
)
def test_other_messages_are_left_to_the_other_intents(text: str) -> None:
    assert read_schedule_intent(text) is None
