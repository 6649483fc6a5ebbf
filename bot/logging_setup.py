"""One logging setup for the whole process, with secrets redacted from every line.

Tokens end up in log lines in surprising ways: httpx logs request URLs at INFO and the Telegram
token is part of every Bot API URL; exception messages quote URLs too. So redaction sits on the
root *handlers* (a filter on a logger would not see records propagated from child loggers), and it
rewrites the fully formatted message, the exception text and the stack text.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

REDACTED = "[REDACTED]"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# A Telegram bot token: "<bot id>:<35 url-safe chars>", wherever it appears (URL path or not).
_TELEGRAM_TOKEN = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}")
# Credentials in URLs: "https://user:secret@host" and "?token=..."/"&key=..." style parameters.
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
_URL_SECRET_PARAM = re.compile(
    r"(?P<key>[?&](?:token|key|api_key|apikey|secret|access_token|password)=)[^&\s#]+",
    re.IGNORECASE,
)
# Loggers that log request URLs (and so tokens) at INFO/DEBUG: keep them at WARNING.
NOISY_LOGGERS = (
    "httpx",
    "httpcore",
    "httpx2",
    "openai",
    "telegram",
    "telegram.ext",
    "discord",
    "discord.http",
    "discord.gateway",
    "aiosqlite",
    "asyncio",
)


class RedactingFilter(logging.Filter):
    """Replace every known secret and every token-shaped string in a record with [REDACTED]."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is removed whole.
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _TELEGRAM_TOKEN.sub(REDACTED, text)
        text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
        return _URL_SECRET_PARAM.sub(lambda m: f"{m['key']}{REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """LOG_FORMAT=json: one JSON object per line, for log shippers. It formats the record the
    handler's RedactingFilter already rewrote, so redaction applies to every field."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False)


def setup_logging(
    level: str = "INFO",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    *,
    fmt: str = "text",
) -> RedactingFilter:
    """Configure the root logger once (idempotent: replaces handlers set up earlier by us).
    `fmt`: "text" (LOG_FORMAT above) or "json" (JsonFormatter).

    Returns the filter so callers (tests) can redact text the same way.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_switchboard", False):
            root.removeHandler(handler)
    redactor = RedactingFilter(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(LOG_FORMAT))
    handler._switchboard = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    # Handlers installed by others (pytest's capture, a platform's log shipper) get it too.
    for other in root.handlers:
        _replace_filter(other, redactor)
    root.setLevel(level.upper())
    quiet = max(logging.WARNING, logging.getLevelName(level.upper()))
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    return redactor


def _replace_filter(handler: logging.Handler, redactor: RedactingFilter) -> None:
    for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
        handler.removeFilter(old)
    handler.addFilter(redactor)
