"""Fixtures for the core tests: the real app (store, offline model, runner, core), no network."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from bot.app import App, open_app
from bot.messages import ChatKind, Incoming, Reply
from bot.settings import Settings

ADMIN = ("telegram", "1000")
# Nothing listens on port 9 (discard): a quote lookup fails fast instead of reaching a network.
NO_NETWORK = "http://127.0.0.1:9"


def make_settings(database_url: str, **extra: str) -> Settings:
    env = {
        "DATABASE_URL": database_url,
        "ADMIN_IDS": f"{ADMIN[0]}:{ADMIN[1]}",
        "QUOTES_BASE_URL": NO_NETWORK,
        "LLM_BASE_URL": NO_NETWORK,
        # Off here: bursts test ordering; the limits have their own tests (test_fairness*).
        "USER_RATE_LIMIT": "0",
        "USER_QUEUE_LIMIT": "1000",
        **extra,
    }
    return Settings.from_env(env, dotenv_path=None)


AppFactory = Callable[..., contextlib.AbstractAsyncContextManager[App]]


@pytest.fixture
def app_factory(db_url: str) -> AppFactory:
    """`async with app_factory() as app:` — the real composition root; reopen to 'restart'."""

    def factory(
        url: str | None = None, **extra: str
    ) -> contextlib.AbstractAsyncContextManager[App]:
        return open_app(make_settings(url or db_url, **extra))

    return factory


@pytest.fixture
async def app(app_factory: AppFactory) -> AsyncIterator[App]:
    async with app_factory() as opened:
        yield opened


def incoming(
    text: str,
    *,
    user: str = "42",
    platform: str = "telegram",
    chat: str | None = None,
    message_id: str | None = None,
    name: str | None = "Ada",
    group: bool = False,
    addressed: bool = True,
    kind: str = "text",
    extra: dict | None = None,
) -> Incoming:
    return Incoming(
        platform=platform,
        platform_user_id=user,
        chat_id=chat or (f"group-{user}" if group else user),
        message_id=message_id or uuid.uuid4().hex,
        text=text,
        display_name=name,
        chat_kind=ChatKind.GROUP if group else ChatKind.PRIVATE,
        addressed=addressed,
        kind=kind,
        extra=extra or {},
    )


async def replies(app: App, message: Incoming) -> list[Reply]:
    """Drive `handle` to its end, as an adapter does; only the replies with content (not the
    partial ones, not the typing signal)."""
    return [r async for r in app.core.handle(message) if not (r.partial or r.typing)]


async def say(app: App, text: str, **kwargs) -> str:
    """The text of the replies to one message, joined."""
    return "\n".join(r.text for r in await replies(app, incoming(text, **kwargs)))
