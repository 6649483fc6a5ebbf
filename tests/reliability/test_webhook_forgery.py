"""Forged Telegram webhook updates: webhook mode needs WEBHOOK_SECRET (start refused, exit 2);
a POST without the secret is refused by PTB's server; a "private" update whose chat is not its
sender's is refused before anything is recorded, even with the right secret; WEBHOOK_LISTEN
chooses the listen address. Real PTB webhook server, Bot API emulator, SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import open_app, platform_adapters
from bot.settings import Settings
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from tests.e2e.telegram.conftest import (
    ADMIN,
    TIMEOUT,
    TOKEN,
    RunningBot,
    bot_env,
    start_bot,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SECRET = "forgery-test-secret"
ATTACKER = 6006


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def webhook_env(tg: TelegramApiEmulator, tmp_path: Path, db_url: str) -> dict[str, str]:
    port = free_port()
    return bot_env(tg, tmp_path) | {
        "DATABASE_URL": db_url,
        "TELEGRAM_MODE": "webhook",
        "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/hook",
        "WEBHOOK_SECRET": SECRET,
        "PORT": str(port),
    }


@pytest.fixture
async def hooked(any_db_url: str, tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with TelegramApiEmulator(TOKEN) as tg:
        env = webhook_env(tg, tmp_path, any_db_url) | {"WEBHOOK_LISTEN": "127.0.0.1"}
        async for bot in start_bot(Settings.from_env(env, dotenv_path=None), tg):
            yield bot


def test_webhook_mode_without_a_secret_does_not_start(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": "http://127.0.0.1:9/bot",
        "TELEGRAM_MODE": "webhook",
        "WEBHOOK_URL": "https://bot.example.org/telegram/hook",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,  # no .env from the checkout
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "WEBHOOK_SECRET" in line and "Traceback" not in done.stderr
    assert not (tmp_path / "bot.db").exists()  # refused before anything was opened


async def test_a_forged_private_update_gets_nothing_and_runs_no_turn(
    hooked: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    tg = hooked.tg
    caplog.set_level(logging.WARNING, logger="adapters.telegram.translate")
    # The attacker's chat, an admin's id as the sender: with and without the secret.
    forged = tg.message_update(ATTACKER, ADMIN, f"/history telegram:{ADMIN}")
    assert await tg.deliver_webhook(dict(forged)) == 200  # accepted by PTB, refused by us
    assert await tg.deliver_webhook(dict(forged), secret="") == 403
    assert await tg.deliver_webhook(dict(forged), secret="wrong") == 403
    # The attacker's own message afterwards is answered: the forged one was not just slow.
    assert await tg.deliver_webhook(tg.message_update(ATTACKER, ATTACKER, "/start")) == 200
    await wait_until(lambda: tg.sent(ATTACKER), timeout=TIMEOUT)
    await wait_until(hooked.settled, timeout=TIMEOUT)
    [welcome] = tg.texts(ATTACKER)
    assert "/help" in welcome
    assert not tg.sent(ADMIN)
    store = hooked.app.store
    assert await store.find_user("telegram", str(ADMIN)) is None  # no turn, no row, no user
    assert "not its sender's" in caplog.text


@pytest.mark.parametrize("listen", ["127.0.0.1", None])
async def test_webhook_listen_chooses_the_listen_address(
    tmp_path: Path, listen: str | None
) -> None:
    async with TelegramApiEmulator(TOKEN) as tg:
        env = webhook_env(tg, tmp_path, f"sqlite:///{tmp_path / 'bot.db'}")
        if listen is not None:
            env["WEBHOOK_LISTEN"] = listen
        settings = Settings.from_env(env, dotenv_path=None)
        async with open_app(settings) as app:
            [adapter] = platform_adapters(app)  # built as `python -m bot` builds it
            await adapter.start()
            try:
                assert listening(settings.port) == (listen or "0.0.0.0")
            finally:
                await adapter.stop()


def listening(port: int) -> str:
    """The IPv4 address a TCP socket of this process listens on at `port` (/proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            return socket.inet_ntoa(bytes.fromhex(address)[::-1])
    raise AssertionError(f"nothing listens on port {port}")
