"""The runner with the real openai SDK against the LLM emulator, and a real SQLite store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.openai_model import OpenAIModel
from agents.quotes import QuoteProvider
from storage import Store, open_store
from storage.types import Event
from testkit.emulators.llm import Fail, Hang, LLMEmulator, Say, call
from testkit.emulators.quotes import QuotesEmulator
from tests.agents.conftest import make_openai
from tests.agents.runner_helpers import APP, last_tool_result, make_runner, run
from tests.transcript import Contains, final_text, transcript


async def test_a_joke_goes_manager_to_funny_nerd_and_the_topic_is_stored(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    llm.script(
        Say(tool_calls=[call("transfer_to_agent", agent_name="funny_nerd")]),
        Say(tool_calls=[call("tell_joke", topic="python")]),
        lambda body: Say("Here you go: " + last_tool_result(body)["joke"]),
    )
    runner = make_runner(store, openai_model, quotes)
    events = await run(runner, "tell me a joke about python")
    assert transcript(events) == [
        ("user", "tell me a joke about python"),
        ("manager", "call transfer_to_agent(agent_name='funny_nerd')"),
        ("manager", "-> funny_nerd"),
        ("funny_nerd", "call tell_joke(topic='python')"),
        ("funny_nerd", Contains('"topic":"python"')),
        ("funny_nerd", Contains("Here you go: ")),
    ]
    assert "python" in final_text(events).lower()
    session = await store.get_session(APP, "u1", "s1")
    assert session is not None and session.state["user:joke_topics"] == ["python"]
    stats = await store.stats(APP)
    assert stats.delegations == {"funny_nerd": 1}
    assert stats.prompt_tokens == 3 * 11  # usage of every model call is stored
    # the sub-agent got its own instruction and tools, and saw the handover
    manager, nerd = llm.requests[0], llm.requests[1]
    assert "transfer_to_agent" in manager.tool_names and "set_user_name" in manager.tool_names
    assert nerd.tool_names == ["tell_joke", "nerd_fact"] and "funny_nerd" in nerd.system
    assert nerd.body["messages"][-1]["role"] == "tool"


async def test_add_to_watchlist_goes_to_stock_analyst_and_survives_reopen(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, any_db_url: str
) -> None:
    llm.script(
        Say(tool_calls=[call("transfer_to_agent", agent_name="stock_analyst")]),
        Say(tool_calls=[call("watchlist_add", symbols=["aapl"])]),
        Say("Added AAPL to your watchlist."),
    )
    async with await open_store(any_db_url) as store:
        events = await run(make_runner(store, openai_model, quotes), "add AAPL to my watchlist")
    assert [e.author for e in events if e.final] == ["stock_analyst"]
    added = [e for e in events if "tool_result" in e.content][-1]
    assert added.actions.state_delta == {"user:stock_watchlist": ["AAPL"]}
    async with await open_store(any_db_url) as store:
        # user-scoped: visible from a brand new session of the same user after a restart
        await store.create_session(APP, "u1", "another")
        session = await store.get_session(APP, "u1", "another")
        assert session is not None and session.state["user:stock_watchlist"] == ["AAPL"]
        assert (await store.stats(APP)).delegations == {"stock_analyst": 1}


async def test_a_price_question_uses_the_quote_provider(
    llm: LLMEmulator,
    openai_model: OpenAIModel,
    quotes: QuoteProvider,
    market: QuotesEmulator,
    store: Store,
) -> None:
    def answer(body: dict[str, Any]) -> Say:
        quote = last_tool_result(body)["quote"]
        return Say(f"{quote['symbol']} is at {quote['price']} {quote['currency']}.")

    llm.script(
        Say(tool_calls=[call("transfer_to_agent", agent_name="stock_analyst")]),
        Say(tool_calls=[call("get_quote", symbol="AAPL")]),
        answer,
    )
    events = await run(make_runner(store, openai_model, quotes), "what's AAPL at?")
    assert final_text(events) == "AAPL is at 187.42 USD."
    assert [symbol for symbol, _ in market.requests] == ["AAPL"]


async def test_quotes_unavailable_reach_the_model_as_a_tool_result(
    llm: LLMEmulator,
    openai_model: OpenAIModel,
    quotes: QuoteProvider,
    market: QuotesEmulator,
    store: Store,
) -> None:
    market.mode = "error"
    llm.script(
        Say(tool_calls=[call("transfer_to_agent", agent_name="stock_analyst")]),
        Say(tool_calls=[call("get_quote", symbol="AAPL")]),
        lambda body: Say("Sorry: " + last_tool_result(body)["error"]),
    )
    events = await run(make_runner(store, openai_model, quotes), "AAPL price?")
    assert final_text(events) == "Sorry: quotes are unavailable right now"


@pytest.mark.parametrize(
    ("steps", "kind", "requests"),
    [
        ([Fail(429, headers={"retry-after-ms": "1"})] * 3, "rate_limited", 3),
        ([Fail(500)] * 3, "unavailable", 3),
        ([Hang()], "timeout", 1),
        ([Fail(402, "Insufficient credits")], "out_of_credits", 1),
    ],
)
async def test_model_failures_end_the_turn_with_an_honest_message(
    llm: LLMEmulator,
    quotes: QuoteProvider,
    store: Store,
    steps: list[Any],
    kind: str,
    requests: int,
) -> None:
    model = make_openai(llm, max_retries=0 if kind == "timeout" else 2, timeout=0.3)
    llm.script(*steps)
    try:
        events = await run(make_runner(store, model, quotes), "hello?")
    finally:
        await model.aclose()
    final = events[-1]
    assert final.final and final.error == kind and final.author == "manager"
    assert "AI service" in final.text and "Traceback" not in final.text
    assert len(llm.requests) == requests  # 402: not retried
    session = await store.get_session(APP, "u1", "s1")
    assert session is not None
    assert [(e.author, e.text) for e in session.events] == [
        ("user", "hello?"),
        ("manager", final.text),
    ]


async def test_the_turn_deadline_stores_an_honest_message(
    llm: LLMEmulator, quotes: QuoteProvider, store: Store
) -> None:
    model = make_openai(llm, max_retries=0, timeout=5.0)
    llm.script(Hang())
    runner = make_runner(store, model, quotes, turn_timeout=0.3)
    try:
        events = await run(runner, "hello?")
    finally:
        await model.aclose()
    assert events[-1].error == "turn_timeout" and "too long" in events[-1].text


async def test_streaming_yields_partial_events_that_are_never_stored(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    llm.script(Say("Hello! Nice to see you again, how can I help today?"))
    events = await run(make_runner(store, openai_model, quotes), "hi", partials=True)
    partial = [e for e in events if e.partial]
    assert len(partial) > 3 and all(e.author == "manager" for e in partial)
    assert "".join(e.text for e in partial) == events[-1].text
    session = await store.get_session(APP, "u1", "s1")
    assert session is not None and len(session.events) == 2


async def test_tool_errors_become_results_the_model_sees(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    llm.script(
        Say(tool_calls=[call("launch_rockets"), call("set_user_name")]),
        Say(tool_calls=[call("transfer_to_agent", agent_name="nobody")]),
        Say("All good."),
    )
    events = await run(make_runner(store, openai_model, quotes), "hi")
    assert final_text(events) == "All good."
    second, third = llm.requests[1].body["messages"], llm.requests[2].body["messages"]
    errors = [json.loads(m["content"])["error"] for m in second if m["role"] == "tool"]
    assert errors == ["there is no tool named 'launch_rockets'", "missing argument(s): name"]
    assert "unknown agent 'nobody'" in json.loads(third[-1]["content"])["error"]


async def test_only_an_agent_with_sub_agents_can_hand_over(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    """The transfer tool is the Agent's own: the funny nerd (no sub-agents) has none, so its
    attempt to hand back is an error result and it stays the one answering."""
    llm.script(
        Say(tool_calls=[call("transfer_to_agent", agent_name="funny_nerd")]),
        Say(tool_calls=[call("transfer_to_agent", agent_name="manager")]),
        Say("Still me."),
    )
    events = await run(make_runner(store, openai_model, quotes), "joke, then back")
    assert events[-1].author == "funny_nerd" and final_text(events) == "Still me."
    error = last_tool_result(llm.requests[2].body)["error"]
    assert error == "there is no tool named 'transfer_to_agent'"
    assert (await store.stats(APP)).delegations == {"funny_nerd": 1}


async def test_a_replayed_invocation_is_answered_from_the_store(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    llm.script(Say("First and only answer."))
    runner = make_runner(store, openai_model, quotes)
    first = await run(runner, "hi", invocation_id="msg-1")
    again = await run(runner, "hi", invocation_id="msg-1")
    assert [e.id for e in again] == ["msg-1:final"] and again[0].text == "First and only answer."
    assert len(llm.requests) == 1 and first[0].id == "msg-1:u"


async def test_an_interrupted_invocation_resumes_without_a_second_user_event(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    llm.script(Say("Now I can answer."))
    runner = make_runner(store, openai_model, quotes)
    # a crash after the user event was stored, before any answer
    session = await store.create_session(APP, "u1", "s1")
    await store.append_event(session, Event("user", {"text": "hi"}, "msg-2", id="msg-2:u"))
    events = await run(runner, "hi", invocation_id="msg-2")
    assert transcript(events) == [("manager", "Now I can answer.")]
    stored = await store.get_session(APP, "u1", "s1")
    assert stored is not None and [e.author for e in stored.events] == ["user", "manager"]


async def test_only_the_history_window_is_sent(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    runner = make_runner(store, openai_model, quotes, history_window=4)
    for i in range(5):
        llm.script(Say(f"answer {i}"))
        await run(runner, f"question {i}")
    sent = [m["content"] for m in llm.requests[-1].body["messages"][1:]]
    # the 4 stored events loaded (never the whole history), the memory block, the new message
    memory = "Memories about the user: none."
    assert sent == ["question 2", "answer 2", "question 3", "answer 3", memory, "question 4"]


async def test_a_failure_after_the_handover_is_reported_by_the_sub_agent(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    llm.script(Say(tool_calls=[call("transfer_to_agent", agent_name="funny_nerd")]), Fail(402))
    events = await run(make_runner(store, openai_model, quotes), "joke?")
    assert transcript(events)[-2:] == [
        ("manager", "-> funny_nerd"),
        ("funny_nerd", Contains("error:out_of_credits The AI service is out of credits")),
    ]
    assert (await store.stats(APP)).delegations == {"funny_nerd": 1}


async def test_a_model_that_never_stops_calling_tools_is_capped(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    llm.script(*[Say(tool_calls=[call("set_user_name", name="Bob")])] * 8)
    events = await run(make_runner(store, openai_model, quotes), "loop forever")
    assert events[-1].error == "too_many_steps" and len(llm.requests) == 8


async def test_a_tool_sees_what_another_session_of_the_user_just_wrote(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    llm.script(
        Say(tool_calls=[call("transfer_to_agent", agent_name="stock_analyst")]),
        Say(tool_calls=[call("watchlist_add", symbols=["AAPL"])]),
    )
    runner = make_runner(store, openai_model, quotes)
    slow = runner.run_async("u1", "private-chat", "add AAPL")
    async for event in slow:  # stop while the model has asked for the tool, before it runs
        if "watchlist_add" in str(event.content.get("tool_calls")):
            break
    llm.script(
        Say(tool_calls=[call("transfer_to_agent", agent_name="stock_analyst")]),
        Say(tool_calls=[call("watchlist_add", symbols=["TSLA"])]),
        Say("Added TSLA."),
    )
    await run(runner, "add TSLA", session="group-chat")
    llm.script(Say("Added AAPL."))
    rest = [event async for event in slow]
    assert rest[-1].text == "Added AAPL."
    session = await store.get_session(APP, "u1", "private-chat")
    assert session is not None and session.state["user:stock_watchlist"] == ["TSLA", "AAPL"]
