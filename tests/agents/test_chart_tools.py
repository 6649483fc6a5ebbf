"""The stock analyst's show_chart: the chart rides on the final event as an attachment (so a
replayed turn has it too), a failure is told to the model and attaches nothing, and the
offline model understands "show me TSLA over 6 months". Real store, LLM and quotes emulators."""

from __future__ import annotations

from agents import ModelClient, QuoteProvider, build_team
from agents.charts import Charts
from agents.offline import OfflineModel
from agents.openai_model import OpenAIModel
from agents.runner import Runner
from storage import Store
from testkit.emulators.llm import LLMEmulator, Say, call
from testkit.emulators.quotes import QuotesEmulator
from tests.agents.runner_helpers import APP, last_tool_result, make_runner, run


def runner_with_charts(store: Store, model: ModelClient, quotes: QuoteProvider) -> Runner:
    return make_runner(store, model, quotes, charts=Charts(quotes))


async def test_the_chart_is_attached_to_the_final_event(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    llm.script(
        Say(tool_calls=[call("transfer_to_agent", agent_name="stock_analyst")]),
        Say(tool_calls=[call("show_chart", symbol="tsla", range="6mo")]),
        lambda body: Say("Here it is: " + last_tool_result(body)["chart"]),
    )
    events = await run(runner_with_charts(store, openai_model, quotes), "show me TSLA")
    final = events[-1]
    assert final.final and final.text.startswith("Here it is: TSLA 6mo: ")
    assert final.content["attachments"] == [{"kind": "chart", "symbol": "TSLA", "range": "6mo"}]
    stored = await store.get_session(APP, "u1", "s1")
    assert stored is not None and stored.events[-1].content == final.content


async def test_no_prices_no_attachment(
    llm: LLMEmulator,
    openai_model: OpenAIModel,
    quotes: QuoteProvider,
    market: QuotesEmulator,
    store: Store,
) -> None:
    market.empty.add("TSLA")
    llm.script(
        Say(tool_calls=[call("show_chart", symbol="TSLA", range="1y")]),
        lambda body: Say("Sorry: " + last_tool_result(body)["error"]),
    )
    team = build_team(openai_model, quotes, charts=Charts(quotes)).find("stock_analyst")
    assert team is not None
    runner = Runner(store, team, app_name=APP, history_window=20, turn_timeout=5.0)
    final = (await run(runner, "TSLA over a year"))[-1]
    assert final.text == "Sorry: there are no prices for TSLA over 1y"
    assert "attachments" not in final.content


async def test_the_offline_model_draws_what_was_asked(
    quotes: QuoteProvider, market: QuotesEmulator, store: Store
) -> None:
    runner = runner_with_charts(store, OfflineModel(), quotes)
    final = (await run(runner, "show me TSLA over 6 months"))[-1]
    assert final.text.startswith("Here is the chart: TSLA 6mo: ")
    assert final.content["attachments"] == [{"kind": "chart", "symbol": "TSLA", "range": "6mo"}]
    assert market.requests == [("TSLA", {"range": "6mo", "interval": "1d"})]
