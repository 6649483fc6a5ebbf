"""`python -m bot` as a real process, configured only by environment variables: it answers on
Telegram, stops cleanly on SIGTERM, keeps its memory across a restart, and loses nothing when
killed mid-reply (the message is replayed from the inbox at the next start)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.settings import DEFAULT_APP_NAME as APP
from storage import Store, open_store
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from tests.e2e.telegram.conftest import ADMIN, TIMEOUT, TOKEN, USER, bot_env

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[3]


@asynccontextmanager
async def bot_process(
    tg: TelegramApiEmulator, tmp_path: Path, log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start `python -m bot`; wait until it polls; SIGTERM it at the end (if still alive)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "LOG_LEVEL": "DEBUG",  # the most verbose setting must still not leak the token
        **bot_env(tg, tmp_path),
    }
    polls = len(tg.calls_to("getMe"))
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=tmp_path,  # no .env from the checkout: the environment is the whole config
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=err,
            stderr=err,
        )
    try:
        await wait_until(lambda: len(tg.calls_to("getMe")) > polls, timeout=TIMEOUT)
        await wait_until(lambda: tg.calls_to("deleteWebhook"), timeout=TIMEOUT)
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), TIMEOUT)


@asynccontextmanager
async def database(tmp_path: Path) -> AsyncIterator[Store]:
    """The bot's database, opened beside the running process to see what it recorded."""
    async with await open_store(bot_env_db(tmp_path)) as store:
        yield store


def bot_env_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.db'}"


async def answer(tg: TelegramApiEmulator, store: Store, user: int, text: str) -> str:
    """Send a message; once the bot has answered it (inbox row closed), its last message."""
    before = len(tg.bot_messages(user))
    tg.private_text(user, text)

    async def answered() -> bool:
        return len(tg.bot_messages(user)) > before and not await store.inbox_pending("telegram")

    await wait_until(answered, timeout=TIMEOUT)
    return tg.shown(user)[-1]


async def test_python_m_bot_keeps_memory_across_a_restart(
    tg: TelegramApiEmulator, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    async with bot_process(tg, tmp_path, log) as proc, database(tmp_path) as store:
        assert "Grace" in await answer(tg, store, USER, "Hi, my name is Grace")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
    async with bot_process(tg, tmp_path, log), database(tmp_path) as store:
        prefs = await answer(tg, store, USER, "/prefs")
        assert "Name: Grace" in prefs
        stats = await answer(tg, store, ADMIN, "/stats")
        assert stats.startswith("Users:")
    text = log.read_text()
    assert "telegram" in text.lower()
    assert TOKEN not in text and TOKEN.split(":")[1] not in text


async def test_killed_mid_reply_the_message_is_answered_after_restart(
    tg: TelegramApiEmulator, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    async with bot_process(tg, tmp_path, log) as proc:
        tg.hold("sendMessage")
        update_id = tg.private_text(USER, "Tell me a joke about databases")
        # The reply is on its way and Telegram already forgot the update (offset past it).
        await wait_until(lambda: tg.holding, timeout=TIMEOUT)
        await wait_until(lambda: tg.confirmed(update_id), timeout=TIMEOUT)
        proc.kill()
        await asyncio.wait_for(proc.wait(), TIMEOUT)
        tg.drop_held()
    held = tg.holding[0].params["text"]
    assert not tg.sent(USER)
    async with bot_process(tg, tmp_path, log), database(tmp_path) as store:
        # Replayed from the inbox at start: answered without the user sending it again.
        await wait_until(lambda: tg.sent(USER), timeout=TIMEOUT)
        assert "/prefs" in await answer(tg, store, USER, "/help")
        [joke, _help] = tg.shown(USER)
        # The turn resumes with the agent that was answering (funny_nerd, whose tool result
        # was stored before the kill): the real joke, continuing what was already streaming.
        assert held.strip() and joke.startswith(held.strip())
        assert "about databases" in joke
        user_id = await store.find_user("telegram", str(USER))
        events = await store.history(APP, str(user_id))
        asked = [e for e in events if e.author == "user"]
        assert [e.text for e in asked] == ["Tell me a joke about databases"]  # once, not twice
