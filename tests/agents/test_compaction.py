"""Compaction through the runner: the after-turn job appends a summary once more than `after`
events follow the latest one; the next turns load the summary and the events after it.

With the real openai SDK against the LLM emulator (the LLM summariser), and with the offline
model (the deterministic summariser).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from agents import OfflineModel
from agents.compaction import (
    RETRY_AFTER,
    SUMMARISER_INSTRUCTION,
    Compaction,
    ModelSummariser,
    OfflineSummariser,
)
from agents.history import SUMMARY_INTRO
from agents.model import ModelError
from agents.openai_model import OpenAIModel
from agents.quotes import QuoteProvider
from agents.runner import Runner
from bot.metrics import Metrics
from storage import Store
from storage.types import SUMMARY_AUTHOR, Event
from testkit.emulators.llm import Fail, LLMEmulator, Say
from testkit.helpers import Clock
from tests.agents.runner_helpers import APP, make_runner, run


async def turn(runner: Runner, text: str, inv: str) -> None:
    """One turn, then its after-turn jobs (as the core runs them once the answer went out)."""
    await run(runner, text, invocation_id=inv)
    await runner.after_turn("u1", "s1", inv)


async def loaded(store: Store) -> tuple[Event, ...]:
    session = await store.get_context(APP, "u1", "s1", max_events=100)
    assert session is not None
    return session.events


def summaries(events: tuple[Event, ...]) -> list[Event]:
    return [e for e in events if e.author == SUMMARY_AUTHOR]


def llm_runner(
    store: Store,
    model: OpenAIModel,
    quotes: QuoteProvider,
    after: int = 4,
    clock: Clock | None = None,
) -> Runner:
    job = Compaction(store, ModelSummariser(model), after=after, clock=clock or Clock())
    return make_runner(store, model, quotes, after_turn=[job])


async def test_the_llm_summary_replaces_the_window_and_the_next_turn_loads_it(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    runner = llm_runner(store, openai_model, quotes)
    for i in range(2):
        llm.script(Say(f"answer {i}"))
        await turn(runner, f"question {i}", f"inv{i}")
    assert summaries(await loaded(store)) == []  # 4 events: not past 4 yet
    llm.script(Say("answer 2"), Say("The user asked three questions, all answered."))
    await turn(runner, "question 2", "inv2")
    asked = llm.requests[-1].body
    assert asked["messages"][0] == {"role": "system", "content": SUMMARISER_INSTRUCTION}
    assert "tools" not in asked
    assert "User: question 0" in asked["messages"][1]["content"]
    assert "manager: answer 2" in asked["messages"][1]["content"]
    [summary] = await loaded(store)
    assert summary.id == "inv2:summary" and summary.invocation_id == "inv2"
    assert summary.content == {
        "summary": "The user asked three questions, all answered.",
        "covers": {"first": "inv0:u", "last": "inv2:final", "count": 6},
    }
    llm.script(Say("answer 3"))
    await turn(runner, "question 3", "inv3")
    sent = llm.requests[-1].body["messages"]
    assert sent[1] == {
        "role": "system",
        "content": SUMMARY_INTRO + "The user asked three questions, all answered.",
    }
    assert not any("question 0" in json.dumps(m) for m in sent)  # replaced by the summary
    # The raw events stay: the admin history shows everything.
    history = await store.history(APP, "u1", "s1", limit=50)
    assert [e.text for e in history][:2] == ["question 0", "answer 0"]
    assert len(history) == 9


async def test_between_compactions_each_prompt_extends_the_previous_one(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    runner = llm_runner(store, openai_model, quotes, after=10)
    prompts: list[list[Any]] = []
    for i in range(5):
        llm.script(Say(f"answer {i}"))
        await turn(runner, f"question {i}", f"inv{i}")
        prompts.append(llm.requests[-1].body["messages"])
    for before, after in itertools.pairwise(prompts):
        # Everything but the previous turn's tail (its memory block and message) is kept as
        # it was, byte for byte: no sliding window between compactions.
        kept = before[:-2]
        assert after[: len(kept)] == kept
        assert len(after) > len(before)


async def test_a_failing_summariser_keeps_the_raw_window_and_is_retried(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    clock = Clock()
    runner = llm_runner(store, openai_model, quotes, clock=clock)
    for i in range(2):
        llm.script(Say(f"answer {i}"))
        await turn(runner, f"question {i}", f"inv{i}")
    llm.script(Say("answer 2"), Fail(400, "no"))  # 400: not retried by the client
    await turn(runner, "question 2", "inv2")
    assert summaries(await loaded(store)) == []
    assert len(await loaded(store)) == 6
    llm.script(Say("answer 3"))  # not tried again this soon: the turn's model call only
    await turn(runner, "question 3", "inv3")
    clock.now += RETRY_AFTER
    llm.script(Say("answer 4"), Say(""))  # empty: refused
    await turn(runner, "question 4", "inv4")
    clock.now += RETRY_AFTER
    llm.script(Say("answer 5"), Say("x" * 5000))  # longer than what it replaces: refused
    await turn(runner, "question 5", "inv5")
    assert summaries(await loaded(store)) == []
    clock.now += RETRY_AFTER
    llm.script(Say("answer 6"), Say("Seven questions, seven answers."))
    await turn(runner, "question 6", "inv6")
    [summary] = await loaded(store)
    assert summary.content["covers"] == {"first": "inv0:u", "last": "inv6:final", "count": 14}
    assert llm.unexpected == [] and llm.remaining == 0


async def test_compaction_never_runs_on_its_own_output(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    runner = llm_runner(store, openai_model, quotes)
    for i in range(3):
        llm.script(Say(f"answer {i}"))
        await run(runner, f"question {i}", invocation_id=f"inv{i}")
    llm.script(Say("Three questions."), Say("Never asked for."))
    await runner.after_turn("u1", "s1", "inv2")
    assert llm.remaining == 1  # the summary only
    await runner.after_turn("u1", "s1", "inv2")  # the summary is all there is since: no call
    await runner.after_turn("u1", "s1", "later")
    assert llm.remaining == 1 and llm.unexpected == []
    assert len(summaries(await loaded(store))) == 1


async def test_a_replayed_job_stores_one_summary_under_the_same_id(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    """A crash after the summary was stored but before the message was marked answered: the
    replayed turn runs the job again, on what it loaded before (the worst case)."""
    runner = make_runner(store, openai_model, quotes)
    for i in range(3):
        llm.script(Say(f"answer {i}"))
        await run(runner, f"question {i}", invocation_id=f"inv{i}")
    before = await store.get_context(APP, "u1", "s1", max_events=100)
    assert before is not None
    job = Compaction(store, ModelSummariser(openai_model), after=4)
    llm.script(Say("First run."), Say("Second run."))
    await job.run(before, "inv2")
    await job.run(before, "inv2")
    history = await store.history(APP, "u1", "s1", limit=50)
    assert [(e.id, e.content["summary"]) for e in summaries(tuple(history))] == [
        ("inv2:summary", "First run.")
    ]


async def test_the_offline_summary_keeps_names_topics_tickers_and_requests(
    store: Store, quotes: QuoteProvider
) -> None:
    job = Compaction(store, OfflineSummariser(), after=6)
    said = [
        "Hi, my name is Ada",
        "Tell me a joke about Python",
        "tell me a nerdy fact about space",
        "What's AAPL at?",
        "add MSFT to my watchlist",
    ]
    for i, text in enumerate(said):
        await run(make_runner(store, OfflineModel(), quotes), text, invocation_id=f"inv{i}")
    runner = make_runner(store, OfflineModel(), quotes, history_window=100, after_turn=[job])
    await runner.after_turn("u1", "s1", "inv4")
    [summary] = summaries(await loaded(store))
    text = summary.content["summary"]
    assert "Names: Ada" in text.splitlines()
    assert "Topics: python, space" in text.splitlines()
    assert "Tickers: AAPL, MSFT" in text.splitlines()
    assert "Requests: Hi, my name is Ada | Tell me a joke about Python" in text
    # Deterministic, and the next summary folds this one in.
    again = await OfflineSummariser().summarise("", (await store.history(APP, "u1", "s1"))[:-1])
    assert again == text
    for i, text in enumerate(["tell me a joke about java"] + ["hello"] * 6, 10):
        await turn(runner, text, f"inv{i}")
    latest = summaries(await loaded(store))[-1].content["summary"].splitlines()
    assert "Names: Ada" in latest and "Topics: python, space, java" in latest
    # The next turn's model sees it as one system message before the events after it.
    session = await store.get_context(APP, "u1", "s1", max_events=100)
    assert session is not None and session.events[0].author == SUMMARY_AUTHOR


async def test_a_summariser_that_keeps_failing_leaves_the_load_capped(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    def answer(body: dict[str, Any]) -> Say | Fail:
        summarising = body["messages"][0]["content"] == SUMMARISER_INSTRUCTION
        return Fail(400, "no") if summarising else Say("an answer")

    clock = Clock()
    job = Compaction(store, ModelSummariser(openai_model), after=4, clock=clock)
    runner = make_runner(store, openai_model, quotes, history_window=6, after_turn=[job])
    llm.script(*[answer] * 40)
    for i in range(12):
        await turn(runner, f"question {i}", f"inv{i}")
        clock.now += RETRY_AFTER / 2
    chats = [r.body["messages"] for r in llm.requests if "tools" in r.body]
    summarised = [r for r in llm.requests if "tools" not in r.body]
    assert len(summarised) == 5  # past 4 events: tried, then again once RETRY_AFTER passed
    assert summaries(await loaded(store)) == []
    # system prompt, at most 6 loaded events, the memory block, the message: whatever the history
    assert max(len(messages) for messages in chats) == 9
    assert len(await store.history(APP, "u1", "s1", limit=100)) == 24


async def test_summariser_calls_are_counted_like_a_turns(
    llm: LLMEmulator, openai_model: OpenAIModel, store: Store
) -> None:
    metrics = Metrics()
    summariser = ModelSummariser(openai_model, metrics)
    events = [Event("user", {"text": f"question {i}"}, f"i{i}", id=f"e{i}") for i in range(6)]
    llm.script(Say("Six questions.", prompt_tokens=50, completion_tokens=4), Fail(400, "no"))
    assert await summariser.summarise("", events) == "Six questions."
    with pytest.raises(ModelError):
        await summariser.summarise("", events)

    def count(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    calls = "switchboard_model_calls_total"
    assert count(calls, model="test/model", outcome="ok") == 1
    assert count(calls, model="test/model", outcome="bad_request") == 1
    tokens = "switchboard_tokens_total"
    assert count(tokens, model="test/model", agent="summariser", kind="prompt") == 50
