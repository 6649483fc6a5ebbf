"""Building a runner on the real team, running one turn to the end, reading what a tool told
the model."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from agents import JokeBook, ModelClient, QuoteProvider, build_team
from agents.charts import Charts
from agents.runner import AfterTurnJob, Runner
from storage import Store
from storage.types import Event

APP = "test-app"


def make_runner(
    store: Store,
    model: ModelClient,
    quotes: QuoteProvider,
    *,
    history_window: int = 20,
    turn_timeout: float = 5.0,
    after_turn: Sequence[AfterTurnJob] = (),
    charts: Charts | None = None,
) -> Runner:
    team = build_team(model, quotes, JokeBook(random.Random(7)), charts)
    return Runner(
        store,
        team,
        app_name=APP,
        history_window=history_window,
        turn_timeout=turn_timeout,
        after_turn=after_turn,
    )


def last_tool_result(body: dict[str, Any]) -> Any:
    """The last tool result in a model request's messages, decoded."""
    return json.loads([m for m in body["messages"] if m["role"] == "tool"][-1]["content"])


async def run(
    runner: Runner,
    text: str,
    *,
    user: str = "u1",
    session: str = "s1",
    invocation_id: str | None = None,
    partials: bool = False,
) -> list[Event]:
    events = [
        event async for event in runner.run_async(user, session, text, invocation_id=invocation_id)
    ]
    return events if partials else [e for e in events if not e.partial]
