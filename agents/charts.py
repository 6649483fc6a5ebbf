"""Price charts as PNG pictures, from the market-data chart endpoint (agents.quotes).

`GET /v8/finance/chart/{SYMBOL}?range=1mo&interval=1d` answers `chart.result[0]` with
`timestamp` (epoch seconds), `indicators.quote[0].close` (None where no trade happened) and
`meta` (`currency`, `regularMarketPrice`, `chartPreviousClose`: the close before the range).
The change shown is the last price against that previous close. No closes, no chart
(`NoChartData`): a line is never drawn from invented points.

Rendering (matplotlib, Agg backend, never a display) runs in a worker thread, off the event
loop. Charts are cached per (symbol, range) for CACHE_SECONDS on an injectable clock.

`compare` draws several symbols on one chart as % change from each one's first close in the
range (the watchlist: prices in different currencies and sizes only compare as change).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agents.quotes import (
    QuoteError,
    QuoteProvider,
    QuotesUnavailable,
    chart_result,
    normalize_ticker,
    number,
)

log = logging.getLogger(__name__)

# The ranges offered, and the bar interval the provider is asked for with each.
RANGES = {"1d": "5m", "5d": "30m", "1mo": "1d", "6mo": "1d", "1y": "1wk"}
DEFAULT_RANGE = "1mo"
CACHE_SECONDS = 300.0
WIDTH_PX, HEIGHT_PX, DPI = 1024, 576, 100  # 16:9, readable on a phone (at least 800x450)
COMPARE_CONCURRENCY = 4  # chart requests in flight at once for a comparison


class NoChartData(QuoteError):
    """The provider knows the symbol but has no prices for the range."""


@dataclass(frozen=True, slots=True)
class PriceSeries:
    symbol: str
    range: str
    currency: str
    times: tuple[float, ...]
    closes: tuple[float, ...]
    price: float
    previous_close: float | None
    name: str | None = None

    @property
    def change(self) -> float | None:
        return None if self.previous_close is None else self.price - self.previous_close

    @property
    def change_percent(self) -> float | None:
        previous = self.previous_close
        return None if not previous else (self.price - previous) / previous * 100

    def summary(self) -> str:
        """'AAPL 1mo: 187.42 USD, +2.32 (+1.25%)'."""
        change, pct = self.change, self.change_percent
        moved = "" if change is None or pct is None else f", {change:+.2f} ({pct:+.2f}%)"
        return f"{self.symbol} {self.range}: {self.price:.2f} {self.currency}{moved}"


@dataclass(frozen=True, slots=True)
class Chart:
    series: PriceSeries
    png: bytes

    @property
    def filename(self) -> str:
        return f"{self.series.symbol}-{self.series.range}.png"


def parse_series(symbol: str, range_: str, data: Any) -> PriceSeries:
    try:
        result = chart_result(symbol, data)
        meta = result["meta"]
        points = _points(result)
    except (KeyError, IndexError, TypeError, AttributeError):
        raise QuotesUnavailable("quotes are unavailable right now") from None
    if not points:
        raise NoChartData(f"there are no prices for {symbol} over {range_}")
    price = number(meta.get("regularMarketPrice")) or points[-1][1]
    previous = number(meta.get("chartPreviousClose")) or points[0][1]
    name = meta.get("longName") or meta.get("shortName")
    return PriceSeries(
        symbol=symbol,
        range=range_,
        currency=str(meta.get("currency") or "USD")[:8],
        times=tuple(t for t, _ in points),
        closes=tuple(c for _, c in points),
        price=price,
        previous_close=previous if previous > 0 else None,
        name=str(name)[:60] if name else None,
    )


def _points(result: dict[str, Any]) -> list[tuple[float, float]]:
    """(timestamp, close) pairs with a real close; bars without a trade are left out."""
    times = result.get("timestamp") or []
    closes = result["indicators"]["quote"][0].get("close") or []
    pairs = ((number(t), number(c)) for t, c in zip(times, closes, strict=False))
    return [(t, c) for t, c in pairs if t is not None and c is not None and c > 0]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Several symbols over one range as % change; `missing` had no prices (named, not drawn)."""

    range: str
    series: tuple[PriceSeries, ...]
    missing: tuple[str, ...]
    png: bytes

    @property
    def filename(self) -> str:
        return f"watchlist-{self.range}.png"

    def summary(self) -> str:
        """'Watchlist 1mo (% change): AAPL +3.10%, TSLA -2.45%; no prices for XYZ'."""
        moves = ", ".join(f"{s.symbol} {percent_change(s)[-1]:+.2f}%" for s in self.series)
        gone = f"; no prices for {', '.join(self.missing)}" if self.missing else ""
        return f"Watchlist {self.range} (% change): {moves}{gone}"


def percent_change(series: PriceSeries) -> list[float]:
    """Each close as % change from the range's first close."""
    first = series.closes[0]
    return [(close - first) / first * 100 for close in series.closes]


def _figure() -> Any:
    """A phone-readable figure on the Agg backend. matplotlib is imported here, on first use
    (a bot that draws no chart never loads it)."""
    import matplotlib

    matplotlib.use("Agg")  # no display; a Figure without pyplot is safe in a worker thread
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)


