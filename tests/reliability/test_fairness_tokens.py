"""Per turn, a model call's cost is bounded: every request to the LLM carries `max_tokens`
(LLM_MAX_TOKENS, default 1024), through the composition root, the real openai SDK and the
emulator. (The cap on model calls per turn is the runner's 8 steps, tested in tests/agents.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from testkit.emulators.llm import LLMEmulator, Say, call
from tests.reliability.fault_fixtures import ask, llm_env, message, running_app


@pytest.fixture
async def llm() -> AsyncIterator[LLMEmulator]:
    async with LLMEmulator() as emulator:
        yield emulator


async def test_every_model_call_of_a_turn_carries_the_configured_max_tokens(
    llm: LLMEmulator, db_url: str
) -> None:
    # Two model calls in one turn: a handover to the nerd, then the nerd's answer.
    llm.script(
        Say(tool_calls=[call("transfer_to_agent", agent_name="funny_nerd")]),
        Say("Why do programmers prefer dark mode? Light attracts bugs."),
    )
    async with running_app(db_url, **llm_env(llm.base_url), LLM_MAX_TOKENS="321") as app:
        answer = await ask(app, message("Tell me a joke about bugs"))
    assert "Light attracts bugs" in answer.text
    assert len(llm.requests) == 2 and not llm.unexpected
    assert [r.body.get("max_tokens") for r in llm.requests] == [321, 321]


async def test_max_tokens_defaults_to_1024(llm: LLMEmulator, db_url: str) -> None:
    llm.script(Say("Hello!"))
    async with running_app(db_url, **llm_env(llm.base_url)) as app:
        await ask(app, message("hi"))
    assert [r.body.get("max_tokens") for r in llm.requests] == [1024]
