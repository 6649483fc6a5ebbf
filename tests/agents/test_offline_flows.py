"""The same flows with the offline model: no key, no LLM, real tools, real store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agents import OfflineModel, make_model
from agents.quotes import QuoteProvider
from agents.runner import Runner
from storage import Store, open_store
from testkit.emulators.quotes import QuotesEmulator
from tests.agents.runner_helpers import APP, make_runner, run
from tests.transcript import Contains, final_text, transcript


@pytest.fixture
async def runner(store: Store, quotes: QuoteProvider) -> AsyncIterator[Runner]:
    yield make_runner(store, OfflineModel(), quotes)


async def state(store: Store, user: str = "u1") -> dict[str, object]:
    session = await store.get_session(APP, user, "s1")
    assert session is not None
    return dict(session.state)


def test_make_model_without_a_key_is_offline_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    model = make_model(None, "https://openrouter.ai/api/v1", "m", 30, 2)
    assert isinstance(model, OfflineModel) and "offline" in model.description
    assert any("offline" in r.getMessage() for r in caplog.records)


async def test_joke_about_python(runner: Runner, store: Store) -> None:
    events = await run(runner, "Tell me a joke about Python")
    assert transcript(events) == [
        ("user", "Tell me a joke about Python"),
        ("manager", "call transfer_to_agent(agent_name='funny_nerd')"),
        ("manager", "-> funny_nerd"),
        ("funny_nerd", "call tell_joke(topic='python')"),
        ("funny_nerd", Contains('"matched_topic":true')),
        ("funny_nerd", Contains("Here's one about python:")),
    ]
    assert "python" in final_text(events).lower()
    assert (await state(store))["user:joke_topics"] == ["python"]
    # no topic next time: it leans to the favourite
    events = await run(runner, "another joke please")
    assert "Since you like python jokes" in final_text(events)
    assert (await store.stats(APP)).delegations == {"funny_nerd": 2}


async def test_nerd_fact_topic_is_remembered(runner: Runner, store: Store) -> None:
    events = await run(runner, "tell me a nerdy fact about space")
    assert final_text(events).startswith("Nerdy fact about space:")
    assert (await state(store))["user:nerd_topics"] == ["space"]


async def test_name_is_learned_and_used(runner: Runner, store: Store) -> None:
    events = await run(runner, "Hi, my name is Ada")
    assert transcript(events)[1] == ("manager", "call set_user_name(name='Ada')")
    assert final_text(events).startswith("Nice to meet you, Ada!")
    assert (await state(store))["user:name"] == "Ada"
    assert final_text(await run(runner, "hello")).startswith("Hi Ada")
    assert final_text(await run(runner, "what's my name?")) == "You're Ada, of course!"


async def test_name_and_joke_in_one_message(runner: Runner, store: Store) -> None:
    events = await run(runner, "I'm Grace, tell me a programming joke")
    text = final_text(events)
    assert text.startswith("Nice to meet you, Grace!") and events[-1].author == "funny_nerd"
    assert (await state(store))["user:name"] == "Grace"


async def test_watchlist_add_show_remove_and_survive_reopen(
    quotes: QuoteProvider, any_db_url: str
) -> None:
    async with await open_store(any_db_url) as store:
        runner = make_runner(store, OfflineModel(), quotes)
        events = await run(runner, "add AAPL and tsla to my watchlist")
        assert events[-1].author == "stock_analyst"
        assert final_text(events).startswith("Added AAPL, TSLA to your watchlist.")
        await run(runner, "please add $msft to my watch list")
    async with await open_store(any_db_url) as store:
        runner = make_runner(store, OfflineModel(), quotes)
        shown = final_text(await run(runner, "show my watchlist"))
        assert shown == "Your watchlist: AAPL, TSLA, MSFT."
        removed = final_text(await run(runner, "remove TSLA from my watchlist"))
        assert removed == "Removed TSLA from your watchlist.\nYour watchlist: AAPL, MSFT."
        assert (await state(store))["user:stock_watchlist"] == ["AAPL", "MSFT"]


async def test_price_question_carries_the_providers_price(
    runner: Runner, market: QuotesEmulator
) -> None:
    events = await run(runner, "What's AAPL at?")
    assert final_text(events) == "AAPL (Apple Inc.): 187.42 USD, up 2.32 (+1.25%) today"
    assert [s for s, _ in market.requests] == ["AAPL"]
    text = final_text(await run(runner, "how is tesla stock doing?"))
    assert text.startswith("TSLA (Tesla, Inc.): 251.03 USD, down 5.87")


async def test_quotes_unavailable_are_said_plainly(runner: Runner, market: QuotesEmulator) -> None:
    market.mode = "garbage"
    text = final_text(await run(runner, "price of MSFT?"))
    assert text == "Sorry, quotes are unavailable right now."


async def test_watchlist_quotes(runner: Runner, market: QuotesEmulator) -> None:
    await run(runner, "add AAPL, MSFT and ZZZZ to my watchlist")
    text = final_text(await run(runner, "how is my watchlist doing?"))
    assert text.splitlines() == [
        "Your watchlist today:",
        "- AAPL (Apple Inc.): 187.42 USD, up 2.32 (+1.25%) today",
        "- MSFT (Microsoft Corporation): 411.27 USD, up 2.27 (+0.56%) today",
        "- ZZZZ: I couldn't find a quote for ZZZZ",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", "Hi there! I'm Switchboard."),
        ("how are you?", "Doing great"),
        ("thanks!", "You're welcome"),
        ("what can you do?", "I'm Switchboard"),
        ("blorp", "offline mode"),
    ],
)
async def test_small_talk_stays_with_the_manager(runner: Runner, text: str, expected: str) -> None:
    events = await run(runner, text)
    assert [e.author for e in events] == ["user", "manager"]
    assert expected in final_text(events)


async def test_offline_answers_stream_as_partial_events(runner: Runner) -> None:
    events = await run(runner, "tell me a joke", partials=True)
    partial = [e for e in events if e.partial]
    assert len(partial) > 3 and "".join(e.text for e in partial) == final_text(events)


async def test_another_one_repeats_the_last_request(runner: Runner) -> None:
    await run(runner, "tell me a joke about java")
    events = await run(runner, "another one")
    assert events[-1].author == "funny_nerd"
    assert final_text(events).startswith("Since you like java jokes")
