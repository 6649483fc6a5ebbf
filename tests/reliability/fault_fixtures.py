"""Shared pieces of the reliability suite (faults, hostile input, secrets, privacy).

Everything is the real thing: `bot.app.open_app` (store, model client, runner, core) configured
through `Settings.from_env`, pointed at the project's emulators on 127.0.0.1. Helpers here build
that configuration, drive the core like an adapter does, and search a database's raw rows
(testkit.databases.dump_rows) so a test can say "nothing about X is stored anywhere".
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bot.app import App, open_app
from bot.messages import ChatKind, Incoming, Reply
from bot.settings import Settings
from storage import Event
from testkit.databases import Row
from testkit.emulators.llm import Request, Say, Script, Step

APP = "reliability-tests"
ADMIN_TG = "1000"
ADMIN_DC = "2000"
# Nothing listens on port 9 (discard): a lookup there fails fast instead of reaching a network.
NO_NETWORK = "http://127.0.0.1:9"
# Recognisable fake secrets: shaped like the real ones (so the log redaction's patterns would
# match them) and easy to grep for in logs and rows.
TG_TOKEN = "123456:SECRET-TG-reliability_token_0123456789ab"
DC_TOKEN = "OTAwMDAwMDAwMDAwMDAwMDAx.GSECRT.SECRET-DC-reliability_token_0123"
LLM_KEY = "sk-or-SECRET-reliability-key-0123456789abcdef"
WEBHOOK_SECRET = "SECRET-WH-reliability"
SECRETS = (TG_TOKEN, TG_TOKEN.split(":", 1)[1], DC_TOKEN, LLM_KEY, WEBHOOK_SECRET)


def settings(database_url: str, **extra: str) -> Settings:
    """The whole configuration as environment variables (docs/architecture.md,
    "Configuration"), no `.env` read."""
    env = {
        "DATABASE_URL": database_url,
        "ADMIN_IDS": f"telegram:{ADMIN_TG},discord:{ADMIN_DC}",
        "QUOTES_BASE_URL": NO_NETWORK,
        "LLM_BASE_URL": NO_NETWORK,
        "APP_NAME": APP,
        # The per-user limits are tested on their own (test_fairness*); here a user's
        # messages may arrive all at once.
        "USER_RATE_LIMIT": "0",
        "USER_QUEUE_LIMIT": "1000",
        **extra,
    }
    return Settings.from_env(env, dotenv_path=None)


def llm_env(base_url: str, *, timeout: int = 2, retries: int = 1) -> dict[str, str]:
    """Settings that switch on the real OpenAI-compatible client, pointed at the emulator."""
    return {
        "OPENROUTER_API_KEY": LLM_KEY,
        "LLM_BASE_URL": base_url,
        "LLM_MODEL": "test/model",
        "LLM_TIMEOUT": str(timeout),
        "LLM_MAX_RETRIES": str(retries),
        "MEMORY_EXTRACTION": "tools",  # scripted per turn: no extraction call after each
        "COMPACT_AFTER": "0",  # nor a summariser call once a long test's history grows
    }


@contextlib.asynccontextmanager
async def running_app(database_url: str, **extra: str) -> AsyncIterator[App]:
    async with open_app(settings(database_url, **extra)) as app:
        yield app


def message(
    text: str,
    *,
    user: str = "42",
    platform: str = "telegram",
    group: bool = False,
    message_id: str | None = None,
    name: str | None = "Ada",
    extra: dict[str, Any] | None = None,
    addressed: bool = True,
) -> Incoming:
    return Incoming(
        platform=platform,
        platform_user_id=user,
        chat_id=f"-100{user}" if group else user,
        message_id=message_id or uuid.uuid4().hex,
        text=text,
        display_name=name,
        chat_kind=ChatKind.GROUP if group else ChatKind.PRIVATE,
        addressed=addressed,
        extra=extra or {},
    )


@dataclass
class Answer:
    replies: list[Reply]  # every reply, partial and typing ones included
    seconds: float

    @property
    def typing(self) -> int:
        return sum(r.typing for r in self.replies)

    @property
    def final(self) -> list[Reply]:
        return [r for r in self.replies if not (r.partial or r.typing)]

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.final)


async def ask(app: App, incoming: Incoming) -> Answer:
    """Drive `handle` to its end, as an adapter does (so the inbox row gets closed)."""
    started = time.monotonic()
    replies = [reply async for reply in app.core.handle(incoming)]
    return Answer(replies, time.monotonic() - started)


async def user_events(app: App, platform: str, platform_user_id: str) -> list[Event]:
    """The user's whole stored history (every session), oldest first."""
    user_id = await app.store.find_user(platform, platform_user_id)
    if user_id is None:
        return []
    return await app.store.history(APP, user_id, limit=1000)


def routed(choose: Callable[[Request], Step], times: int = 200) -> list[Script]:
    """Script steps that pick the emulator's answer from the request (by the user's words)."""

    def step(body: dict[str, Any]) -> Step:
        return choose(Request(body, {}))

    return [step] * times


def by_keyword(table: dict[str, Step], default: Step | None = None) -> Callable[[Request], Step]:
    """First keyword found in the last user message chooses the step; else `default`."""

    def choose(request: Request) -> Step:
        text = request.last_user_text.lower()
        for keyword, chosen in table.items():
            if keyword in text:
                return chosen
        return default or Say("All good here.")

    return choose


# -- raw rows ------------------------------------------------------------------------------
def rows_mentioning(rows: Iterable[Row], needle: str) -> list[Row]:
    """Rows whose text (any column, bytes decoded, JSON escapes included) contains `needle`.
    Times (floats) are left out: an id is never kept in one, and a timestamp's digits can hold a
    short id by chance ("1796427023.1000133" holds "1000")."""
    found = []
    for table, values in rows:
        text = " ".join(
            v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else str(v)
            for v in values
            if not isinstance(v, float)
        )
        if needle in text or needle.encode("unicode_escape").decode() in text:
            found.append((table, values))
    return found
