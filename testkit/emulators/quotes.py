"""A Yahoo Finance chart endpoint emulator: `GET /v8/finance/chart/{SYMBOL}?range=..&interval=..`.

Serves the real provider's JSON shape (meta.regularMarketPrice, chartPreviousClose, currency,
two daily closes in indicators.quote[0].close) for the symbols a test sets in `prices`; unknown
symbols get Yahoo's 404 body. `mode` injects failures: "error" (HTTP 500), "garbage" (not
JSON), "bad_shape" (JSON without a price), "hang" (never answers). Any range but "2d" answers
a price series (`SERIES_POINTS` closes from below the previous close up to the price, with
`chartPreviousClose` its first close); symbols in `empty` answer the shape Yahoo gives a range
without trades: meta, but no `timestamp` and an empty quote. Requests are recorded, with
how many were being answered at once (`in_flight`, `max_in_flight`); clearing `gate` holds every
answer until it is set again, so a test can see how many requests a client has open together.
`set_price` scripts a price path while a test runs (a price alert's crossing, a day's move);
`market_time` sets the quotes' regularMarketTime (a test's clock).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web


@dataclass(frozen=True)
class Listing:
    price: float
    previous_close: float
    currency: str = "USD"
    name: str | None = None


SERIES_POINTS = 22
RANGE_DAYS = {"1d": 1, "5d": 5, "1mo": 30, "6mo": 182, "1y": 365}

DEFAULT_PRICES = {
    "AAPL": Listing(187.42, 185.1, "USD", "Apple Inc."),
    "TSLA": Listing(251.03, 256.9, "USD", "Tesla, Inc."),
    "MSFT": Listing(411.27, 409.0, "USD", "Microsoft Corporation"),
}


class QuotesEmulator:
    def __init__(self, prices: dict[str, Listing] | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)
        self.mode = "ok"
        self.empty: set[str] = set()
        self.market_time: float | None = None  # regularMarketTime; None: the wall clock
        self.requests: list[tuple[str, dict[str, str]]] = []  # (symbol, query)
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def set_price(self, symbol: str, price: float, change: float | None = None) -> None:
        """Script a price path at run time: `symbol` now trades at `price`, `change` percent
        from the previous close (None: the previous close stays as it was, or is the price)."""
        old = self.prices.get(symbol)
        if change is not None:
            previous = price / (1 + change / 100)
        else:
            previous = old.previous_close if old is not None else price
        currency, name = (old.currency, old.name) if old is not None else ("USD", None)
        self.prices[symbol] = Listing(price, previous, currency, name)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/v8/finance/chart/{symbol}", self._chart)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chart(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        self.requests.append((symbol, dict(request.query)))
        self.headers.append(dict(request.headers))
        await self.gate.wait()
        if self.mode == "hang":
            await self._closing.wait()
        if self.mode in ("error", "hang"):
            return web.Response(status=500, text="Internal Server Error")
        if self.mode == "garbage":
            return web.Response(text="<html>Will be right back...</html>", content_type="text/html")
        listing = self.prices.get(symbol.upper())
        if listing is None:
            body = {
                "chart": {
                    "result": None,
                    "error": {
                        "code": "Not Found",
                        "description": "No data found, symbol may be delisted",
                    },
                }
            }
            return web.json_response(body, status=404)
        if request.query.get("range", "2d") != "2d":
            return web.json_response(self._series(symbol.upper(), listing, request.query))
        return web.json_response(self._body(symbol.upper(), listing))

    def _body(self, symbol: str, listing: Listing) -> dict[str, Any]:
        now = int(self.market_time or time.time())
        meta: dict[str, Any] = {
            "currency": listing.currency,
            "symbol": symbol,
            "exchangeName": "NMS",
            "instrumentType": "EQUITY",
            "regularMarketTime": now,
            "regularMarketPrice": listing.price,
            # The close before the 2-day range: deliberately not yesterday's close.
            "chartPreviousClose": round(listing.previous_close * 0.97, 2),
            "priceHint": 2,
            "dataGranularity": "1d",
            "range": "2d",
        }
        if listing.name:
            meta["longName"] = listing.name
            meta["shortName"] = listing.name
        if self.mode == "bad_shape":
            del meta["regularMarketPrice"]
        return {
            "chart": {
                "result": [
                    {
                        "meta": meta,
                        "timestamp": [now - 86_400, now],
                        "indicators": {
                            "quote": [
                                {
                                    "close": [listing.previous_close, listing.price],
                                    "open": [listing.previous_close, listing.previous_close],
                                    "volume": [1_000_000, 900_000],
                                }
                            ]
                        },
                    }
                ],
                "error": None,
            }
        }

    def _series(self, symbol: str, listing: Listing, query: Any) -> dict[str, Any]:
        """A range's closes: a wave rising from below the previous close to the price."""
        now = int(time.time())
        start = listing.previous_close * 0.95
        closes = [
            round(start + (listing.price - start) * i / (SERIES_POINTS - 1) + math.sin(i) * 0.8, 2)
            for i in range(SERIES_POINTS)
        ]
        closes[-1] = listing.price
        meta = self._body(symbol, listing)["chart"]["result"][0]["meta"]
        meta.update(chartPreviousClose=start, range=query.get("range"))
        meta["dataGranularity"] = query.get("interval")
        result: dict[str, Any] = {"meta": meta, "indicators": {"quote": [{}]}}
        if symbol not in self.empty:
            step = RANGE_DAYS.get(str(query.get("range")), 30) * 86_400 // (SERIES_POINTS - 1)
            result["timestamp"] = [now - step * n for n in range(SERIES_POINTS - 1, -1, -1)]
            result["indicators"] = {"quote": [{"close": closes}]}
        return {"chart": {"result": [result], "error": None}}
