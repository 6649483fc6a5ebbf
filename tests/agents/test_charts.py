"""Charts from the quotes emulator's chart endpoint: the cache per (symbol, range) on an
injected clock, the series as the provider gave it (never invented), and a PNG of the stated
size."""

from __future__ import annotations

import io

import pytest
from matplotlib.image import imread

from agents.charts import CACHE_SECONDS, HEIGHT_PX, WIDTH_PX, Charts, NoChartData
from agents.quotes import InvalidTicker, QuoteProvider, UnknownTicker
from testkit.emulators.quotes import SERIES_POINTS, QuotesEmulator
from testkit.helpers import Clock


async def test_a_chart_is_cached_per_symbol_and_range_for_five_minutes(
    market: QuotesEmulator, quotes: QuoteProvider
) -> None:
    clock = Clock()
    charts = Charts(quotes, clock=clock)
    first = await charts.chart("AAPL")
    clock.now += CACHE_SECONDS - 1
    assert await charts.chart("$aapl", "1mo") is first
    await charts.chart("AAPL", "1y")  # another range: another request
    assert [q["range"] for _, q in market.requests] == ["1mo", "1y"]
    clock.now += 2  # the 1mo chart is now older than five minutes
    assert await charts.chart("AAPL") is not first
    assert [q["range"] for _, q in market.requests] == ["1mo", "1y", "1mo"]


async def test_the_series_is_the_provider_s_and_the_png_its_size(
    market: QuotesEmulator, quotes: QuoteProvider
) -> None:
    chart = await Charts(quotes).chart("TSLA", "5d")
    series = chart.series
    assert len(series.closes) == SERIES_POINTS and series.closes[-1] == 251.03
    assert series.currency == "USD" and series.previous_close == pytest.approx(256.9 * 0.95)
    assert series.summary().startswith("TSLA 5d: 251.03 USD, +")
    assert market.requests == [("TSLA", {"range": "5d", "interval": "30m"})]
    height, width = imread(io.BytesIO(chart.png), format="png").shape[:2]
    assert (width, height) == (WIDTH_PX, HEIGHT_PX)
    assert width >= 800 and height >= 450


async def test_no_prices_no_chart(market: QuotesEmulator, quotes: QuoteProvider) -> None:
    market.empty.add("MSFT")
    with pytest.raises(NoChartData):
        await Charts(quotes).chart("MSFT")
    with pytest.raises(InvalidTicker):
        await Charts(quotes).chart("not a ticker!")
    assert [s for s, _ in market.requests] == ["MSFT"]


async def test_a_comparison_draws_percent_change_and_names_what_has_no_prices(
    market: QuotesEmulator, quotes: QuoteProvider
) -> None:
    market.empty.add("MSFT")
    comparison = await Charts(quotes).compare(["aapl", "MSFT", "TSLA", "AAPL"], "1y")
    assert [s.symbol for s in comparison.series] == ["AAPL", "TSLA"]
    assert comparison.missing == ("MSFT",)
    assert comparison.summary().endswith("; no prices for MSFT")
    assert sorted(s for s, _ in market.requests) == ["AAPL", "MSFT", "TSLA"]  # each once
    height, width = imread(io.BytesIO(comparison.png), format="png").shape[:2]
    assert (width, height) == (WIDTH_PX, HEIGHT_PX)


async def test_a_comparison_with_no_prices_at_all_is_no_chart(
    market: QuotesEmulator, quotes: QuoteProvider
) -> None:
    market.empty.add("MSFT")
    with pytest.raises(NoChartData):
        await Charts(quotes).compare(["MSFT"])
    with pytest.raises(UnknownTicker):
        await Charts(quotes).compare(["ZZZZ"])
