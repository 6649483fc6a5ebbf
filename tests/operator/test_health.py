"""Health, readiness and metrics (docs/architecture.md, "Health and metrics"): `python -m bot`
with HEALTH_PORT on the Telegram emulator, scraped over HTTP like a platform's health checker
and Prometheus would; LOG_FORMAT=json; the settings' one-line errors."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.health import Health
from bot.logging_setup import setup_logging
from bot.metrics import Metrics
from storage import Store, open_store
from testkit.bot_process import REPO, TOKEN, BotProcess, Database
from testkit.databases import postgres_database
from testkit.emulators.discord_api import DiscordEmulator
from testkit.emulators.llm import Fail, LLMEmulator, Say, call
from testkit.emulators.telegram_api import TelegramApiEmulator

USER = 90417263
DISCORD_TOKEN = "OTAwMDAwMDAwMDAwMDAwMDAx.GFAKE1.health-SECRET-discord_token_0123456789"
TIMEOUT = 30.0  # a cold start of the process on a loaded machine
ASKED = ("tell me a joke, quokka", "a nerdy fact about space, quokka", "my name is Quokka")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Scraper:
    """GET the bot's endpoints as a health checker does."""

    def __init__(self, http: aiohttp.ClientSession, port: int) -> None:
        self._http, self._base = http, f"http://127.0.0.1:{port}"

    async def get(self, path: str) -> tuple[int, str]:
        try:
            async with self._http.get(self._base + path) as response:
                return response.status, await response.text()
        except aiohttp.ClientConnectionError:
            return 0, ""  # not listening yet

    async def status(self, path: str) -> int:
        return (await self.get(path))[0]

    async def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics, by name and labels."""
        status, text = await self.get("/metrics")
        assert status == 200
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


def total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(
        value
        for (sample, have), value in samples.items()
        if sample == name and set(labels.items()) <= set(have)
    )


@pytest.fixture
async def tg() -> AsyncIterator[TelegramApiEmulator]:
    async with TelegramApiEmulator(TOKEN) as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def started(
    tg: TelegramApiEmulator, url: str, tmp_path: Path, http: aiohttp.ClientSession, **env: str
) -> tuple[BotProcess, Scraper]:
    port = free_port()
    bot = BotProcess(
        tg, Database(url.split(":")[0], url), tmp_path, {"HEALTH_PORT": str(port), **env}
    )
    await bot.start()
    scraper = Scraper(http, port)
    await bot.until(lambda: _is(scraper.status("/readyz"), 200), TIMEOUT)
    return bot, scraper


async def _is(status: Any, wanted: int) -> bool:
    return await status == wanted


async def test_metrics_move_with_turns_and_readyz_fails_when_the_platform_goes(
    tg: TelegramApiEmulator, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    bot, scrape = await started(tg, url, tmp_path, http, LOG_FORMAT="json")
    try:
        assert await scrape.status("/healthz") == 200
        before = await scrape.samples()
        for text in ASKED:
            tg.private_text(USER, text)
        await bot.until(lambda: len(tg.texts(USER)) >= len(ASKED), TIMEOUT)
        # A message is marked answered just after its reply went out: wait for the last one.
        drained: list[dict] = []

        async def answered() -> bool:
            drained[:] = [await scrape.samples()]
            return total(drained[0], "switchboard_inbox_backlog") == 0

        await bot.until(answered, TIMEOUT)
        after = drained[0]

        def moved(name: str, **labels: str) -> float:
            return total(after, name, **labels) - total(before, name, **labels)

        turns = "switchboard_turn_seconds_count"
        assert moved(turns, platform="telegram") == len(ASKED)
        assert moved("switchboard_replies_sent_total", platform="telegram") >= len(ASKED)
        assert moved("switchboard_model_calls_total", model="offline", outcome="ok") >= len(ASKED)
        assert moved("switchboard_delegations_total", agent="funny_nerd") >= 1
        assert moved("switchboard_tool_calls_total", outcome="ok") >= len(ASKED)
        assert moved("switchboard_session_lock_wait_seconds_count") >= len(ASKED)
        # Labels are names, never who wrote or what.
        labels = {value for _, have in after for _, value in have}
        assert not [v for v in labels if str(USER) in v or "quokka" in v.lower()]

        await tg.close()  # the platform goes away
        await bot.until(lambda: _is(scrape.status("/readyz"), 503), TIMEOUT)
        status, body = await scrape.get("/readyz")
        assert status == 503
        assert json.loads(body)["not_ready"] == {"telegram": "not connected"}
        assert await scrape.status("/healthz") == 200  # alive, only not ready
    finally:
        await bot.close()
    log = bot.log.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any("health endpoints" in line["message"] for line in lines)
    assert TOKEN not in log


@pytest.mark.postgres
async def test_readyz_fails_when_the_database_stops_answering(
    tg: TelegramApiEmulator, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    import asyncpg

    async with postgres_database("operator") as url:
        bot, scrape = await started(tg, url, tmp_path, http)
        try:
            name = url.rsplit("/", 1)[1]
            admin = await asyncpg.connect(os.environ["TEST_POSTGRES_URL"])
            try:
                # The database is shut to new connections and every open one is ended: what a
                # database server going away looks like to the bot's pools.
                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                    name,
                )
                await bot.until(lambda: _is(scrape.status("/readyz"), 503), TIMEOUT)
                status, body = await scrape.get("/readyz")
                assert status == 503 and "database" in json.loads(body)["not_ready"]
                assert name not in body and "postgres" not in body.lower()
                assert await scrape.status("/metrics") == 200  # still scraped, minus the inbox
                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                await bot.until(lambda: _is(scrape.status("/readyz"), 200), TIMEOUT)
            finally:
                await admin.close()
        finally:
            await bot.close()


async def test_readiness_names_a_backlog_past_its_bound_and_the_inbox_gauges(
    tmp_path: Path,
) -> None:
    store: Store = await open_store(f"sqlite:///{tmp_path / 'bot.db'}")
    async with store:
        for n in range(3):
            await store.inbox_put("telegram", str(n), {"text": "hi"}, "u1")
        oldest = min(i.received_at for i in await store.inbox_pending())
        metrics = Metrics()
        health = Health(store, [], metrics, backlog_limit=2, clock=lambda: oldest + 90.0)
        assert await health.not_ready() == {"inbox": "more than 2 messages waiting"}
        samples = {
            s.name: s.value
            for f in text_string_to_metric_families(metrics.render().decode())
            for s in f.samples
        }
        assert samples["switchboard_inbox_backlog"] == 3
        assert samples["switchboard_inbox_oldest_pending_seconds"] == pytest.approx(90.0)
        for n in range(3):
            await store.inbox_done("telegram", str(n))
        assert await health.not_ready() == {}


def run_bot(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_API_KEY"))}
    clean.update(PYTHONPATH=str(REPO), DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}", **env)
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=clean,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )


WEBHOOK = {
    "TELEGRAM_BOT_TOKEN": TOKEN,
    "TELEGRAM_MODE": "webhook",
    "WEBHOOK_URL": "https://bot.example.com/hook",
    "WEBHOOK_SECRET": "s3cret-hook",
}


@pytest.mark.parametrize(
    ("name", "env"),
    [
        ("HEALTH_PORT", {"HEALTH_PORT": "eighty"}),
        ("HEALTH_PORT", {"HEALTH_PORT": "0"}),
        ("HEALTH_PORT", {"HEALTH_PORT": "8443", "PORT": "8443", **WEBHOOK}),
        ("LOG_FORMAT", {"LOG_FORMAT": "xml"}),
    ],
)
def test_a_bad_health_setting_is_one_line_naming_it(
    tmp_path: Path, name: str, env: dict[str, str]
) -> None:
    proc = run_bot(tmp_path, env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in proc.stderr
    assert TOKEN not in proc.stderr + proc.stdout and "s3cret-hook" not in proc.stderr


def test_a_health_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_bot(tmp_path, {"HEALTH_PORT": str(port)})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"Cannot listen on HEALTH_PORT {port}: Address already in use"
    ]


@pytest.mark.usefixtures("restore_logging")
def test_json_log_lines_are_one_object_each_and_redacted() -> None:
    out = io.StringIO()
    setup_logging("INFO", ("sk-very-secret",), out, fmt="json")
    log = logging.getLogger("switchboard.test")
    log.info("calling with %s and\na second line", "sk-very-secret")
    try:
        raise RuntimeError(f"failed at https://api.telegram.org/bot{TOKEN}/getMe")
    except RuntimeError:
        log.exception("the call failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # a newline inside a message stays inside its object
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "INFO" and first["logger"] == "switchboard.test"
    assert first["message"] == "calling with [REDACTED] and\na second line"
    assert second["message"] == "the call failed" and "RuntimeError" in second["exception"]
    assert TOKEN not in out.getvalue() and "sk-very-secret" not in out.getvalue()


async def test_readyz_names_discord_when_its_gateway_goes(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    emu = DiscordEmulator()
    await emu.__aenter__()
    open_ = True
    port = free_port()
    env = {
        "DISCORD_BOT_TOKEN": DISCORD_TOKEN,
        "DISCORD_API_BASE": emu.api_base,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
        "HEALTH_PORT": str(port),
    }
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    bot = BotProcess(None, Database("sqlite", url), tmp_path, env)
    scrape = Scraper(http, port)
    try:
        await bot.start()
        await bot.until(lambda: _is(scrape.status("/readyz"), 200), TIMEOUT)
        await emu.__aexit__(None, None, None)  # Discord goes away: the gateway closes
        open_ = False
        await bot.until(lambda: _is(scrape.status("/readyz"), 503), TIMEOUT)
        status, body = await scrape.get("/readyz")
        assert status == 503 and json.loads(body)["not_ready"] == {"discord": "not connected"}
        assert DISCORD_TOKEN not in bot.log.read_text()
    finally:
        await bot.close()
        if open_:
            await emu.__aexit__(None, None, None)


async def test_metrics_count_tokens_model_failures_quote_failures_and_refusals(
    tg: TelegramApiEmulator, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with LLMEmulator() as llm:
        llm.script(
            # A quote asked for: handed to the analyst, whose lookup fails (nothing listens on
            # QUOTES_BASE_URL), and who says so.
            Say(tool_calls=[call("transfer_to_agent", agent_name="stock_analyst")]),
            Say(tool_calls=[call("get_quote", symbol="AAPL")], prompt_tokens=30),
            Say("Quotes are unavailable right now.", completion_tokens=9),
            # The next message finds the model down.
            Fail(500),
        )
        url = f"sqlite:///{tmp_path / 'bot.db'}"
        env = {
            "OPENAI_API_KEY": "sk-health-test-key",
            "LLM_BASE_URL": llm.base_url,
            "LLM_MODEL": "test/model",
            "LLM_MAX_RETRIES": "0",
            "USER_RATE_LIMIT": "2/min",
            "MEMORY_EXTRACTION": "tools",  # scripted per turn: no extraction call after each
        }
        bot, scrape = await started(tg, url, tmp_path, http, **env)
        try:
            tg.private_text(USER, "what is AAPL at, quokka?")
            await bot.until(lambda: len(tg.texts(USER)) >= 1, TIMEOUT)
            tg.private_text(USER, "and now, quokka?")
            await bot.until(lambda: len(tg.texts(USER)) >= 2, TIMEOUT)
            tg.private_text(USER, "one too many, quokka")  # past 2/min: refused
            await bot.until(lambda: len(tg.texts(USER)) >= 3, TIMEOUT)
            samples = await scrape.samples()

            def count(name: str, **labels: str) -> float:
                return total(samples, name, **labels)

            ok = {"model": "test/model", "outcome": "ok"}
            assert count("switchboard_model_calls_total", **ok) == 3
            failed = {"model": "test/model", "outcome": "unavailable"}
            assert count("switchboard_model_calls_total", **failed) == 1
            tokens = "switchboard_tokens_total"
            assert count(tokens, agent="stock_analyst", kind="prompt") == 30 + 11
            assert count(tokens, agent="stock_analyst", kind="completion") == 7 + 9
            assert count(tokens, agent="manager", model="test/model") == 11 + 7
            assert count("switchboard_delegations_total", agent="stock_analyst") == 1
            # The lookup failed, and the result the model read says so.
            assert count("switchboard_tool_calls_total", tool="get_quote", outcome="error") == 1
            assert count("switchboard_quote_provider_failures_total", reason="network") == 1
            assert count("switchboard_rate_limited_messages_total", platform="telegram") == 1
            assert count("switchboard_turn_seconds_count", platform="telegram") == 2
            labels = {value for _, have in samples for _, value in have}
            assert not [v for v in labels if str(USER) in v or "quokka" in v.lower()]
        finally:
            await bot.close()
        assert "sk-health-test-key" not in bot.log.read_text()


async def test_webhook_mode_serves_them_beside_the_webhook_server(
    tg: TelegramApiEmulator, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    hook, port = free_port(), free_port()
    env = {
        "TELEGRAM_MODE": "webhook",
        "WEBHOOK_URL": f"http://127.0.0.1:{hook}/telegram/hook",
        "WEBHOOK_SECRET": "s3cret-hook",
        "WEBHOOK_LISTEN": "127.0.0.1",
        "PORT": str(hook),
        "HEALTH_PORT": str(port),
    }
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    bot = BotProcess(tg, Database("sqlite", url), tmp_path, env)
    scrape = Scraper(http, port)
    try:
        await bot.start(wait_polling=False)
        await bot.until(lambda: _is(scrape.status("/readyz"), 200), TIMEOUT)
        status = await tg.deliver_webhook(
            tg.message_update(USER, USER, "tell me a joke"), secret="s3cret-hook"
        )
        assert status == 200
        await bot.until(lambda: tg.texts(USER), TIMEOUT)
        samples = await scrape.samples()
        assert total(samples, "switchboard_turn_seconds_count", platform="telegram") == 1
    finally:
        await bot.close()


async def test_webhook_mode_serves_them_on_the_webhook_port_without_health_port(
    tg: TelegramApiEmulator, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    hook = free_port()
    env = {
        "TELEGRAM_MODE": "webhook",
        "WEBHOOK_URL": f"http://127.0.0.1:{hook}/telegram/hook",
        "WEBHOOK_SECRET": "s3cret-hook",
        "WEBHOOK_LISTEN": "127.0.0.1",
        "PORT": str(hook),
    }
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    bot = BotProcess(tg, Database("sqlite", url), tmp_path, env)
    scrape = Scraper(http, hook)  # one server: the webhook's
    try:
        await bot.start(wait_polling=False)
        await bot.until(lambda: _is(scrape.status("/readyz"), 200), TIMEOUT)
        status, body = await scrape.get("/healthz")
        assert status == 200 and json.loads(body)["status"] == "alive"
        update = tg.message_update(USER, USER, "tell me a joke")
        assert await tg.deliver_webhook(dict(update), secret="wrong") == 403
        big = b'{"update_id": 1, "pad": "' + b"x" * (2 << 20) + b'"}'
        headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-hook"}
        async with http.post(
            f"http://127.0.0.1:{hook}/telegram/hook", data=big, headers=headers
        ) as r:
            assert r.status == 413  # the body is bounded
        assert await tg.deliver_webhook(update, secret="s3cret-hook") == 200
        await bot.until(lambda: tg.texts(USER), TIMEOUT)
        assert len(tg.texts(USER)) == 1  # the refused POST ran no turn
        samples = await scrape.samples()
        assert total(samples, "switchboard_turn_seconds_count", platform="telegram") == 1
    finally:
        await bot.close()
