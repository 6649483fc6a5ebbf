"""How the adapter runs turns, with the real PTB Application against the Bot API emulator and a
scripted stand-in for the conversation core (neutral: it only yields the Replies a test needs).

- A waiting message holds none of PTB's concurrency slots: a flood from one user whose turns all
  wait cannot keep another user's message from being answered; arrival order is kept.
- "typing…" appears only when the core yields `Reply.working()` and stops with the answer; a
  quick answer is one sendMessage and nothing else.
- A private reply never streams into a group.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from telegram import Bot

from adapters.telegram import TelegramAdapter
from adapters.telegram.delivery import STREAM_AFTER, TurnWriter
from adapters.telegram.sender import EDIT_INTERVAL, Sender, Target
from bot.app import open_app
from bot.conversation import Conversation
from bot.messages import CommandSpec, Incoming, Reply
from bot.settings import Settings
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import Clock, wait_until
from tests.e2e.telegram.conftest import GROUP, RETRY_DELAY, TIMEOUT, TOKEN, USER, RunningBot

pytestmark = pytest.mark.e2e
FLOODER = 3003
PTB_SLOTS = 256  # python-telegram-bot's default for concurrent_updates(True)
GROUP_TARGET = Target(chat_id=GROUP, user_id=USER, group=True, reply_to=1)

Script = Callable[[Incoming], AsyncIterator[Reply]]


@dataclass
class ScriptedCore:
    """bot.messages.ConversationCore that answers with `script` and notes when turns begin."""

    script: Script
    commands: tuple[CommandSpec, ...] = ()
    begun: list[Incoming] = field(default_factory=list)

    async def accept(self, incoming: Incoming) -> bool:
        return True

    async def handle(self, incoming: Incoming) -> AsyncIterator[Reply]:
        self.begun.append(incoming)  # the first step, where the real core queues the turn
        async for reply in self.script(incoming):
            yield reply

    async def pending(self, platform: str) -> list[Incoming]:
        return []


async def running(
    settings: Settings, script: Script, body: Callable[[ScriptedCore], Awaitable[None]]
) -> ScriptedCore:
    core = ScriptedCore(script)
    # No bot-wide rate limit: hundreds of answers at Telegram's 30/s would take seconds.
    adapter = TelegramAdapter(settings, core, retry_delay=RETRY_DELAY, overall_max_rate=0)
    await adapter.start()
    try:
        await body(core)
    finally:
        await adapter.stop()
    return core


async def test_a_flood_of_waiting_turns_does_not_hold_up_another_user(
    tg: TelegramApiEmulator, settings: Settings
) -> None:
    release = asyncio.Event()

    async def script(incoming: Incoming) -> AsyncIterator[Reply]:
        if incoming.platform_user_id == str(FLOODER):
            await release.wait()  # as behind a long turn of the same chat
        yield Reply(f"answer to {incoming.text}")

    async def body(core: ScriptedCore) -> None:
        flood = [tg.private_text(FLOODER, f"flood {n}") for n in range(PTB_SLOTS + 20)]
        await wait_until(lambda: len(core.begun) >= len(flood), timeout=TIMEOUT)
        tg.private_text(USER, "hello")
        await wait_until(lambda: tg.texts(USER), timeout=TIMEOUT)
        assert tg.texts(USER) == ["answer to hello"]
        assert not tg.sent(FLOODER)
        release.set()
        await wait_until(lambda: len(tg.sent(FLOODER)) == len(flood), timeout=TIMEOUT)
        # Turns began in arrival order (the real core queues a chat's turns in that order).
        flooded = [i.text for i in core.begun if i.platform_user_id == str(FLOODER)]
        assert flooded == [f"flood {n}" for n in range(len(flood))]

    await running(settings, script, body)


async def test_a_quick_answer_is_one_call_without_typing(bot: RunningBot) -> None:
    # The real core: a command is answered in milliseconds, well before "typing…" is due.
    await bot.ask(USER, USER, "/help")
    await bot.ask(GROUP, USER, "/help")
    sends = [c.method for c in bot.tg.calls if c.method.startswith(("send", "edit"))]
    assert sends == ["sendMessage", "sendMessage"]


@pytest.mark.parametrize("chat", [USER, GROUP])
async def test_typing_shows_from_the_core_signal_until_the_answer(
    tg: TelegramApiEmulator, settings: Settings, chat: int
) -> None:
    answer = asyncio.Event()

    async def script(incoming: Incoming) -> AsyncIterator[Reply]:
        yield Reply.working()
        await answer.wait()
        yield Reply("slow answer")

    async def body(core: ScriptedCore) -> None:
        if chat == USER:
            tg.private_text(USER, "think hard")
        else:
            tg.group_text(GROUP, USER, "@switchboard_test_bot think hard")
        await wait_until(lambda: tg.calls_to("sendChatAction"), timeout=TIMEOUT)
        assert not tg.sent(chat)
        answer.set()
        await wait_until(lambda: tg.sent(chat), timeout=TIMEOUT)

    await running(settings, script, body)
    actions = tg.calls_to("sendChatAction")
    assert {(c.params["chat_id"], c.params["action"]) for c in actions} == {(chat, "typing")}
    # Stopped with the answer: no "typing…" after it went out.
    assert max(c.at for c in actions) <= tg.sent(chat)[0].at


async def test_a_private_reply_never_streams_into_a_group(tg: TelegramApiEmulator) -> None:
    secret = "SECRET-LINK-CODE-123"
    clock = Clock()
    async with Bot(TOKEN, base_url=tg.base_url) as bot:
        writer = TurnWriter(Sender(bot, "switchboard_test_bot", clock=clock), GROUP_TARGET)
        for n in range(1, 4):
            await writer.write(Reply(f"{secret} part {n}", private=True, partial=True))
            clock.now += STREAM_AFTER + EDIT_INTERVAL  # long enough to stream, were it public
        await writer.write(Reply(f"{secret} whole", private=True))
    assert tg.shown(USER) == [f"{secret} whole"]
    assert tg.shown(GROUP) == ["I sent you the answer in a private chat."]
    assert all(secret not in str(c.params) for c in tg.calls if c.params.get("chat_id") == GROUP)


@pytest.mark.parametrize("chat", [USER, GROUP])
async def test_the_real_core_s_typing_signal_shows_typing_before_the_answer(
    tg: TelegramApiEmulator, settings: Settings, chat: int
) -> None:
    async with open_app(settings) as app:
        # The real core, told that every answer takes a while (its default is 0.5 s).
        core = Conversation(app.store, app.runner, app_name=settings.app_name, typing_after=0)
        adapter = TelegramAdapter(settings, core, retry_delay=RETRY_DELAY)
        await adapter.start()
        try:
            if chat == USER:
                tg.private_text(USER, "Hi, my name is Alice")
            else:
                tg.group_text(GROUP, USER, "@switchboard_test_bot Hi, my name is Alice")
            await wait_until(lambda: tg.sent(chat), timeout=TIMEOUT)
        finally:
            await adapter.stop()
    calls = [c.method for c in tg.calls if c.method.startswith(("send", "edit"))]
    assert calls[:2] == ["sendChatAction", "sendMessage"]
    assert "sendChatAction" not in calls[2:]  # stopped at the answer