def _dates(axes: Any, times: tuple[float, ...]) -> Any:
    """The x values for `times`, with concise date labels on `axes`."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num

    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    return date2num([datetime.fromtimestamp(t, UTC) for t in times])


def _png(figure: Any) -> bytes:
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def render_comparison_png(range_: str, series: tuple[PriceSeries, ...]) -> bytes:
    """One line per symbol, as % change, with a legend and a zero line."""
    figure = _figure()
    axes = figure.add_subplot()
    for one in series:
        axes.plot(_dates(axes, one.times), percent_change(one), linewidth=2, label=one.symbol)
    axes.axhline(0, color="#888888", linewidth=1)
    axes.set_ylabel("% change")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", ncol=min(len(series), 5))
    axes.set_title(f"Watchlist · {range_} · % change", fontsize=15, loc="left")
    return _png(figure)


ACTIVITY_DAYS = 30  # the admin /stats picture: turns per day over this many days


def render_activity_png(
    turns_by_day: Mapping[int, int], today: int, delegations: Mapping[str, int]
) -> bytes:
    """Admin /stats as a picture: turns per UTC day (day numbers, epoch seconds // 86400) over
    the ACTIVITY_DAYS ending `today` (days without turns drawn as 0), and delegations per
    agent."""
    figure = _figure()
    turns_axes, agents_axes = figure.subplots(1, 2, width_ratios=(3, 1))
    days = range(today - ACTIVITY_DAYS + 1, today + 1)
    when = _dates(turns_axes, tuple(float(day * 86_400) for day in days))
    turns_axes.bar(when, [turns_by_day.get(day, 0) for day in days], color="#0969da")
    turns_axes.set_title(f"Turns per day · last {ACTIVITY_DAYS} days (UTC)", loc="left")
    turns_axes.grid(axis="y", alpha=0.3)
    names = sorted(delegations) or ["none"]
    agents_axes.barh(names, [delegations.get(n, 0) for n in names], color="#8250df")
    agents_axes.set_title("Delegations per agent", loc="left")
    agents_axes.grid(axis="x", alpha=0.3)
    return _png(figure)


def render_png(series: PriceSeries) -> bytes:
    """A line chart: title with name and range, last price, change and currency."""
    figure = _figure()
    axes = figure.add_subplot()
    when = _dates(axes, series.times)
    change = series.change or 0.0
    colour = "#1a7f37" if change >= 0 else "#cf222e"
    axes.plot(when, series.closes, color=colour, linewidth=2)
    axes.fill_between(when, series.closes, min(series.closes), color=colour, alpha=0.08)
    axes.set_ylabel(series.currency)
    axes.grid(alpha=0.3)
    title = f"{series.name} ({series.symbol})" if series.name else series.symbol
    axes.set_title(f"{title} · {series.range}", fontsize=15, loc="left")
    figure.suptitle(series.summary(), x=0.99, ha="right", fontsize=11, color=colour)
    return _png(figure)


class Charts:
    """Fetches, renders and caches charts. Safe to share between tasks."""

    def __init__(
        self,
        quotes: QuoteProvider,
        *,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = CACHE_SECONDS,
    ) -> None:
        self._quotes = quotes
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, Chart]] = {}

    async def chart(self, raw_symbol: str, range_: str = DEFAULT_RANGE) -> Chart:
        """The chart, or a QuoteError whose text says why there is none."""
        symbol = normalize_ticker(raw_symbol)
        if range_ not in RANGES:
            raise ValueError(f"unknown range {range_!r}")
        key = (symbol, range_)
        cached = self._cache.get(key)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        series = await self._series(symbol, range_)
        chart = Chart(series, await asyncio.to_thread(render_png, series))
        self._remember(key, chart)
        return chart

    async def compare(self, raw_symbols: list[str], range_: str = DEFAULT_RANGE) -> Comparison:
        """The symbols as % change over `range_`; those without prices are named in `missing`.
        None with prices: the first failure's QuoteError (no chart from nothing)."""
        if range_ not in RANGES:
            raise ValueError(f"unknown range {range_!r}")
        symbols = list(dict.fromkeys(normalize_ticker(s) for s in raw_symbols))
        gate = asyncio.Semaphore(COMPARE_CONCURRENCY)
        found = await asyncio.gather(*(self._series_or_error(gate, s, range_) for s in symbols))
        drawn = tuple(s for s in found if isinstance(s, PriceSeries))
        if not drawn:
            raise next(e for e in found if isinstance(e, QuoteError))
        missing = tuple(sym for sym, s in zip(symbols, found, strict=True) if s not in drawn)
        png = await asyncio.to_thread(render_comparison_png, range_, drawn)
        return Comparison(range_, drawn, missing, png)

    async def _series_or_error(
        self, gate: asyncio.Semaphore, symbol: str, range_: str
    ) -> PriceSeries | QuoteError:
        async with gate:
            try:
                return await self._series(symbol, range_)
            except QuoteError as exc:
                return exc

    async def _series(self, symbol: str, range_: str) -> PriceSeries:
        data = await self._quotes.fetch_chart(symbol, {"range": range_, "interval": RANGES[range_]})
        return parse_series(symbol, range_, data)

    def _remember(self, key: tuple[str, str], chart: Chart) -> None:
        now = self._clock()
        self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self._ttl}
        self._cache[key] = (now, chart)
