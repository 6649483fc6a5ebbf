"""Platform faults with the real client libraries against the emulators: Telegram answers 429
to every send for 10 s, Discord answers a message POST with 429 and then 502 (after creating the
message). No reply is lost, none is duplicated, nothing is sent while Telegram says wait."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.discord.adapter import DiscordAdapter
from adapters.telegram.adapter import TelegramAdapter
from bot.app import App, open_app
from storage import Event
from testkit.emulators.discord_api import DiscordEmulator, Fault
from testkit.emulators.telegram_api import SEND_METHODS, TelegramApiEmulator
from testkit.helpers import wait_until
from tests.reliability.fault_fixtures import (
    APP,
    DC_TOKEN,
    TG_TOKEN,
    settings,
)

pytestmark = pytest.mark.e2e

WINDOW = 10.0  # seconds of 429 on every send: a realistic retry_after (kept though it costs 10 s)
TIMEOUT = 30.0


@contextlib.asynccontextmanager
async def telegram_bot(tg: TelegramApiEmulator, url: str) -> AsyncIterator[App]:
    s = settings(url, TELEGRAM_BOT_TOKEN=TG_TOKEN, TELEGRAM_API_BASE=tg.base_url)
    async with open_app(s) as app:
        adapter = TelegramAdapter(s, app.core, retry_delay=0.05)
        await adapter.start()
        try:
            yield app
        finally:
            await adapter.stop()


@contextlib.asynccontextmanager
async def discord_bot(emu: DiscordEmulator, url: str) -> AsyncIterator[App]:
    s = settings(
        url,
        DISCORD_BOT_TOKEN=DC_TOKEN,
        DISCORD_API_BASE=emu.api_base,
        DISCORD_GATEWAY_URL=emu.gateway_url,
    )
    async with open_app(s) as app:
        adapter = DiscordAdapter(s, app.core, guild_ready_timeout=0.05)
        await adapter.start()
        try:
            await wait_until(lambda: emu.connected, timeout=TIMEOUT)
            yield app
        finally:
            await adapter.stop()


async def finals(app: App, platform: str, user: int) -> list[Event]:
    user_id = await app.store.find_user(platform, str(user))
    assert user_id is not None
    return [e for e in await app.store.history(APP, user_id, limit=200) if e.author != "user"][-1:]


@pytest.mark.parametrize(
    "limited",
    [SEND_METHODS, ("sendMessage", "editMessageText", "sendDocument")],
    ids=["every-send", "messages-only"],
)
async def test_telegram_429_on_every_send_for_10s(
    tmp_path: Path,
    db_url: str,
    limited: tuple[str, ...],
) -> None:
    """With typing limited too, the first refused call (a chat action) makes PTB's rate limiter
    hold every request; with messages only, the sends themselves are refused and retried."""
    users = [3001, 3002, 3003, 3004]
    async with TelegramApiEmulator(TG_TOKEN) as tg, telegram_bot(tg, db_url) as app:
        await wait_until(lambda: tg.calls_to("getUpdates"), timeout=TIMEOUT)
        window_end = tg.rate_limit_for(WINDOW, limited)
        for user in users:
            tg.private_text(user, f"Tell me a joke about {('cats', 'python')[user % 2]}")

        async def all_answered() -> bool:
            shown = all(len(tg.bot_messages(u)) >= 1 for u in users)
            return shown and not await app.store.inbox_pending("telegram")

        await wait_until(all_answered, timeout=WINDOW + TIMEOUT)

        refused = [c for c in tg.calls if c.method in limited and c.status == 429]
        accepted = [c for c in tg.calls if c.method in limited and c.status == 200]
        assert refused, "the fault was not injected"
        if "sendChatAction" not in limited:
            assert {c.method for c in refused} == {"sendMessage"}
        early = [(c.method, round(window_end - c.at, 2)) for c in accepted if c.at < window_end]
        assert not early, f"sends accepted inside the 429 window: {early}"
        for user in users:
            # One message per reply (edited while streaming): none lost, none duplicated, and
            # it shows exactly the answer the store holds.
            [shown] = tg.shown(user)
            [final] = await finals(app, "telegram", user)
            assert shown == final.text and shown.strip()
            user_id = await app.store.find_user("telegram", str(user))
            asked = [e for e in await app.store.history(APP, str(user_id)) if e.author == "user"]
            assert len(asked) == 1


async def test_discord_429_then_502_on_a_message_post_is_posted_once(
    tmp_path: Path,
    db_url: str,
) -> None:
    async with DiscordEmulator() as emu, discord_bot(emu, db_url) as app:
        emu.expected_auth = f"Bot {DC_TOKEN}"
        user = emu.user(5005, "ada")
        channel = 5005 + 1
        pattern = r"/channels/\d+/messages"
        emu.inject(Fault("POST", pattern, 429, retry_after=0.3))
        emu.inject(Fault("POST", pattern, 502, after_processing=True))
        sent = await emu.send_message(user, "Hi, my name is Ada")

        async def answered() -> bool:
            return bool(emu.channel_messages(channel)) and not await app.store.inbox_pending(
                "discord"
            )

        await wait_until(answered, timeout=TIMEOUT)
        posts = emu.calls_to("POST", pattern)
        assert [c.status for c in posts] == [429, 502, 200]
        assert len({c.body["nonce"] for c in posts}) == 1  # the same send, retried
        [message] = emu.channel_messages(channel)  # exactly one message in the channel
        [final] = await finals(app, "discord", 5005)
        assert message["content"] == final.text and "Ada" in final.text
        assert message["nonce"].startswith(f"{sent['id']}:")


async def test_discord_502_on_a_slash_command_answer_is_posted_once(
    tmp_path: Path,
    db_url: str,
) -> None:
    """The answer replaces the deferred "thinking…" response by an (idempotent) edit; a 429 and
    a 502 after Discord applied it still leave exactly one answer."""
    async with DiscordEmulator() as emu, discord_bot(emu, db_url) as app:
        emu.expected_auth = f"Bot {DC_TOKEN}"
        user = emu.user(5006, "bob")
        answer = r"/webhooks/\d+/[^/]+(/messages/@original)?"
        emu.inject(Fault("PATCH", answer, 429, retry_after=0.3))
        emu.inject(Fault("PATCH", answer, 502, after_processing=True))
        emu.inject(Fault("POST", answer, 502, after_processing=True))  # were it a follow-up
        interaction = await emu.invoke_command(user, "help")

        async def answered() -> bool:
            return bool(emu.followups(interaction)) and not await app.store.inbox_pending("discord")

        await wait_until(answered, timeout=TIMEOUT)
        followups = [m for m in emu.followups(interaction) if not m.get("deleted")]
        assert len(followups) == 1, [m["content"][:40] for m in followups]
        assert "/watchlist" in followups[0]["content"]
        assert [c.status for c in emu.calls_to("PATCH", answer)] == [429, 502, 200]
