"""PTB's Bot API transport on aiohttp instead of httpx.

Why: bench/e2e.py found the bot spending about half its CPU inside httpx: PTB's default
HTTPXRequest costs 1.3 ms of CPU per Bot API call alone and 3.2 ms with 50 calls in flight
(httpcore checks every pooled connection on every request), against 0.2-0.3 ms for aiohttp on the
same calls. aiohttp is already a dependency (discord.py, the webhook server). PTB keeps doing
everything else (parameters, status codes -> TelegramError, rate limiting, retries).
"""

from __future__ import annotations

import asyncio

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


class AiohttpRequest(BaseRequest):
    """A telegram.request.BaseRequest on one aiohttp session (created in `initialize`)."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 256,
        connect_timeout: float = 5.0,
        read_timeout: float = 5.0,
        write_timeout: float = 5.0,
        pool_timeout: float = 1.0,
        media_write_timeout: float = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._connect = connect_timeout
        self._read = read_timeout
        self._write = write_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        # The last request got no answer (network error, timeout): readiness of the getUpdates
        # loop. Not "the last one answered": a long poll is answered only when it ends.
        self.failing = False

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT}
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        data = request_data.json_parameters if request_data else None
        # aiohttp has no write timeout: the wait for the answer gets write + read (None: none).
        write = _value(write_timeout, self._media_write if files else self._write)
        read = _value(read_timeout, self._read)
        pool, connect = _value(pool_timeout, self._pool), _value(connect_timeout, self._connect)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if pool is None or connect is None else pool + connect,
            sock_read=None if read is None else read + (write or 0.0),
        )
        body: aiohttp.FormData | dict[str, str] | None = data
        if files:
            body = aiohttp.FormData(data or {})
            for name, (filename, content, mime) in files.items():
                payload = content if isinstance(content, bytes) else content.read()
                body.add_field(name, payload, filename=filename, content_type=mime)
        try:
            async with self._session.request(method, url, data=body, timeout=timeout) as response:
                answer = response.status, await response.read()
        except TimeoutError as exc:
            self.failing = True
            raise TimedOut from exc
        except asyncio.CancelledError:
            raise
        except aiohttp.ClientError as exc:
            self.failing = True
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc
        self.failing = False
        return answer


def _value(given: ODVInput[float], default: float) -> float | None:
    """PTB's timeout arguments: DEFAULT_NONE means ours; None means no limit."""
    if isinstance(given, DefaultValue):
        return default
    return None if given is None else float(given)
