"""The configuration contract (docs/architecture.md, "Configuration"): one frozen object, read
from the environment and `.env`.

A missing or malformed value fails at startup with a message that names the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from storage.urls import UrlError
from storage.urls import check as check_database_url

DEFAULT_TELEGRAM_API_BASE = "https://api.telegram.org/bot"
DEFAULT_LLM_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_LLM_MODEL = "openai/gpt-4o-mini"
DEFAULT_DATABASE_URL = "sqlite:///./multi_agent_data.db"
DEFAULT_QUOTES_BASE_URL = "https://query1.finance.yahoo.com"
DEFAULT_APP_NAME = "Multi-Agent System"
DEFAULT_STARTUP_TIMEOUT = 30
# What @BotFather hands out: the bot's id, a colon, 35 characters (a little leeway either way).
_TELEGRAM_TOKEN = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{30,64}")
# Discord's: three base64url parts joined by dots (user id, timestamp, signature).
_DISCORD_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
PLATFORMS = ("telegram", "discord", "console")
MEMORY_EXTRACTION_MODES = ("auto", "tools", "off")
Getter = Callable[[str], "str | None"]


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`count` messages per `per_seconds` (a token bucket of that size, refilled evenly)."""

    count: int
    per_seconds: float


DEFAULT_USER_RATE_LIMIT = RateLimit(20, 60.0)
_RATE = re.compile(r"(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)", re.IGNORECASE)
_RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class Settings:
    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_api_base: str = DEFAULT_TELEGRAM_API_BASE
    telegram_mode: str = "polling"
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_listen: str = "0.0.0.0"
    port: int = 8080
    discord_bot_token: str | None = field(default=None, repr=False)
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    discord_guild_id: int | None = None
    discord_shard_ids: tuple[int, ...] | None = None
    discord_shard_count: int | None = None
    # Seconds a platform may stay unreachable at start (retried with backoff) before giving up.
    startup_timeout: float = float(DEFAULT_STARTUP_TIMEOUT)
    llm_api_key: str | None = field(default=None, repr=False)
    llm_base_url: str = DEFAULT_LLM_BASE_URL
    llm_model: str = DEFAULT_LLM_MODEL
    llm_timeout: float = 30.0
    llm_max_retries: int = 2
    database_url: str = DEFAULT_DATABASE_URL
    admin_ids: frozenset[str] = frozenset()
    quotes_base_url: str = DEFAULT_QUOTES_BASE_URL
    app_name: str = DEFAULT_APP_NAME
    log_level: str = "INFO"
    # A turn loads the latest compaction summary and at most `history_window` events after it;
    # a summary is appended once more than `compact_after` follow it (0: never, a sliding window).
    history_window: int = 100
    compact_after: int = 40
    # Per-user fairness: messages per window (None = no limit; admins are exempt) and how many
    # of one user's messages may wait for their turn at once.
    user_rate_limit: RateLimit | None = None
    user_queue_limit: int = 5
    llm_max_tokens: int = 1024
    health_port: int | None = None  # /healthz /readyz /metrics (bot/health.py); None: off
    log_format: str = "text"  # "text" or "json" (one object per line)
    otel_endpoint: str | None = None  # OTLP/HTTP traces (bot/tracing.py); None: no tracing
    # Long-term memory: "auto" (tools, plus extraction after each turn with a real LLM), "tools"
    # (the memory tools only) or "off"; and the bound of each turn's memory block.
    memory_extraction: str = "auto"
    memory_prompt_chars: int = 1500
    memory_limit: int = 200  # memories kept per user; beyond it the least recently updated goes
    # Seconds between two quote polls of the price alerts (bot/scheduler.py); 1 is for tests.
    alert_poll_seconds: int = 60
    # How long a worker reserves a proactive message it is sending (bot/scheduler.py): one left
    # by a worker that died mid-send goes out again this long later. Longer than a send takes.
    outbox_lease_seconds: int = 15

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line."""
        values = (
            self.telegram_bot_token,
            self.discord_bot_token,
            self.llm_api_key,
            self.webhook_secret,
        )
        return tuple(v for v in values if v)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
    ) -> Settings:
        """Read settings. The process environment wins over `.env`."""
        env: dict[str, str] = {}
        if dotenv_path is not None and Path(dotenv_path).is_file():
            env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        env.update(os.environ if environ is None else environ)
        return _parse(env)


def _parse(env: Mapping[str, str]) -> Settings:
    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    mode = (get("TELEGRAM_MODE") or "polling").lower()
    if mode not in ("polling", "webhook"):
        raise SettingsError(f"TELEGRAM_MODE must be 'polling' or 'webhook', got {mode!r}")
    if mode == "webhook" and get("TELEGRAM_BOT_TOKEN"):
        if not get("WEBHOOK_URL"):
            raise SettingsError("WEBHOOK_URL is required when TELEGRAM_MODE=webhook")
        if not get("WEBHOOK_SECRET"):
            # Without it anyone who finds the URL can post updates as any user (an admin too).
            raise SettingsError("WEBHOOK_SECRET is required when TELEGRAM_MODE=webhook")
    database_url = get("DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        check_database_url(database_url)  # its forms are storage's; here they stop the start
    except UrlError as exc:
        raise SettingsError(f"DATABASE_URL: {exc}") from None
    _check_shards(_int_list(get, "DISCORD_SHARD_IDS"), _opt_int(get, "DISCORD_SHARD_COUNT"))
    level = (get("LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    log_format = (get("LOG_FORMAT") or "text").lower()
    if log_format not in ("text", "json"):
        raise SettingsError(f"LOG_FORMAT must be 'text' or 'json', got {log_format!r}")
    return Settings(
        telegram_bot_token=_token(
            get, "TELEGRAM_BOT_TOKEN", _TELEGRAM_TOKEN, "<digits>:<35 characters>"
        ),
        telegram_api_base=_telegram_api_base(get),
        telegram_mode=mode,
        webhook_url=_url(get, "WEBHOOK_URL"),
        webhook_secret=get("WEBHOOK_SECRET"),
        webhook_listen=get("WEBHOOK_LISTEN") or "0.0.0.0",
        port=_int(get, "PORT", 8080, low=1, high=65535),
        discord_bot_token=_token(
            get, "DISCORD_BOT_TOKEN", _DISCORD_TOKEN, "three parts joined by dots"
        ),
        discord_api_base=_url(get, "DISCORD_API_BASE"),
        discord_gateway_url=_url(get, "DISCORD_GATEWAY_URL", schemes=("ws://", "wss://")),
        discord_guild_id=_opt_int(get, "DISCORD_GUILD_ID"),
        discord_shard_ids=_int_list(get, "DISCORD_SHARD_IDS"),
        discord_shard_count=_opt_int(get, "DISCORD_SHARD_COUNT"),
        startup_timeout=float(
            _int(get, "STARTUP_TIMEOUT", DEFAULT_STARTUP_TIMEOUT, low=1, high=3600)
        ),
        llm_api_key=get("OPENROUTER_API_KEY") or get("OPENAI_API_KEY"),
        llm_base_url=_url(get, "LLM_BASE_URL") or DEFAULT_LLM_BASE_URL,
        llm_model=get("LLM_MODEL") or DEFAULT_LLM_MODEL,
        llm_timeout=float(_int(get, "LLM_TIMEOUT", 30, low=1, high=600)),
        llm_max_retries=_int(get, "LLM_MAX_RETRIES", 2, low=0, high=10),
        database_url=database_url,
        admin_ids=_admin_ids(get("ADMIN_IDS")),
        quotes_base_url=_url(get, "QUOTES_BASE_URL") or DEFAULT_QUOTES_BASE_URL,
        app_name=get("APP_NAME") or DEFAULT_APP_NAME,
        log_level=level,
        history_window=_int(get, "HISTORY_WINDOW", 100, low=1, high=1000),
        compact_after=_compact_after(get),
        user_rate_limit=_rate(get("USER_RATE_LIMIT")),
        user_queue_limit=_int(get, "USER_QUEUE_LIMIT", 5, low=1, high=1000),
        llm_max_tokens=_int(get, "LLM_MAX_TOKENS", 1024, low=16, high=200_000),
        health_port=_health_port(
            get, webhook=mode == "webhook" and bool(get("TELEGRAM_BOT_TOKEN"))
        ),
        log_format=log_format,
        otel_endpoint=_url(get, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        memory_extraction=_choice(get, "MEMORY_EXTRACTION", MEMORY_EXTRACTION_MODES),
        memory_prompt_chars=_int(get, "MEMORY_PROMPT_CHARS", 1500, low=200, high=20_000),
        memory_limit=_int(get, "MEMORY_LIMIT", 200, low=1, high=10_000),
        alert_poll_seconds=_int(get, "ALERT_POLL_SECONDS", 60, low=1, high=86_400),
        outbox_lease_seconds=_int(get, "OUTBOX_LEASE_SECONDS", 15, low=1, high=3_600),
    )


def _compact_after(get: Getter) -> int:
    """Below HISTORY_WINDOW (the load's cap), so a window is summarised before the cap cuts
    it; unset: 40, or half a smaller HISTORY_WINDOW."""
    window = _int(get, "HISTORY_WINDOW", 100, low=1, high=1000)
    value = _int(get, "COMPACT_AFTER", min(40, window // 2), low=0, high=999)
    if value >= window:
        raise SettingsError(
            f"COMPACT_AFTER must be below HISTORY_WINDOW ({window}), got {value} (0: off)"
        )
    return value


def _choice(get: Getter, name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (any case); the first when unset."""
    value = (get(name) or choices[0]).lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value[:40]!r}")
    return value


