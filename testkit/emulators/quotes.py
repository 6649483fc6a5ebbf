"""A Yahoo Finance chart endpoint emulator: `GET /v8/finance/chart/{SYMBOL}?range=2d&interval=1d`.

Serves the real provider's JSON shape (meta.regularMarketPrice, chartPreviousClose, currency,
two daily closes in indicators.quote[0].close) for the symbols a test sets in `prices`; unknown
symbols get Yahoo's 404 body. `mode` injects failures: "error" (HTTP 500), "garbage" (not
JSON), "bad_shape" (JSON without a price), "hang" (never answers). Requests are recorded, with
how many were being answered at once (`in_flight`, `max_in_flight`); clearing `gate` holds every
answer until it is set again, so a test can see how many requests a client has open together.
"""

from __future__ import annotations

import asyncio
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


DEFAULT_PRICES = {
    "AAPL": Listing(187.42, 185.1, "USD", "Apple Inc."),
    "TSLA": Listing(251.03, 256.9, "USD", "Tesla, Inc."),
    "MSFT": Listing(411.27, 409.0, "USD", "Microsoft Corporation"),
}


class QuotesEmulator:
    def __init__(self, prices: dict[str, Listing] | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)
        self.mode = "ok"
        self.requests: list[tuple[str, dict[str, str]]] = []  # (symbol, query)
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

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
        return web.json_response(self._body(symbol.upper(), listing))

    def _body(self, symbol: str, listing: Listing) -> dict[str, Any]:
        now = int(time.time())
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
