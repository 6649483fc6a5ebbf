"""Webhook mode: our server (PTB's custom-webhook way) registers WEBHOOK_URL with the secret and
refuses other callers."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import Settings
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from tests.e2e.telegram.conftest import TIMEOUT, USER, RunningBot, bot_env, start_bot

pytestmark = pytest.mark.e2e
SECRET = "s3cret-webhook-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def hooked(tg: TelegramApiEmulator, tmp_path: Path) -> AsyncIterator[RunningBot]:
    port = free_port()
    env = bot_env(tg, tmp_path) | {
        "TELEGRAM_MODE": "webhook",
        "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/hook",
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_LISTEN": "127.0.0.1",
        "PORT": str(port),
    }
    async for running in start_bot(Settings.from_env(env, dotenv_path=None), tg):
        yield running


async def test_webhook_updates_with_the_secret_are_answered(hooked: RunningBot) -> None:
    tg = hooked.tg
    assert tg.webhook is not None
    assert tg.webhook["url"].endswith("/telegram/hook")
    assert tg.webhook["secret_token"] == SECRET
    assert not tg.calls_to("getUpdates")  # no polling in webhook mode
    status = await tg.deliver_webhook(tg.message_update(USER, USER, "/start"))
    assert status == 200
    await wait_until(lambda: tg.sent(USER), timeout=TIMEOUT)
    assert "/help" in tg.texts(USER)[0]


async def test_webhook_refuses_a_wrong_secret(hooked: RunningBot) -> None:
    tg = hooked.tg
    status = await tg.deliver_webhook(tg.message_update(USER, USER, "/start"), secret="wrong")
    assert status == 403
    # A correct delivery afterwards is the only one answered.
    assert await tg.deliver_webhook(tg.message_update(USER, USER, "/help")) == 200
    await wait_until(lambda: tg.sent(USER), timeout=TIMEOUT)
    await wait_until(hooked.settled, timeout=TIMEOUT)
    assert len(tg.sent(USER)) == 1 and "/prefs" in tg.texts(USER)[0]


async def test_webhook_button_press_is_answered_and_run(hooked: RunningBot) -> None:
    """setWebhook asks for callback queries too; a press POSTed by Telegram runs its command."""
    tg = hooked.tg
    assert tg.webhook is not None and "callback_query" in tg.webhook["allowed_updates"]
    for text in ("/watchlist add AAPL", "/watchlist"):
        assert await tg.deliver_webhook(tg.message_update(USER, USER, text)) == 200
        await wait_until(hooked.settled, timeout=TIMEOUT)
    await wait_until(lambda: len(tg.bot_messages(USER)) == 2, timeout=TIMEOUT)
    shown = tg.bot_messages(USER)[-1]
    [(label, data)] = tg.buttons(USER, shown["message_id"])
    assert label == "Remove AAPL"
    update = tg.callback_update(USER, shown["message_id"], data, USER)
    assert await tg.deliver_webhook(update) == 200
    await wait_until(lambda: len(tg.bot_messages(USER)) == 3, timeout=TIMEOUT)
    assert "Removed AAPL" in tg.shown(USER)[-1]
    await wait_until(lambda: tg.answer_to(update["update_id"]), timeout=TIMEOUT)
