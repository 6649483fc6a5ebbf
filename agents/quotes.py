"""Stock quotes from Yahoo Finance's public chart endpoint (no key needed).

`GET {base}/v8/finance/chart/{SYMBOL}?range=2d&interval=1d` answers
`{"chart": {"result": [{"meta": {...}, "indicators": {"quote": [{"close": [...]}]}}], "error"}}`.
The price is `meta.regularMarketPrice`. The previous close is the second-to-last daily close when
the 2-day range has two bars (`chartPreviousClose` is the close *before* the range, i.e. two
sessions back), else `meta.previousClose`, else `chartPreviousClose`.
Any failure or malformed answer is `QuotesUnavailable`: a price is never made up.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote as urlquote

import aiohttp

from agents.observer import Observer, Unobserved
from agents.profile import MAX_TICKER_LENGTH, MAX_WATCHLIST, parse_ticker

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://query1.finance.yahoo.com"
# Yahoo refuses some default client user agents with 429; identify as a plain browser-ish client.
USER_AGENT = "Mozilla/5.0 (compatible; Switchboard/0.1; +https://github.com/)"
# One message looks up at most a full watchlist, a few requests at a time: a long list (or a
# model asking for hundreds) must not become hundreds of simultaneous requests to the provider.
MAX_QUOTES_PER_CALL = MAX_WATCHLIST
CONCURRENT_REQUESTS = 4


class QuoteError(Exception):
    """Base class: a quote could not be given. `str()` is a short user-facing reason."""


class InvalidTicker(QuoteError):
    pass


class UnknownTicker(QuoteError):
    pass


class QuotesUnavailable(QuoteError):
    pass


def normalize_ticker(raw: str) -> str:
    """The ticker rule of agents.profile, raising InvalidTicker for what it refuses."""
    symbol = parse_ticker(raw)
    if symbol is None:
        raise InvalidTicker(f"{str(raw)[:20]!r} is not a valid ticker symbol")
    return symbol


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    price: float
    previous_close: float | None
    currency: str
    name: str | None = None
    # When the price was set (UTC seconds; Yahoo's regularMarketTime): the trading day a
    # `move` alert counts in, so a stale change before the next open is not a new day's move.
    market_time: float | None = None

    @property
    def change(self) -> float | None:
        if self.previous_close is None:
            return None
        return self.price - self.previous_close

    @property
    def change_percent(self) -> float | None:
        previous = self.previous_close
        if previous is None or previous == 0:
            return None
        return (self.price - previous) / previous * 100

    def as_dict(self) -> dict[str, Any]:
        change, pct = self.change, self.change_percent
        return {
            "symbol": self.symbol,
            "name": self.name,
            "price": round(self.price, 4),
            "currency": self.currency,
            "previous_close": None
            if self.previous_close is None
            else round(self.previous_close, 4),
            "change": None if change is None else round(change, 4),
            "change_percent": None if pct is None else round(pct, 2),
        }


class QuoteProvider:
    """Async context manager owning its aiohttp session. Safe to share between tasks."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 5.0,
        *,
        max_per_call: int = MAX_QUOTES_PER_CALL,
        concurrency: int = CONCURRENT_REQUESTS,
        observer: Observer | None = None,
    ) -> None:
        self._observer = observer or Unobserved()  # counts failures by reason (bot.metrics)
        self._base = base_url.rstrip("/")
        self._max_per_call = max_per_call
        self._concurrency = concurrency
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> QuoteProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        # Created lazily so the provider can be built outside a running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def get_quote(self, raw_symbol: str) -> Quote:
        symbol = normalize_ticker(raw_symbol)
        data = await self.fetch_chart(symbol, {"range": "2d", "interval": "1d"})
        try:
            return parse_chart(symbol, data)
        except QuotesUnavailable:
            self._observer.quote_failure("malformed")
            raise

    async def fetch_chart(self, symbol: str, params: dict[str, str]) -> Any:
        """The chart endpoint's JSON for a normalized symbol; failures as QuoteError."""
        url = f"{self._base}/v8/finance/chart/{urlquote(symbol, safe='^=')}"
        try:
            async with self._http().get(url, params=params) as resp:
                if resp.status == 404:
                    raise UnknownTicker(f"I couldn't find a quote for {symbol}")
                if resp.status != 200:
                    log.warning("quotes: HTTP %s for %s", resp.status, symbol)
                    self._observer.quote_failure("http")
                    raise QuotesUnavailable("quotes are unavailable right now")
                return await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.warning("quotes: %s for %s: %s", type(exc).__name__, symbol, exc)
            self._observer.quote_failure("network")
            raise QuotesUnavailable("quotes are unavailable right now") from None

    async def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote | QuoteError]:
        """Quotes for the first `max_per_call` distinct symbols, `concurrency` requests at a time;
        each entry is a Quote or the reason it failed. Symbols past the bound have no entry."""
        wanted = list(dict.fromkeys(symbols))[: self._max_per_call]
        if len(wanted) < len(set(symbols)):
            log.warning("quotes: %d symbols asked, %d looked up", len(set(symbols)), len(wanted))
        gate = asyncio.Semaphore(self._concurrency)  # per call: one user's list, not everyone's
        down = asyncio.Event()

        async def one(symbol: str) -> Quote:
            # Once the provider is down (or hangs to its timeout), the symbols still waiting
            # fail at once: a list in rounds of `concurrency` would otherwise take one timeout
            # per round, far past the turn's deadline.
            async with gate:
                if down.is_set():
                    raise QuotesUnavailable("quotes are unavailable right now")
                try:
                    return await self.get_quote(symbol)
                except QuotesUnavailable:
                    down.set()
                    raise

        results = await asyncio.gather(*(one(s) for s in wanted), return_exceptions=True)
        return self._by_symbol(wanted, results)

    @staticmethod
    def _by_symbol(symbols: list[str], results: list[Any]) -> dict[str, Quote | QuoteError]:
        out: dict[str, Quote | QuoteError] = {}
        for symbol, result in zip(symbols, results, strict=True):
            if isinstance(result, QuoteError | Quote):
                out[symbol] = result
            else:  # an unexpected bug must not sink the other quotes
                log.error("quotes: unexpected %r for %s", result, symbol)
                out[symbol] = QuotesUnavailable("quotes are unavailable right now")
        return out


