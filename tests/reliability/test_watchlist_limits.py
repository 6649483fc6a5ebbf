"""The watchlist has one set of rules, whoever edits it: `/watchlist` (through the core) and the
agents' watchlist tools (called by the real openai SDK's model, played by the LLM emulator)
accept the same tickers, stop at the same cap and say the same outcome. Quote lookups for one
message are bounded in number and in concurrency (the quotes emulator counts them)."""

from __future__ import annotations

import asyncio
import json

from agents.profile import FULL_MESSAGE, MAX_WATCHLIST, WATCHLIST_KEY
from agents.quotes import CONCURRENT_REQUESTS, MAX_QUOTES_PER_CALL
from bot.app import App
from storage import Event, EventActions
from testkit.emulators.llm import LLMEmulator, Say, call
from testkit.emulators.quotes import Listing, QuotesEmulator
from testkit.helpers import wait_until
from tests.reliability.fault_fixtures import APP, ask, llm_env, message, running_app

TICKERS = [f"T{i:02d}" for i in range(1, MAX_WATCHLIST + 3)]  # 27: two past the cap
# (action, symbols as typed, the outcome of each in order); the steps run one after another.
STEPS: list[tuple[str, list[str], list[str]]] = [
    ("add", TICKERS, ["added"] * MAX_WATCHLIST + ["full", "full"]),
    ("remove", ["t01", "$T02"], ["removed", "removed"]),
    ("add", ["ABCDEFGHIJK"], ["invalid"]),  # 11 characters
    ("add", ["$MSFT"], ["added"]),
    ("add", ["msft"], ["already_there"]),
    ("add", ["BRK.B"], ["added"]),  # the list is full again
    ("add", ["amd"], ["full"]),
    ("remove", ["TSLA"], ["not_there"]),
]
FINAL = [*TICKERS[2:MAX_WATCHLIST], "MSFT", "BRK.B"]


async def watchlist(app: App, platform_user_id: str) -> list[str]:
    user_id = await app.store.find_user("telegram", platform_user_id)
    assert user_id is not None
    session = await app.store.get_session(APP, user_id, f"telegram:{platform_user_id}")
    assert session is not None
    return list(session.state.get(WATCHLIST_KEY, []))


def command_outcome(text: str) -> str:
    """What one /watchlist reply says happened (the core's wording, from agents.profile)."""
    for needle, outcome in [
        (FULL_MESSAGE, "full"),
        ("Added ", "added"),
        ("Removed ", "removed"),
        ("is already on your watchlist", "already_there"),
        ("is not on your watchlist", "not_there"),
    ]:
        if needle in text:
            return outcome
    assert text.startswith("Usage: /watchlist"), text
    return "invalid"


def tool_outcomes(result: dict[str, list[str]], count: int) -> list[str]:
    """The tool's per-outcome lists back in request order (each step has one outcome kind, or
    25 added then full: the order of the kinds below)."""
    kinds = ["added", "removed", "already_there", "not_there", "invalid", "full"]
    flat = [kind for kind in kinds for _ in result.get(kind, [])]
    assert len(flat) == count, result
    return flat


async def by_command(app: App, user: str, action: str, symbols: list[str]) -> list[str]:
    outcomes = []
    for symbol in symbols:
        answer = await ask(app, message(f"/watchlist {action} {symbol}", user=user))
        outcomes.append(command_outcome(answer.text))
    return outcomes


async def by_tool(
    app: App, llm: LLMEmulator, user: str, action: str, symbols: list[str]
) -> list[str]:
    llm.script(
        Say(tool_calls=[call("transfer_to_agent", agent_name="stock_analyst")]),
        Say(tool_calls=[call(f"watchlist_{action}", symbols=symbols)]),
        Say("Done."),
    )
    await ask(app, message(f"{action} {' '.join(symbols)} on my watchlist", user=user))
    assert llm.remaining == 0 and not llm.unexpected
    [result] = [m for m in llm.requests[-1].body["messages"][-1:] if m["role"] == "tool"]
    return tool_outcomes(json.loads(result["content"]), len(symbols))


async def test_watchlist_add_past_the_cap_is_refused(any_db_url: str) -> None:
    async with running_app(any_db_url) as app:
        for ticker in TICKERS[:MAX_WATCHLIST]:
            assert "Added" in (await ask(app, message(f"/watchlist add {ticker}"))).text
        refused = (await ask(app, message(f"/watchlist add {TICKERS[-1]}"))).text
        assert refused == f"{FULL_MESSAGE} Not added: {TICKERS[-1]}."
        assert await watchlist(app, "42") == TICKERS[:MAX_WATCHLIST]
        assert "Removed T01" in (await ask(app, message("/watchlist remove T01"))).text
        assert "Added" in (await ask(app, message(f"/watchlist add {TICKERS[-1]}"))).text
        assert await watchlist(app, "42") == [*TICKERS[1:MAX_WATCHLIST], TICKERS[-1]]


