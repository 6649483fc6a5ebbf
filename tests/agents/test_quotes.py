"""The quote provider (aiohttp) against the Yahoo chart emulator."""

from __future__ import annotations

import pytest

from agents.quotes import (
    CONCURRENT_REQUESTS,
    MAX_QUOTES_PER_CALL,
    InvalidTicker,
    QuoteProvider,
    QuotesUnavailable,
    UnknownTicker,
)
from testkit.emulators.quotes import QuotesEmulator


async def test_quote_has_price_day_change_and_currency(
    quotes: QuoteProvider, market: QuotesEmulator
) -> None:
    quote = await quotes.get_quote("aapl")
    assert (quote.symbol, quote.price, quote.currency) == ("AAPL", 187.42, "USD")
    # yesterday's close (the second-to-last daily bar), not chartPreviousClose
    assert quote.previous_close == 185.1
    assert quote.change == pytest.approx(2.32)
    assert quote.change_percent == pytest.approx(1.2534, abs=1e-3)
    assert quote.name == "Apple Inc."
    assert market.requests == [("AAPL", {"range": "2d", "interval": "1d"})]
    assert "Mozilla" in market.headers[0]["User-Agent"]


async def test_unknown_symbol(quotes: QuoteProvider) -> None:
    with pytest.raises(UnknownTicker, match="ZZZZ"):
        await quotes.get_quote("ZZZZ")


@pytest.mark.parametrize("bad", ["", "AAPL; DROP", "a" * 11, "../etc", "$", "AA PL"])
async def test_invalid_ticker_never_reaches_the_network(
    quotes: QuoteProvider, market: QuotesEmulator, bad: str
) -> None:
    with pytest.raises(InvalidTicker):
        await quotes.get_quote(bad)
    assert market.requests == []


@pytest.mark.parametrize("mode", ["error", "garbage", "bad_shape"])
async def test_failures_are_unavailable_never_a_made_up_price(
    quotes: QuoteProvider, market: QuotesEmulator, mode: str
) -> None:
    market.mode = mode
    with pytest.raises(QuotesUnavailable, match="unavailable right now"):
        await quotes.get_quote("AAPL")


async def test_a_hanging_provider_times_out(market: QuotesEmulator) -> None:
    market.mode = "hang"
    async with QuoteProvider(market.base_url, timeout=0.2) as provider:
        with pytest.raises(QuotesUnavailable):
            await provider.get_quote("AAPL")


async def test_several_quotes_at_once_keep_per_symbol_failures(quotes: QuoteProvider) -> None:
    results = await quotes.get_quotes(["AAPL", "NOPE", "TSLA"])
    assert results["AAPL"].price == 187.42  # type: ignore[union-attr]
    assert isinstance(results["NOPE"], UnknownTicker)
    assert results["TSLA"].change < 0  # type: ignore[union-attr,operator]


async def test_a_hanging_provider_costs_one_timeout_per_list(market: QuotesEmulator) -> None:
    """Symbols waiting for a request slot fail at once when the provider is down: a full
    watchlist takes one provider timeout, not one per round of CONCURRENT_REQUESTS."""
    market.mode = "hang"
    symbols = [f"H{i:02d}" for i in range(MAX_QUOTES_PER_CALL)]
    async with QuoteProvider(market.base_url, timeout=0.2) as provider:
        results = await provider.get_quotes(symbols)
    assert list(results) == symbols
    assert all(isinstance(r, QuotesUnavailable) for r in results.values())
    assert len(market.requests) == CONCURRENT_REQUESTS


async def test_several_quotes_are_looked_up_once_each(
    quotes: QuoteProvider, market: QuotesEmulator
) -> None:
    results = await quotes.get_quotes(["AAPL", "AAPL", "TSLA", "AAPL"])
    assert list(results) == ["AAPL", "TSLA"]
    assert sorted(s for s, _ in market.requests) == ["AAPL", "TSLA"]
