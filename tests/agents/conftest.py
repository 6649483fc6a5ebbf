"""Fixtures: the LLM and market-data emulators, the real clients pointed at them, a real store."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from agents.openai_model import OpenAIModel
from agents.quotes import QuoteProvider
from storage import Store, open_store
from tests.emulators.llm import LLMEmulator
from tests.emulators.quotes import QuotesEmulator


@pytest.fixture
async def llm() -> AsyncIterator[LLMEmulator]:
    async with LLMEmulator() as emulator:
        yield emulator


@pytest.fixture
async def market() -> AsyncIterator[QuotesEmulator]:
    async with QuotesEmulator() as emulator:
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
def db_url(tmp_path: Path) -> str:
    return "sqlite:///" + str(tmp_path / "t.db")


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh database on the TEST_POSTGRES_URL server, dropped afterwards."""
    admin_url = os.environ.get("TEST_POSTGRES_URL")
    if not admin_url:
        if os.environ.get("CI"):
            pytest.fail("CI is set but TEST_POSTGRES_URL is not")
        pytest.skip("TEST_POSTGRES_URL is not set (no PostgreSQL server for this test)")
    admin = await asyncpg.connect(admin_url, timeout=5)
    name = f"switchboard_agents_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def any_db_url(request: pytest.FixtureRequest, db_url: str) -> AsyncIterator[str]:
    """The SQLite URL, then a fresh PostgreSQL database (skipped without TEST_POSTGRES_URL,
    failing when CI is set)."""
    if request.param == "sqlite":
        yield db_url
    else:
        async with postgres_database() as url:
            yield url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened = await open_store(db_url)
    async with opened:
        yield opened