async def test_the_command_and_the_tool_follow_the_same_rules(any_db_url: str) -> None:
    async with LLMEmulator() as llm:
        env = llm_env(llm.base_url, timeout=5, retries=0)
        async with running_app(any_db_url, **env) as app:
            for action, symbols, expected in STEPS:
                by_cmd = await by_command(app, "501", action, symbols)
                by_llm = await by_tool(app, llm, "502", action, symbols)
                assert by_cmd == by_llm == expected, (action, symbols)
                assert await watchlist(app, "501") == await watchlist(app, "502")
            assert await watchlist(app, "501") == FINAL
            # What the model is shown about the user is bounded by the same cap.
            assert f"watchlist: {', '.join(FINAL)}." in llm.requests[-1].system


async def store_watchlist(app: App, user: str, symbols: list[str]) -> None:
    """A watchlist as one stored before the cap existed (written as any state change is)."""
    await ask(app, message("/watchlist", user=user))
    user_id = await app.store.find_user("telegram", user)
    assert user_id is not None
    session = await app.store.get_session(APP, user_id, f"telegram:{user}")
    assert session is not None
    old = Event(author="system", content={}, actions=EventActions({WATCHLIST_KEY: symbols}))
    assert await app.store.append_event(session, old)


async def test_a_model_repeating_lookups_gets_one_message_worth_of_quotes(
    any_db_url: str,
) -> None:
    legacy = [f"L{i:02d}" for i in range(40)]
    prices = {s: Listing(10.0 + i, 10.0) for i, s in enumerate(legacy)}
    async with LLMEmulator() as llm, QuotesEmulator(prices) as market:
        env = llm_env(llm.base_url, timeout=5, retries=0)
        async with running_app(any_db_url, QUOTES_BASE_URL=market.base_url, **env) as app:
            await store_watchlist(app, "42", legacy)
            llm.script(
                Say(tool_calls=[call("transfer_to_agent", agent_name="stock_analyst")]),
                Say(tool_calls=[call("watchlist_quotes")] * 3),
                Say(tool_calls=[call("get_quote", symbol=s) for s in legacy[:10]]),
                Say("Here you go."),
            )
            answer = await ask(app, message("how are my stocks? all of them, again and again"))
            assert answer.text == "Here you go." and llm.remaining == 0
    assert len(market.requests) == MAX_QUOTES_PER_CALL
    results = [
        json.loads(m["content"]) for m in llm.requests[-1].body["messages"] if m["role"] == "tool"
    ]
    quoted, *refused = results[1:]  # after the transfer's result
    assert len(quoted["quotes"]) == MAX_QUOTES_PER_CALL and quoted["not_looked_up"] == 15
    assert len(refused) == 12 and all("no more quote lookups" in r["error"] for r in refused)


async def test_one_message_fetches_a_bounded_number_of_quotes_a_few_at_a_time(
    any_db_url: str,
) -> None:
    """A watchlist stored before the cap existed (40 symbols): asking how it is doing looks up
    at most MAX_QUOTES_PER_CALL of them, never more than CONCURRENT_REQUESTS at once."""
    legacy = [f"L{i:02d}" for i in range(40)]
    prices = {s: Listing(10.0 + i, 10.0) for i, s in enumerate(legacy)}
    async with (
        QuotesEmulator(prices) as market,
        running_app(any_db_url, QUOTES_BASE_URL=market.base_url) as app,
    ):
        await store_watchlist(app, "42", legacy)
        market.gate.clear()  # hold every answer, so all the requests it opens pile up
        asking = asyncio.create_task(ask(app, message("how is my watchlist doing?")))
        await wait_until(lambda: market.in_flight >= CONCURRENT_REQUESTS, timeout=10)
        market.gate.set()
        answer = await asyncio.wait_for(asking, timeout=10)
    assert len(market.requests) == MAX_QUOTES_PER_CALL
    assert market.max_in_flight == CONCURRENT_REQUESTS
    lines = answer.text.splitlines()
    assert lines[0] == "Your watchlist today:" and lines[1].startswith("- L00: 10.00 USD")
    assert len([line for line in lines if line.startswith("- ")]) == MAX_QUOTES_PER_CALL
    assert f"{len(legacy) - MAX_QUOTES_PER_CALL} more not looked up" in lines[-1]
