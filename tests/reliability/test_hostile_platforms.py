"""Admin commands by a non-admin through the real platform libraries: Telegram (private chat and
group, python-telegram-bot against the Bot API emulator) and Discord (slash commands in a guild
— even from a member with Discord's Administrator permission — and in a DM, and typed as text,
discord.py against the Discord emulator). Every one is refused with the same plain text, shows
nothing of anyone, and is audited."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.discord.adapter import DiscordAdapter
from adapters.telegram.adapter import TelegramAdapter
from bot.admin_commands import ADMIN_COMMANDS, REFUSAL
from bot.app import App, open_app
from testkit.databases import audit_log
from testkit.emulators.discord_api import EPHEMERAL, DiscordEmulator
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from tests.reliability.fault_fixtures import DC_TOKEN, TG_TOKEN, settings

pytestmark = pytest.mark.e2e
TIMEOUT = 20.0
VICTIM, ATTACKER, GROUP = 7301, 7302, -1007300
DISCORD_ADMIN_PERMISSION = "8"  # Discord's Administrator bit: not an admin of *this* bot


@contextlib.asynccontextmanager
async def telegram(tmp_path: Path) -> AsyncIterator[tuple[App, TelegramApiEmulator]]:
    async with TelegramApiEmulator(TG_TOKEN) as tg:
        s = settings(
            f"sqlite:///{tmp_path / 'tg.db'}",
            TELEGRAM_BOT_TOKEN=TG_TOKEN,
            TELEGRAM_API_BASE=tg.base_url,
        )
        async with open_app(s) as app:
            adapter = TelegramAdapter(s, app.core, retry_delay=0.05)
            await adapter.start()
            try:
                yield app, tg
            finally:
                await adapter.stop()


async def settled(app: App, platform: str) -> bool:
    return not await app.store.inbox_pending(platform)


async def denied(app: App) -> int:
    entries = await audit_log(app.settings.database_url)
    return len([e for e in entries if str(e["command"]).startswith("denied /")])


async def test_telegram_non_admin_is_refused_everything(tmp_path: Path) -> None:
    async with telegram(tmp_path) as (app, tg):
        tg.private_text(VICTIM, "Hi, my name is Victoria", first_name="Victoria")
        tg.private_text(VICTIM, "/watchlist add NVDA", first_name="Victoria")
        await wait_until(lambda: len(tg.sent(VICTIM)) >= 2, timeout=TIMEOUT)
        victim_id = await app.store.find_user("telegram", str(VICTIM))
        assert victim_id
        bot = tg.bot["username"]
        attempts = 0
        for spec in ADMIN_COMMANDS:
            for args in ("", f" {victim_id}", f" telegram:{VICTIM} 50"):
                tg.private_text(ATTACKER, f"/{spec.name}{args}", first_name="Mallory")
                attempts += 1
            # One per command in the group: PTB's limiter allows a group 20 requests a minute
            # (typing included), as Telegram does.
            tg.group_text(GROUP, ATTACKER, f"/{spec.name}@{bot} {victim_id}", first_name="Mallory")
            attempts += 1

        async def all_refused() -> bool:
            answered = len(tg.sent(ATTACKER)) + len(tg.sent(GROUP)) >= attempts
            return answered and await settled(app, "telegram")

        await wait_until(all_refused, timeout=TIMEOUT)
        assert set(tg.texts(ATTACKER)) == {REFUSAL}
        assert set(tg.texts(GROUP)) == {REFUSAL}  # in the group: the refusal, no DM about it
        assert not tg.calls_to("sendDocument")
        shown = "\n".join(tg.texts(ATTACKER) + tg.texts(GROUP))
        for trace in (victim_id, str(VICTIM), "Victoria", "NVDA"):
            assert trace not in shown
        assert await denied(app) == attempts


async def test_discord_non_admin_is_refused_everything(tmp_path: Path) -> None:
    async with DiscordEmulator() as emu:
        emu.expected_auth = f"Bot {DC_TOKEN}"
        s = settings(
            f"sqlite:///{tmp_path / 'dc.db'}",
            DISCORD_BOT_TOKEN=DC_TOKEN,
            DISCORD_API_BASE=emu.api_base,
            DISCORD_GATEWAY_URL=emu.gateway_url,
        )
        async with open_app(s) as app:
            adapter = DiscordAdapter(s, app.core, guild_ready_timeout=0.05)
            await adapter.start()
            try:
                await wait_until(lambda: emu.connected and emu.commands.get(None), TIMEOUT)
                victim, attacker = emu.user(VICTIM, "victoria"), emu.user(ATTACKER, "mallory")
                await emu.send_message(victim, "/watchlist add NVDA")
                await wait_until(lambda: emu.channel_messages(VICTIM + 1), timeout=TIMEOUT)
                victim_id = await app.store.find_user("discord", str(VICTIM))
                assert victim_id
                interactions = []
                options = {"user": victim, "limit": 50}  # the victim, picked from the members
                for spec in ADMIN_COMMANDS:
                    for guild in (True, False):
                        interactions.append(
                            await emu.invoke_command(
                                attacker,
                                spec.name,
                                options,
                                guild=guild,
                                guild_permissions=DISCORD_ADMIN_PERMISSION,
                            )
                        )
                    await emu.send_message(attacker, f"/{spec.name} {victim_id}")

                async def all_refused() -> bool:
                    slash = all(emu.followups(i) for i in interactions)
                    typed = len(emu.channel_messages(ATTACKER + 1)) >= len(ADMIN_COMMANDS)
                    return slash and typed and await settled(app, "discord")

                await wait_until(all_refused, timeout=TIMEOUT)
                for interaction in interactions:
                    [answer] = emu.followups(interaction)
                    assert answer["content"] == REFUSAL
                    assert int(answer["flags"]) & EPHEMERAL  # nobody else sees even that
                    assert not answer["attachments"]
                typed = [m["content"] for m in emu.channel_messages(ATTACKER + 1)]
                assert typed == [REFUSAL] * len(ADMIN_COMMANDS)
                assert await denied(app) == len(interactions) + len(ADMIN_COMMANDS)
            finally:
                await adapter.stop()
