"""Fixtures: the LLM emulator, the real clients pointed at it and at the market-data emulator
(`market`, tests/conftest.py), a real store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agents.openai_model import OpenAIModel
from agents.quotes import QuoteProvider
from storage import Store, open_store
from testkit.emulators.llm import LLMEmulator
from testkit.emulators.quotes import QuotesEmulator


@pytest.fixture
async def llm() -> AsyncIterator[LLMEmulator]:
    async with LLMEmulator() as emulator:
        yield emulator


@pytest.fixture
async def quotes(market: QuotesEmulator) -> AsyncIterator[QuoteProvider]:
    async with QuoteProvider(market.base_url, timeout=1.0) as provider:
        yield provider


def make_openai(
    llm: LLMEmulator, *, stream: bool = True, max_retries: int = 2, timeout: float = 1.0
) -> OpenAIModel:
    """The real openai SDK client, pointed at the emulator, with test-sized timeouts."""
    return OpenAIModel(
        api_key="sk-test-secret",
        base_url=llm.base_url,
        model="test/model",
        timeout=timeout,
        max_retries=max_retries,
        stream=stream,
        backoff=0.01,
    )


@pytest.fixture
async def openai_model(llm: LLMEmulator) -> AsyncIterator[OpenAIModel]:
    model = make_openai(llm)
    yield model
    await model.aclose()


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened = await open_store(db_url)
    async with opened:
        yield opened