def _rate(value: str | None) -> RateLimit | None:
    """'20/min' -> RateLimit(20, 60); '0' turns the limit off; unset is the default."""
    if value is None:
        return DEFAULT_USER_RATE_LIMIT
    if value == "0":
        return None
    match = _RATE.fullmatch(value)
    if match is None or int(match[1]) < 1:
        raise SettingsError(
            f"USER_RATE_LIMIT must look like 20/min (or 5/s, 300/h; 0 = off), got {value!r}"
        )
    return RateLimit(int(match[1]), _RATE_UNITS[match[2][0].lower()])


def _token(get: Getter, name: str, shape: re.Pattern[str], looks: str) -> str | None:
    """A platform token of the platform's shape. A wrong one is refused before any network
    call (which would only retry and fail vaguely), and the message never quotes it."""
    value = get(name)
    if value is not None and not shape.fullmatch(value):
        raise SettingsError(f"{name} does not look like a bot token ({looks})")
    return value


def _telegram_api_base(get: Getter) -> str:
    """The Bot API base ends in /bot (PTB appends the token to it): added when left out, or the
    token would be glued onto the host or port."""
    base = _url(get, "TELEGRAM_API_BASE") or DEFAULT_TELEGRAM_API_BASE
    return base if base.endswith("/bot") else base + "/bot"


