"""Secrets: with recognisable fake tokens and keys, drive both adapters and the LLM client (an
LLM error that echoes the key included) in-process and as `python -m bot` at LOG_LEVEL=DEBUG;
no token or key appears in any log line (caplog, the process's stderr) or in any stored row."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from bot.logging_setup import NOISY_LOGGERS, setup_logging
from bot.settings import Settings
from testkit.databases import dump_rows
from testkit.emulators.discord_api import DiscordEmulator
from testkit.emulators.llm import Fail, LLMEmulator, Say
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from tests.e2e.conftest import both_platforms, both_platforms_env
from tests.reliability.fault_fixtures import (
    DC_TOKEN,
    LLM_KEY,
    SECRETS,
    TG_TOKEN,
    WEBHOOK_SECRET,
    by_keyword,
    routed,
)

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0
TG_USER = 4242
DC_USER = 5353
# A provider that quotes the key back in its error, as some do ("Incorrect API key provided").
ECHO = Fail(401, f"Incorrect API key provided: {LLM_KEY}")


def environment(tg: TelegramApiEmulator, dc: DiscordEmulator, llm: LLMEmulator, db: str) -> dict:
    return {
        **both_platforms_env(tg, dc, DC_TOKEN, db),
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "OPENROUTER_API_KEY": LLM_KEY,
        "LLM_BASE_URL": llm.base_url,
        "LLM_MODEL": "test/model",
        "LLM_TIMEOUT": "5",
        "LLM_MAX_RETRIES": "1",
        "MEMORY_EXTRACTION": "tools",  # scripted per turn: no extraction call after each
        "ADMIN_IDS": f"telegram:{TG_USER}",
        "LOG_LEVEL": "DEBUG",
    }


async def drive(tg: TelegramApiEmulator, dc: DiscordEmulator, check=lambda p: p) -> None:
    """A chat and a command on each platform, an LLM error that quotes the key, a failed send."""
    await wait_until(check(lambda: dc.connected and dc.commands.get(None)), timeout=TIMEOUT)
    await wait_until(check(lambda: tg.calls_to("getUpdates")), timeout=TIMEOUT)
    tg.fail_next("sendMessage", status=502)
    for text, method in [
        ("hello there", "sendMessage"),
        ("keyecho please", "sendMessage"),
        ("/stats", "sendPhoto"),  # the admin's stats come with a picture, the text its caption
    ]:
        before = len(tg.calls_to(method))
        tg.private_text(TG_USER, text)
        await wait_until(check(lambda b=before, m=method: len(tg.calls_to(m)) > b), TIMEOUT)
    user = dc.user(DC_USER, "ada")
    for text in ("hello discord", "keyecho again"):
        before = len(dc.channel_messages(DC_USER + 1))
        await dc.send_message(user, text)
        await wait_until(
            check(lambda b=before: len(dc.channel_messages(DC_USER + 1)) > b), timeout=TIMEOUT
        )
    interaction = await dc.invoke_command(user, "stats")  # refused: not an admin there
    await wait_until(check(lambda: dc.followups(interaction)), timeout=TIMEOUT)


def assert_no_secret(text: str, where: str) -> None:
    found = [s for s in SECRETS if s in text]
    assert not found, f"{found} in {where}"


async def test_no_secret_in_logs_or_rows_in_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, restore_logging: None
) -> None:
    caplog.set_level(logging.DEBUG)
    db = f"sqlite:///{tmp_path / 'bot.db'}"
    async with (
        TelegramApiEmulator(TG_TOKEN) as tg,
        DiscordEmulator() as dc,
        LLMEmulator() as llm,
    ):
        dc.expected_auth = f"Bot {DC_TOKEN}"
        llm.script(*routed(by_keyword({"keyecho": ECHO}, Say("Sure thing."))))
        settings = Settings.from_env(environment(tg, dc, llm, db), dotenv_path=None)
        # What `python -m bot` does first: one logging setup, redacting every handler.
        setup_logging(settings.log_level, settings.secrets)
        for name in NOISY_LOGGERS:  # and then the most verbose: every library at DEBUG
            logging.getLogger(name).setLevel(logging.DEBUG)
        async with both_platforms(settings) as (app, _, _):
            await drive(tg, dc)

            async def settled() -> bool:
                return not await app.store.inbox_pending()

            await wait_until(settled, timeout=TIMEOUT)
        assert any(r.last_user_text.startswith("keyecho") for r in llm.requests)
        assert len(caplog.records) > 50  # DEBUG really was on
        # Secrets were offered to the logs (token in request URLs, the key in the LLM's error)
        # and came out redacted.
        assert "[REDACTED]" in caplog.text
        assert_no_secret(caplog.text, "caplog")
        for record in caplog.records:
            assert_no_secret(record.getMessage(), f"record from {record.name}")
    for table, values in await dump_rows(db):
        assert_no_secret(repr(values), f"table {table}")


async def test_no_secret_in_the_stderr_of_python_m_bot(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'bot.db'}"
    log = tmp_path / "bot.log"
    async with (
        TelegramApiEmulator(TG_TOKEN) as tg,
        DiscordEmulator() as dc,
        LLMEmulator() as llm,
    ):
        dc.expected_auth = f"Bot {DC_TOKEN}"
        llm.script(*routed(by_keyword({"keyecho": ECHO}, Say("Sure thing."))))
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)}
        env.update(environment(tg, dc, llm, db))
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=tmp_path, env=env, stdout=out, stderr=out
            )

        def check(predicate):  # fail fast, with the log, if the bot died
            def alive() -> object:
                if proc.returncode is not None:
                    raise AssertionError(f"bot exited {proc.returncode}:\n{log.read_text()}")
                return predicate()

            return alive

        try:
            await drive(tg, dc, check)
            assert any(r.last_user_text.startswith("keyecho") for r in llm.requests)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), TIMEOUT)
    output = log.read_text()
    assert "DEBUG" in output and "telegram" in output.lower() and "[REDACTED]" in output
    assert_no_secret(output, "the bot's stderr")
    for table, values in await dump_rows(db):
        assert_no_secret(repr(values), f"table {table}")
