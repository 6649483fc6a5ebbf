"""Slash commands on Discord end to end: sync with typed options, defer then follow up, admin
privacy, files; and the adapter's lifecycle (startup replay, sharding, no token in logs)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import discord
import pytest

from adapters.discord import DiscordAdapter
from bot.app import open_app
from bot.messages import Incoming
from bot.settings import Settings, SettingsError
from testkit.emulators.discord_api import EPHEMERAL, DiscordEmulator
from testkit.helpers import wait_until
from tests.e2e.discord.conftest import (
    ADMIN,
    TIMEOUT,
    TOKEN,
    USER,
    RunningBot,
    bot_env,
    start_bot,
)

pytestmark = pytest.mark.e2e


async def test_every_core_command_is_synced_with_typed_options(bot: RunningBot) -> None:
    synced = {c["name"]: c for c in bot.emu.commands[None]}

    assert set(synced) == {spec.name for spec in bot.app.core.commands}
    action, ticker = synced["watchlist"]["options"]
    assert action["type"] == 3 and [c["value"] for c in action["choices"]] == [
        "show",
        "add",
        "remove",
    ]
    assert ticker["type"] == 3 and not ticker["required"]
    history = {o["name"]: o for o in synced["history"]["options"]}
    assert history["limit"]["type"] == 4  # an integer option
    assert history["user"]["type"] == 6  # the member picker
    assert synced["history"]["default_member_permissions"] is not None  # hidden by default
    assert synced["help"]["default_member_permissions"] is None
    assert synced["user"]["options"][0]["required"] is True
    assert synced["help"]["contexts"] == [0, 1]  # guilds and DMs with the bot


async def test_commands_sync_to_one_guild_when_DISCORD_GUILD_ID_is_set(
    emu: DiscordEmulator, tmp_path: Path
) -> None:
    env = bot_env(emu, tmp_path, DISCORD_GUILD_ID=str(emu.guild_id))
    async with start_bot(Settings.from_env(env, dotenv_path=None), emu) as running:
        assert emu.calls_to("PUT", rf"/applications/\d+/guilds/{emu.guild_id}/commands")
        assert None not in emu.commands  # nothing global: instant updates while developing
        (reply,) = await running.command(USER, "help", guild=True)
        assert "/watchlist" in reply["content"]


async def test_slash_command_is_deferred_then_followed_up(bot: RunningBot) -> None:
    options = {"action": "add", "ticker": "AAPL"}
    (added,) = await bot.command(USER, "watchlist", options, guild=True)

    callback = bot.emu.calls_to("POST", r"/interactions/\d+/[^/]+/callback")[-1]
    followup = bot.emu.calls_to("PATCH", r"/webhooks/\d+/[^/]+/messages/@original")[-1]
    assert callback.body["type"] == 5  # "thinking…" first, within Discord's 3 seconds
    assert bot.emu.calls.index(callback) < bot.emu.calls.index(followup)
    assert "Added AAPL" in added["content"]
    assert added["flags"] & EPHEMERAL  # guild command output is the asking user's business
    (shown,) = await bot.command(USER, "watchlist", {"action": "show"}, guild=True)
    assert "AAPL" in shown["content"]


async def test_admin_history_is_ephemeral_for_admins_and_refused_to_others(
    bot: RunningBot,
) -> None:
    await bot.say(USER, "Tell me a joke about Python")

    (history,) = await bot.command(ADMIN, "history", {"user": bot.user(USER)}, guild=True)
    assert history["content"].startswith("History of")
    assert "python" in history["content"].lower()
    assert history["flags"] & EPHEMERAL
    callback = bot.emu.calls_to("POST", r"/interactions/\d+/[^/]+/callback")[-1]
    assert callback.body["data"]["flags"] & EPHEMERAL  # deferred as ephemeral

    (refused,) = await bot.command(USER, "history", {"user": bot.user(USER)}, guild=True)
    assert refused["content"] == "Sorry, that command is only for the bot's admins."
    assert refused["flags"] & EPHEMERAL
    # In a DM an admin command is ephemeral too.
    (in_dm,) = await bot.command(ADMIN, "history", {"limit": 5})
    assert in_dm["flags"] & EPHEMERAL


async def test_export_arrives_as_a_json_file(bot: RunningBot) -> None:
    await bot.say(USER, "Hi, my name is Alice")
    (export,) = await bot.command(USER, "export")

    (attachment,) = export["attachments"]
    assert attachment["filename"].endswith(".json")
    assert "Alice" in json.dumps(json.loads(attachment["content"]))
    assert not export["flags"] & EPHEMERAL  # a DM is private; an ephemeral file would vanish


async def test_burst_of_messages_is_answered_in_order(bot: RunningBot) -> None:
    names = ["Anna", "Bea", "Cleo", "Dora", "Ella"]
    sent = [await bot.emu.send_message(bot.user(USER), f"Hi, my name is {n}") for n in names]

    async def all_answered() -> bool:
        return len(bot.emu.channel_messages(USER + 1)) == len(names) and await bot.settled()

    await wait_until(all_answered, timeout=15)
    replies = bot.emu.channel_messages(USER + 1)
    assert [m["nonce"] for m in replies] == [f"{m['id']}:0" for m in sent]
    assert all(name in m["content"] for name, m in zip(names, replies, strict=True))


async def test_a_message_left_unanswered_by_the_last_run_is_answered_at_start(
    emu: DiscordEmulator, settings: Settings
) -> None:
    lost = Incoming("discord", str(USER), str(USER + 1), "4242", "Hi, my name is Grace")
    async with open_app(settings) as app:
        await app.core.accept(lost)  # recorded, then the process died
        assert [i.message_id for i in await app.core.pending("discord")] == ["4242"]

    async with start_bot(settings, emu) as running:
        settled = running.settled

        async def answered() -> bool:
            return bool(emu.channel_messages(USER + 1)) and await settled()

        await wait_until(answered, timeout=15)
        (reply,) = emu.channel_messages(USER + 1)
        assert reply["nonce"] == "4242:0" and "Grace" in reply["content"]


async def test_sharded_client_identifies_each_shard(emu: DiscordEmulator, tmp_path: Path) -> None:
    env = bot_env(emu, tmp_path, DISCORD_SHARD_COUNT="2")
    async with start_bot(Settings.from_env(env, dotenv_path=None), emu) as running:
        shards = sorted(tuple(op["d"]["shard"]) for op in emu.gateway_ops if op["op"] == 2)
        assert shards == [(0, 2), (1, 2)]
        (dm,) = await running.say(USER, "Hi, my name is Heidi")
        assert "Heidi" in dm["content"]
        (in_guild,) = await running.say(USER, "Hi, my name is Ivan", guild=True, mention_bot=True)
        assert "Ivan" in in_guild["content"]


async def test_the_token_never_appears_in_a_log_line(
    emu: DiscordEmulator, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything at DEBUG and no redaction filter installed: nothing may log the token at all.
    caplog.set_level(logging.DEBUG)
    async with start_bot(settings, emu) as running:
        await running.say(USER, "Tell me a joke about Python")
        await running.command(USER, "help", guild=True)
        await emu.force_reconnect()
        await running.say(USER, "Hi, my name is Judy")
    assert any(r.name.startswith("discord.") for r in caplog.records)  # discord.py did log
    assert TOKEN not in caplog.text
    assert TOKEN.split(".")[-1] not in caplog.text


async def test_stop_finishes_in_flight_turns_and_keeps_later_messages_for_the_next_start(
    emu: DiscordEmulator, settings: Settings
) -> None:
    async with start_bot(settings, emu) as running:
        emu.hold("POST", rf"/channels/{USER + 1}/messages")
        await emu.send_message(running.user(USER), "Hi, my name is Olga")
        await wait_until(lambda: emu.held)  # the reply is on its way when the stop begins
        stopping = asyncio.create_task(running.adapter.stop())
        await wait_until(lambda: running.adapter.stopping)
        late = await emu.send_message(running.user(USER), "Hi, my name is Pia")
        command = await emu.invoke_command(running.user(ADMIN), "stats")
        await wait_until(lambda: emu.followups(command))
        assert "restarting" in emu.followups(command)[0]["content"]
        emu.release()
        await asyncio.wait_for(stopping, TIMEOUT)

        (answered,) = emu.channel_messages(USER + 1)
        assert "Olga" in answered["content"]  # the in-flight turn finished before closing
        pending = await running.app.store.inbox_pending("discord")
        assert [item.message_id for item in pending] == [late["id"]]

    async with start_bot(settings, emu) as running:  # the next run answers it
        settled = running.settled

        async def late_answered() -> bool:
            return len(emu.channel_messages(USER + 1)) == 2 and await settled()

        await wait_until(late_answered, timeout=TIMEOUT)
        assert "Pia" in emu.channel_messages(USER + 1)[1]["content"]


async def test_a_rejected_token_fails_start_with_a_clear_error_and_no_token_in_logs(
    emu: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "T1RIRVI.WRONG0.token-never-to-be-logged"
    settings = Settings.from_env(bot_env(emu, tmp_path, DISCORD_BOT_TOKEN=wrong), dotenv_path=None)
    async with open_app(settings) as app:
        adapter = DiscordAdapter(settings, app.core)
        with pytest.raises(SettingsError, match="DISCORD_BOT_TOKEN was rejected by Discord"):
            await adapter.start()
    assert [c.status for c in emu.calls] == [401]
    assert wrong not in caplog.text
    assert discord.http.Route.BASE == "https://discord.com/api/v10"  # put back