def _url(get: Getter, name: str, schemes: tuple[str, ...] = ("http://", "https://")) -> str | None:
    value = get(name)
    if value is not None and not value.startswith(schemes):
        raise SettingsError(f"{name} must be a URL starting with {' or '.join(schemes)}")
    return value.rstrip("/") if value else None


def _int(get: Getter, name: str, default: int, *, low: int, high: int) -> int:
    value = _opt_int(get, name)
    if value is None:
        return default
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _opt_int(get: Getter, name: str) -> int | None:
    value = get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {value!r}") from None


def _health_port(get: Getter, *, webhook: bool) -> int | None:
    value = _opt_int(get, "HEALTH_PORT")
    if value is None:
        return None
    if not 1 <= value <= 65535:
        raise SettingsError(f"HEALTH_PORT must be between 1 and 65535, got {value}")
    if webhook and value == _int(get, "PORT", 8080, low=1, high=65535):
        raise SettingsError(f"HEALTH_PORT must differ from PORT ({value}: the webhook server's)")
    return value


def _int_list(get: Getter, name: str) -> tuple[int, ...] | None:
    value = get(name)
    if value is None:
        return None
    try:
        return tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a comma list of whole numbers") from None


def _check_shards(ids: tuple[int, ...] | None, count: int | None) -> None:
    if count is not None and count < 1:
        raise SettingsError(f"DISCORD_SHARD_COUNT must be at least 1, got {count}")
    if ids is None:
        return
    if count is None:
        raise SettingsError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT (the total shard count)")
    bad = [i for i in ids if not 0 <= i < count]
    if bad or not ids:
        raise SettingsError(f"DISCORD_SHARD_IDS must be shard numbers from 0 to {count - 1}")


def _admin_ids(value: str | None) -> frozenset[str]:
    ids: set[str] = set()
    for raw in (value or "").split(","):
        item = raw.strip()
        if not item:
            continue
        platform, sep, user = item.partition(":")
        if not sep or platform not in PLATFORMS or not user:
            raise SettingsError(
                f"ADMIN_IDS entries must look like telegram:<id> or discord:<id>, got {item!r}"
            )
        ids.add(f"{platform}:{user}")
    return frozenset(ids)
