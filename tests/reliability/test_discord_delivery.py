"""Delivering replies on Discord (issue 12, points 3, 5, 8 and 12): "typing…" only when the core
says a turn takes a while, an undelivered reply tried again in the same run, a split reply whose
second part failed not sending its first part twice, and a replay past Discord's nonce window
that finds its reply already in the channel. Real discord.py against the emulator; the real core
on both backends, except in the typing tests, where a stand-in core decides when to answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.adapter import REDELIVER_ATTEMPTS, DiscordAdapter
from adapters.discord.delivery import NONCE_TRUST
from bot.app import open_app
from bot.conversation import Conversation
from bot.messages import CommandSpec, Incoming, Reply
from bot.settings import Settings
from testkit.emulators.discord_api import DiscordEmulator, Fault
from testkit.helpers import Clock, wait_until
from tests.e2e.discord.conftest import ADMIN, TIMEOUT, TOKEN, USER, bot_env, start_bot

pytestmark = pytest.mark.e2e

ANSWER = "Nice to meet you, Alice! I'll remember that."
LONG = "My note: " + "the quick brown fox jumps over the lazy dog " * 6
DM_POSTS = rf"/channels/{USER + 1}/messages"


class GatedCore:
    """A stand-in for the platform-neutral core (bot.messages.ConversationCore): it answers
    "done" once released, after yielding Reply.working() if told to."""

    commands: tuple[CommandSpec, ...] = ()

    def __init__(self, *, working: bool) -> None:
        self.working = working
        self.release = asyncio.Event()

    async def accept(self, incoming: Incoming) -> bool:
        return True

    async def pending(self, platform: str) -> list[Incoming]:
        return []

    async def handle(self, incoming: Incoming) -> AsyncIterator[Reply]:
        if self.working:
            yield Reply.working()
        await self.release.wait()
        yield Reply("done")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def emu(clock: Clock) -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator(clock=clock) as emulator:
        emulator.expected_auth = f"Bot {TOKEN}"
        yield emulator


@pytest.fixture
def settings(emu: DiscordEmulator, tmp_path: Path, any_db_url: str) -> Settings:
    return Settings.from_env(bot_env(emu, tmp_path, DATABASE_URL=any_db_url), dotenv_path=None)


async def _gated(settings: Settings, emu: DiscordEmulator, core: GatedCore) -> list[Any]:
    """One DM answered by the stand-in core: the typing and message calls, in order."""
    adapter = DiscordAdapter(settings, core, guild_ready_timeout=0.05)
    await adapter.start()
    try:
        await emu.send_message(emu.user(USER, "user"), "hello")
        if core.working:
            await wait_until(lambda: emu.calls_to("POST", rf"/channels/{USER + 1}/typing"))
        core.release.set()
        await wait_until(lambda: emu.channel_messages(USER + 1), timeout=TIMEOUT)
    finally:
        await adapter.stop()
    return [c for c in emu.calls if c.path.startswith(f"/channels/{USER + 1}/")]


@pytest.mark.parametrize("any_db_url", ["sqlite"], indirect=True)
async def test_a_waiting_turn_shows_no_typing(settings: Settings, emu: DiscordEmulator) -> None:
    calls = await _gated(settings, emu, GatedCore(working=False))

    assert [c.path for c in calls] == [f"/channels/{USER + 1}/messages"]


@pytest.mark.parametrize("any_db_url", ["sqlite"], indirect=True)
async def test_typing_starts_when_the_core_says_and_ends_before_the_answer(
    settings: Settings, emu: DiscordEmulator
) -> None:
    calls = await _gated(settings, emu, GatedCore(working=True))

    paths = [c.path.rsplit("/", 1)[-1] for c in calls]
    assert paths[-1] == "messages" and set(paths[:-1]) == {"typing"}
    assert [m["content"] for m in emu.channel_messages(USER + 1)] == ["done"]


@pytest.mark.parametrize("any_db_url", ["sqlite"], indirect=True)
async def test_the_real_core_s_typing_signal_shows_typing_before_the_answer(
    settings: Settings, emu: DiscordEmulator
) -> None:
    async with open_app(settings) as app:
        # The real core, told that every answer takes a while (its default is 0.5 s).
        core = Conversation(app.store, app.runner, app_name=settings.app_name, typing_after=0)
        adapter = DiscordAdapter(settings, core, guild_ready_timeout=0.05)
        await adapter.start()
        try:
            await emu.send_message(emu.user(USER, "user"), "Hi, my name is Alice")
            await wait_until(lambda: emu.channel_messages(USER + 1), timeout=TIMEOUT)
        finally:
            await adapter.stop()

    calls = [(c.method, c.path.split("/")[3]) for c in emu.calls if c.path.startswith("/channel")]
    assert calls[:2] == [("POST", "typing"), ("POST", "messages")]
    assert ("POST", "typing") not in calls[2:]  # stopped at the answer (edits may follow)


async def test_a_failed_send_is_tried_again_in_the_same_run(
    settings: Settings, emu: DiscordEmulator
) -> None:
    async with start_bot(settings, emu, retry_delay=0.01) as bot:
        emu.inject(Fault("POST", DM_POSTS, 503))  # once: a transient outage

        replies = await bot.say(USER, "Hi, my name is Alice")

        assert [m["content"] for m in replies] == [ANSWER]
        assert [c.status for c in emu.calls_to("POST", DM_POSTS)] == [503, 200]
        assert await bot.settled()  # the inbox row is done: nothing left for a restart


async def test_retries_are_bounded_and_stop_ends_the_wait(
    settings: Settings, emu: DiscordEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.discord.adapter")
    async with start_bot(settings, emu, retry_delay=0.01) as bot:
        emu.inject(Fault("POST", DM_POSTS, 503, times=1000))
        await emu.send_message(bot.user(USER), "Hi, my name is Alice")
        await wait_until(lambda: "kept for the next start" in caplog.text, timeout=TIMEOUT)
        assert len(emu.calls_to("POST", DM_POSTS)) == REDELIVER_ATTEMPTS
        assert not await bot.settled()  # still pending: the next start answers it
    emu.faults.clear()

    async with start_bot(settings, emu, retry_delay=600) as bot:  # answered by the replay
        await wait_until(bot.settled, timeout=TIMEOUT)
        caplog.clear()
        emu.inject(Fault("POST", DM_POSTS, 503))
        await emu.send_message(bot.user(USER), "Hi, my name is Bob")
        await wait_until(lambda: "kept for retry" in caplog.text, timeout=TIMEOUT)
        await asyncio.wait_for(bot.adapter.stop(), TIMEOUT)  # not 600 s
        assert not await bot.settled()


async def test_a_split_reply_whose_second_part_failed_sends_only_the_rest(
    settings: Settings, emu: DiscordEmulator
) -> None:
    emu.nonce_window = 0  # Discord's dedupe long gone: only the adapter's memory can help
    async with start_bot(settings, emu, retry_delay=0.01) as bot:
        for _ in range(8):
            await bot.say(USER, LONG)
        admin_posts = rf"/channels/{ADMIN + 1}/messages"
        emu.inject(Fault("POST", admin_posts, 503, skip=1))  # part 1 goes out, part 2 fails

        replies = await bot.say(ADMIN, f"/history discord:{USER} 50")

        message_id = replies[0]["nonce"].split(":")[0]
        assert len(replies) >= 2
        assert [m["nonce"] for m in replies] == [f"{message_id}:{n}" for n in range(len(replies))]
        posts = [c for c in emu.calls_to("POST", admin_posts) if c.body["nonce"] is not None]
        assert [c.body["nonce"].split(":")[1] for c in posts] == ["0", "1", "1"] + [
            str(n) for n in range(2, len(replies))
        ]
        assert [c.status for c in posts][:3] == [200, 503, 200]


async def test_a_replay_past_the_nonce_window_finds_the_reply_already_sent(
    settings: Settings, emu: DiscordEmulator, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.discord.adapter")
    async with start_bot(settings, emu, retry_delay=600) as bot:
        # Discord stores the reply but the answer never reaches the bot, which then stops.
        emu.inject(Fault("POST", DM_POSTS, 503, after_processing=True))
        await emu.send_message(bot.user(USER), "Hi, my name is Alice")
        await wait_until(lambda: "kept for retry" in caplog.text, timeout=TIMEOUT)
        assert not await bot.settled()
    clock.now += emu.nonce_window + 1  # Discord has forgotten the nonce

    later = time.time() + NONCE_TRUST + 60
    async with start_bot(settings, emu, wall=lambda: later) as bot:
        await wait_until(bot.settled, timeout=TIMEOUT)

    assert [m["content"] for m in emu.channel_messages(USER + 1)] == [ANSWER]
    assert len(emu.calls_to("POST", DM_POSTS)) == 1  # the replay posted nothing
    (looked,) = emu.calls_to("GET", DM_POSTS)
    assert "after" in looked.query
