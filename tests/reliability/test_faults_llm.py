"""LLM faults through the whole app (open_app with a key, the real openai SDK, the emulator):
every failing turn ends with an honest short reply within its deadline, nothing half-made is
stored as an answer, 402 is not retried, and other users keep being served meanwhile."""

from __future__ import annotations

import asyncio
import random

import pytest

from agents import ERROR_MESSAGES, JokeBook, build_team, make_model
from agents.quotes import QuoteProvider
from agents.runner import Runner
from bot.app import App
from bot.conversation import Conversation
from testkit.emulators.llm import CutStream, Fail, Hang, LLMEmulator, Say, StreamError
from tests.reliability.fault_fixtures import (
    APP,
    NO_NETWORK,
    Answer,
    ask,
    by_keyword,
    llm_env,
    message,
    routed,
    running_app,
    user_events,
)

LLM_TIMEOUT = 1  # seconds per attempt (LLM_TIMEOUT); one retry (LLM_MAX_RETRIES=1)
TURN_DEADLINE = 60.0  # the runner's turn_timeout as the composition root builds it
STORM = Fail(429, "Rate limit exceeded: free-models-per-min")
CREDITS = Fail(402, "Insufficient credits. Add more using https://openrouter.ai/credits")
CUT_TEXT = "Here is the beginning of a long answer that never"
STREAM_ERROR_TEXT = "Partial answer before the provider"
FAULTS = {
    "storm": (STORM, "rate_limited"),
    "credits": (CREDITS, "out_of_credits"),
    "boom": (Fail(500, "Internal Server Error"), "unavailable"),
    "hang": (Hang(), "timeout"),
    "cut": (CutStream(CUT_TEXT), "cut_off"),
    "streamerr": (StreamError(STREAM_ERROR_TEXT, "Provider returned error", 502), "unavailable"),
}


@pytest.fixture
async def llm() -> LLMEmulator:
    async with LLMEmulator() as emulator:
        yield emulator


def faulty(llm: LLMEmulator) -> None:
    """Route by the user's words: a fault keyword gets that fault, anything else an answer."""
    table = {keyword: step for keyword, (step, _) in FAULTS.items()}
    llm.script(*routed(by_keyword(table, Say("Happy to help with that."))))


async def assert_honest_failure(app: App, answer: Answer, user: str, kind: str) -> None:
    final = answer.final
    assert [r.text for r in final] == [ERROR_MESSAGES[kind]], answer.replies
    assert len(final[0].text) < 120  # short
    assert answer.seconds < TURN_DEADLINE
    events = await user_events(app, "telegram", user)
    # The user's message is kept; the turn's only answer is the honest error message.
    assert [e.author for e in events if e.author == "user"] == ["user"]
    answers = [e for e in events if e.author != "user"]
    assert [e.text for e in answers] == [ERROR_MESSAGES[kind]]
    # Nothing streamed before the failure is stored as (part of) an answer.
    stored = " ".join(str(e.content) for e in events)
    assert CUT_TEXT not in stored and STREAM_ERROR_TEXT not in stored


@pytest.mark.parametrize("keyword", list(FAULTS))
async def test_each_fault_ends_the_turn_with_an_honest_short_reply(
    llm: LLMEmulator, db_url: str, keyword: str
) -> None:
    faulty(llm)
    _, kind = FAULTS[keyword]
    env = llm_env(llm.base_url, timeout=LLM_TIMEOUT, retries=1)
    async with running_app(db_url, **env) as app:
        answer = await ask(app, message(f"please {keyword} now", user="7"))
        await assert_honest_failure(app, answer, "7", kind)
        attempts = len(llm.requests)
        if keyword == "credits":
            assert attempts == 1  # 402: out of credits is never retried
        elif keyword in ("cut", "streamerr"):
            assert attempts == 1  # text was already streamed: a retry would repeat it
        else:
            assert attempts == 2  # retried once (LLM_MAX_RETRIES=1), then honest
        assert not await app.store.inbox_pending("telegram")
        # The same user is served normally on the next message (nothing stuck, no lock held).
        after = await ask(app, message("and now a normal question", user="7"))
        assert after.text == "Happy to help with that."


async def test_other_users_are_served_while_turns_fail(llm: LLMEmulator, db_url: str) -> None:
    """Every fault at once, each for its own user, while healthy users keep chatting: the healthy
    turns finish long before the hung ones, and every turn ends with one reply."""
    faulty(llm)
    env = llm_env(llm.base_url, timeout=LLM_TIMEOUT, retries=1)
    async with running_app(db_url, **env) as app:
        failing = {
            keyword: asyncio.create_task(ask(app, message(f"{keyword}!", user=f"1{i}")))
            for i, keyword in enumerate(FAULTS)
        }
        await asyncio.sleep(0)  # let the failing turns start first
        healthy = await asyncio.gather(
            *(ask(app, message(f"hello {i}", user=f"9{i}")) for i in range(5))
        )
        assert all(a.text == "Happy to help with that." for a in healthy)
        # The hung turn is still waiting for its timeout while the others were answered.
        assert not failing["hang"].done()
        for i, (keyword, task) in enumerate(failing.items()):
            answer = await task
            await assert_honest_failure(app, answer, f"1{i}", FAULTS[keyword][1])
        assert not llm.unexpected


async def test_a_storm_that_asks_to_wait_too_long_is_not_waited_out(
    llm: LLMEmulator, db_url: str
) -> None:
    """A 429 whose Retry-After is far beyond a chat's patience is answered at once."""
    llm.script(Fail(429, "slow down", headers={"Retry-After": "3600"}))
    env = llm_env(llm.base_url, timeout=LLM_TIMEOUT, retries=2)
    async with running_app(db_url, **env) as app:
        answer = await ask(app, message("hello", user="5"))
        await assert_honest_failure(app, answer, "5", "rate_limited")
        assert answer.seconds < 5 and len(llm.requests) == 1


async def test_a_model_slower_than_the_turn_deadline_is_cut_at_the_deadline(
    llm: LLMEmulator, db_url: str
) -> None:
    """The turn deadline bounds a turn even when each model call is allowed longer: the same
    parts the composition root builds, with a 2 s turn and a 30 s per-call timeout."""
    llm.script(*routed(by_keyword({"hang": Hang()}, Say("fine"))))
    from storage import open_store

    model = make_model("sk-or-SECRET-x", llm.base_url, "test/model", 30.0, 0)
    async with (
        await open_store(db_url) as store,
        QuoteProvider(NO_NETWORK, timeout=1.0) as quotes,
    ):
        team = build_team(model, quotes, JokeBook(random.Random(1)))
        runner = Runner(store, team, app_name=APP, turn_timeout=2.0)
        core = Conversation(store, runner, app_name=APP)
        started = asyncio.get_running_loop().time()
        replies = [r async for r in core.handle(message("hang on", user="3"))]
        elapsed = asyncio.get_running_loop().time() - started
        final = [r.text for r in replies if not (r.partial or r.typing)]
        assert final == [ERROR_MESSAGES["turn_timeout"]]
        assert 2.0 <= elapsed < 10.0  # cut at 2 s, not after the model's 30 s
        replies = [r async for r in core.handle(message("hello", user="4"))]
        assert [r.text for r in replies if not (r.partial or r.typing)] == ["fine"]
    await model.aclose()
