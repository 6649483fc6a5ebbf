"""`python -m bot` as a real process with Telegram and Discord both configured (pointed at the
emulators): one person chats on both, links the accounts, and sees one shared watchlist."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from testkit.emulators.discord_api import DiscordEmulator
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from tests.e2e.conftest import both_emulators, both_platforms_env

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
TG_TOKEN = "123456789:AAFAKE-cross-platform-TELEGRAM_token0"
DC_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GFAKE1.cross-platform-DISCORD-token_42"
TG_USER = 3003  # the same person on both platforms
DC_USER = 4004
TIMEOUT = 30.0  # a cold process imports both platform libraries


class BotProcess:
    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    def check(self, condition: Callable[[], object]) -> Callable[[], object]:
        """A wait_until predicate that fails fast (with the log) if the process died."""

        def predicate() -> object:
            if self.proc.returncode is not None:
                raise AssertionError(f"bot exited {self.proc.returncode}:\n{self.log.read_text()}")
            return condition()

        return predicate


@pytest.fixture
async def emulators() -> AsyncIterator[tuple[TelegramApiEmulator, DiscordEmulator]]:
    async with both_emulators(TG_TOKEN, DC_TOKEN) as both:
        yield both


@pytest.fixture
async def bot_process(
    emulators: tuple[TelegramApiEmulator, DiscordEmulator], tmp_path: Path
) -> AsyncIterator[BotProcess]:
    tg, dc = emulators
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        **both_platforms_env(tg, dc, DC_TOKEN, f"sqlite:///{tmp_path / 'bot.db'}"),
        "LOG_LEVEL": "DEBUG",
    }
    log = tmp_path / "bot.log"
    with log.open("wb") as out:
        # cwd=tmp_path: no developer's .env is read; the environment above is the whole config.
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    bot = BotProcess(proc, log)
    try:
        yield bot
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_one_person_linked_across_platforms_shares_one_watchlist(
    emulators: tuple[TelegramApiEmulator, DiscordEmulator], bot_process: BotProcess
) -> None:
    tg, dc = emulators
    check = bot_process.check
    await wait_until(check(lambda: dc.connected and dc.commands.get(None)), timeout=TIMEOUT)
    await wait_until(check(lambda: tg.calls_to("getUpdates")), timeout=TIMEOUT)
    dm = dc.user(DC_USER, "ada")

    async def telegram(text: str, expect: str) -> str:
        """Send on Telegram; wait until a new bot message there contains `expect` (a streamed
        reply grows by edits, so wait for the words, not just for a message)."""
        before = len(tg.shown(TG_USER))
        tg.private_text(TG_USER, text)
        await wait_until(check(lambda: expect in "\n".join(tg.shown(TG_USER)[before:])), TIMEOUT)
        return "\n".join(tg.shown(TG_USER)[before:])

    async def discord(text: str, expect: str) -> str:
        before = len(dc.channel_messages(DC_USER + 1))

        def shown() -> str:
            return "\n".join(m["content"] for m in dc.channel_messages(DC_USER + 1)[before:])

        await dc.send_message(dm, text)
        await wait_until(check(lambda: expect in shown()), timeout=TIMEOUT)
        return shown()

    await telegram("/watchlist add AAPL", "Added AAPL")
    await discord("Hi, my name is Ada", "Nice to meet you, Ada")
    code_text = await telegram("/link", "Your link code:")
    code = re.search(r"Your link code: (\S+)", code_text)
    assert code, code_text

    # Linked from Discord with the slash command's typed options: the code alone says what
    # would happen; with `confirm` it links.
    preview = await dc.invoke_command(dm, "link", {"code": code[1]})
    await wait_until(check(lambda: dc.followups(preview)), timeout=TIMEOUT)
    assert "will join your Telegram" in dc.followups(preview)[0]["content"]
    interaction = await dc.invoke_command(dm, "link", {"code": code[1], "confirm": "confirm"})
    await wait_until(check(lambda: dc.followups(interaction)), timeout=TIMEOUT)
    assert dc.followups(interaction)[0]["content"].startswith("Linked!")

    await discord("/watchlist add TSLA", "TSLA")
    shared = await telegram("/watchlist", "TSLA")
    assert "AAPL" in shared
    await telegram("/prefs", "Ada")  # the name told on Discord

    bot_process.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(bot_process.proc.wait(), TIMEOUT) == 0
    output = bot_process.log.read_text()
    assert "discord adapter stopped" in output
    assert TG_TOKEN not in output and DC_TOKEN not in output