def chart_result(symbol: str, data: Any) -> dict[str, Any]:
    """`chart.result[0]` of the chart endpoint's answer (quotes and charts read the same
    envelope). UnknownTicker when the provider knows no such symbol; a malformed answer raises
    KeyError, IndexError, TypeError or AttributeError for the caller to call unavailable."""
    chart = data["chart"]
    if chart.get("error") and not chart.get("result"):
        raise UnknownTicker(f"I couldn't find a quote for {symbol}")
    result: dict[str, Any] = chart["result"][0]
    return result


def parse_chart(symbol: str, data: Any) -> Quote:
    try:
        result = chart_result(symbol, data)
        meta = result["meta"]
        price = number(meta["regularMarketPrice"])
        if price is None or price <= 0:
            raise ValueError("no price")
        previous = _previous_close(result, meta)
        currency = str(meta.get("currency") or "USD")[:8]
        name = meta.get("longName") or meta.get("shortName")
        market_time = number(meta.get("regularMarketTime"))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        log.warning("quotes: malformed answer for %s", symbol)
        raise QuotesUnavailable("quotes are unavailable right now") from None
    return Quote(
        symbol=str(meta.get("symbol") or symbol).upper()[:MAX_TICKER_LENGTH],
        price=price,
        previous_close=previous,
        currency=currency,
        name=str(name)[:80] if name else None,
        market_time=market_time,
    )


def _previous_close(result: dict[str, Any], meta: dict[str, Any]) -> float | None:
    try:
        closes = [number(c) for c in result["indicators"]["quote"][0]["close"]]
        closes = [c for c in closes if c is not None]
    except (KeyError, IndexError, TypeError):
        closes = []
    if len(closes) >= 2:
        return closes[-2]
    for key in ("previousClose", "chartPreviousClose"):
        value = number(meta.get(key))
        if value is not None and value > 0:
            return value
    return None


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
