"""Connecting to a platform at start: retried with backoff within `STARTUP_TIMEOUT`, then one
line for the operator (docs/architecture.md, "Command line": exit codes).

A platform that is down for a moment should not stop the bot, and one that stays down should
not keep it starting forever (a supervisor then sees the exit and the line). Messages quote a
URL by its origin only: an endpoint may carry credentials, and `python -m bot` prints the line
outside the log redaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from bot.messages import StartupError

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_DELAY = 0.5  # seconds before the second attempt, doubling after
MOST_DELAY = 8.0


async def keep_trying(
    attempt: Callable[[], Awaitable[T]],
    *,
    retryable: tuple[type[BaseException], ...],
    budget: float,
    what: str,
    setting: str,
    began: float | None = None,
) -> T:
    """`attempt()` until it succeeds. Errors of `retryable` types are retried with a doubling
    delay until `budget` seconds after `began` (the event loop's time; default: now), a hung
    attempt included, then `StartupError` naming `what` is unreachable and the `setting` that
    points at it; other errors propagate."""
    delay = FIRST_DELAY
    start = asyncio.get_running_loop().time() if began is None else began
    deadline = asyncio.timeout_at(start + budget)
    try:
        async with deadline:
            while True:
                try:
                    return await attempt()
                except retryable as exc:
                    log.warning("%s unreachable (%s); retrying in %.1fs", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MOST_DELAY)
    except TimeoutError:
        if not deadline.expired():
            raise  # an attempt's own timeout, not the budget's
        raise StartupError(
            f"Cannot reach {what} ({setting}) within {budget:g}s (STARTUP_TIMEOUT)"
        ) from None


def origin(url: str) -> str:
    """scheme://host[:port] of `url`: what an error may quote of an endpoint."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # not a number: quote none of it
        port = None
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{port}" if port else "")
