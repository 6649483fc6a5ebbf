"""Messages not written by a person are ignored on Telegram: automatic forwards from a linked
channel (all from the pseudo-user 777000, which would give every channel and group one shared
memory) and messages sent on behalf of a chat (an anonymous admin, a channel). Each is dropped
before it is recorded, with a debug line. Real PTB against the Bot API emulator, both backends."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import Settings
from testkit.emulators.telegram_api import (
    ANONYMOUS_ADMIN,
    CHANNEL_BOT,
    SERVICE_USER,
    TelegramApiEmulator,
)
from tests.e2e.telegram.conftest import GROUP, TOKEN, USER, RunningBot, bot_env, start_bot

pytestmark = pytest.mark.e2e

CHANNEL = -1001234
ASK = "@switchboard_test_bot tell me a joke about cats"


@pytest.fixture
async def running(any_db_url: str, tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with TelegramApiEmulator(TOKEN) as tg:
        env = bot_env(tg, tmp_path) | {"DATABASE_URL": any_db_url}
        async for bot in start_bot(Settings.from_env(env, dotenv_path=None), tg):
            yield bot


async def test_automatic_forwards_and_chat_senders_are_ignored(
    running: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    tg, store = running.tg, running.app.store
    caplog.set_level(logging.DEBUG, logger="adapters.telegram.translate")
    ignored = [
        tg.automatic_forward(GROUP, CHANNEL, ASK),
        tg.on_behalf_of_chat(GROUP, ASK),
        tg.on_behalf_of_chat(GROUP, ASK, channel_id=CHANNEL),
    ]
    # A person's message after them is answered: by then the others went through the bot.
    [answer] = await running.ask(GROUP, USER, ASK)
    assert answer.strip()
    assert len(tg.sent(GROUP)) == 1
    for pseudo in (SERVICE_USER, ANONYMOUS_ADMIN, CHANNEL_BOT):
        assert await store.find_user("telegram", str(pseudo["id"])) is None
    for update_id in ignored:
        assert f"update {update_id} ignored: sent on behalf of a chat" in caplog.text
