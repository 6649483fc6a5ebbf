"""Tokens and keys never reach a log line, whoever logs them and however."""

from __future__ import annotations

import io
import logging

import aiohttp
from aiohttp import web

from bot.logging_setup import REDACTED, setup_logging
from bot.settings import Settings

TG_TOKEN = "123456789:AAH-fake_token_value_for_tests_0123456"
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEy.fake.discord-token-value"
LLM_KEY = "sk-or-v1-0123456789abcdef-fake-key"


def settings() -> Settings:
    env = {
        "TELEGRAM_BOT_TOKEN": TG_TOKEN,
        "DISCORD_BOT_TOKEN": DISCORD_TOKEN,
        "OPENROUTER_API_KEY": LLM_KEY,
        "LOG_LEVEL": "DEBUG",
    }
    return Settings.from_env(env, dotenv_path=None)


def assert_clean(text: str) -> None:
    for secret in (TG_TOKEN, DISCORD_TOKEN, LLM_KEY, TG_TOKEN.split(":")[1]):
        assert secret not in text


def test_every_way_of_logging_a_secret_is_redacted(restore_logging, caplog) -> None:
    s = settings()
    out = io.StringIO()
    setup_logging(s.log_level, s.secrets, stream=out)
    url = f"https://api.telegram.org/bot{TG_TOKEN}/getUpdates"
    logging.getLogger("bot.x").info("HTTP Request: POST %s", url)
    logging.getLogger("adapters.discord").warning("login with %s failed", DISCORD_TOKEN)
    logging.getLogger("agents").error(f"auth header Bearer {LLM_KEY}")
    try:
        raise RuntimeError(f"connect failed for {url}")
    except RuntimeError:
        logging.getLogger("bot.y").exception("request failed")
    logging.getLogger("bot.z").info("db %s", "postgresql://app:hunter2@db:5432/x?password=pw1")
    text = out.getvalue()
    assert_clean(text)
    assert_clean(caplog.text)  # other handlers on the root (pytest's) are filtered too
    assert "hunter2" not in text and "pw1" not in text
    assert text.count(REDACTED) >= 6
    assert "connect failed for" in text and "Traceback" in text


def test_token_shaped_strings_are_redacted_without_settings(restore_logging) -> None:
    out = io.StringIO()
    setup_logging("INFO", (), stream=out)
    logging.getLogger("bot").info("https://api.telegram.org/bot%s/sendMessage", TG_TOKEN)
    assert TG_TOKEN not in out.getvalue()
    assert "/sendMessage" in out.getvalue()


def test_url_logging_libraries_are_quiet_even_at_debug(restore_logging) -> None:
    setup_logging("DEBUG", ())
    for name in ("httpx", "httpcore", "openai", "telegram", "discord"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING


async def test_a_real_http_client_request_with_a_token_url_leaves_no_token(
    restore_logging, caplog
) -> None:
    """httpx (PTB's transport) logs every request URL at INFO; here at DEBUG, nothing leaks."""
    import httpx

    async def get_me(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/bot{token}/getMe", get_me)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    out = io.StringIO()
    s = settings()
    setup_logging("DEBUG", s.secrets, stream=out)
    caplog.set_level(logging.DEBUG)
    try:
        async with httpx.AsyncClient() as client:
            resp = await client.post(f"http://127.0.0.1:{port}/bot{TG_TOKEN}/getMe")
            assert resp.status_code == 200
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/bot{TG_TOKEN}/nope") as resp,
        ):
            logging.getLogger("adapters").warning("HTTP %s for %s", resp.status, resp.url)
    finally:
        await runner.cleanup()
    assert_clean(out.getvalue())
    assert_clean(caplog.text)
    assert "HTTP 404" in out.getvalue() or "HTTP 405" in out.getvalue()
