"""Private output never reaches a place others on Discord can see (issue 12, point 1).

Every command whose answer is private (/link, /export, /forgetme and the admin commands) is asked
in each place a Discord user can ask: a DM, a guild channel with a mention (text form), a slash
command in a guild. Real discord.py against the emulator, the real core on both backends. What
counts as public: every bot message in the guild channel and every non-ephemeral response to a
guild interaction. It may only hold the notes that stand in for a private answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.private import NO_DM, SENT
from adapters.text import DISCORD_LIMIT
from bot.admin_commands import ADMIN_COMMANDS
from bot.conversation import GROUP_ADMIN
from bot.settings import Settings
from testkit.emulators.discord_api import EPHEMERAL, DiscordEmulator
from tests.e2e.discord.conftest import ADMIN, TOKEN, USER, RunningBot, bot_env, start_bot

pytestmark = pytest.mark.e2e

MARKER = "zebra-marker-7731"  # in USER's history: the export and /history carry it
LONG = f"My note {MARKER}: " + "the quick brown fox jumps over the lazy dog " * 6
NOTES = {SENT, NO_DM, GROUP_ADMIN}
PLACES = ("dm", "guild-mention", "guild-slash")
# (who asks, command, slash options); /forget (erasing) is left out: it would end the matrix.
ADMIN_ASKS = [
    ("history", {"user": USER, "limit": 50}),
    ("sessions", {}),
    ("stats", {}),
    ("user", {"user": USER}),
]
USER_ASKS: list[tuple[str, dict[str, Any]]] = [
    ("link", {}),
    ("link", {"code": "list"}),
    ("export", {}),
    ("forgetme", {}),
    ("alerts", {}),
    ("reminders", {}),
    ("tz", {}),
    ("digest", {}),
]
SCHEDULE_LISTS = {"alerts", "reminders", "tz", "digest"}


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator() as emulator:
        emulator.expected_auth = f"Bot {TOKEN}"
        yield emulator


@pytest.fixture
async def bot(emu: DiscordEmulator, tmp_path: Path, any_db_url: str) -> AsyncIterator[RunningBot]:
    env = bot_env(emu, tmp_path, DATABASE_URL=any_db_url)
    async with start_bot(Settings.from_env(env, dotenv_path=None), emu) as running:
        for _ in range(6):  # enough history for /history to need more than one message
            await running.say(USER, LONG)
        await running.say(USER, f"/remind in 1d {MARKER}")  # /reminders quotes it
        yield running


async def ask(bot: RunningBot, place: str, who: int, name: str, options: dict[str, Any]) -> Any:
    if place == "guild-slash":  # the user picked in the member picker
        picked = {k: bot.user(v) if k == "user" else v for k, v in options.items()}
        return await bot.command(who, name, picked, guild=True)
    typed = {k: f"<@{v}>" if k == "user" else v for k, v in options.items()}  # a mention
    line = " ".join([f"/{name}", *(str(v) for v in typed.values())])
    if place == "dm":
        return await bot.say(who, line)
    return await bot.say(who, line, guild=True, mention_bot=True)


def public(emu: DiscordEmulator, interactions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Everything others in the guild can see that the bot sent."""
    shown = list(emu.channel_messages(emu.guild_channel_id))
    for payload in interactions:
        if "guild_id" in payload:
            shown += [m for m in emu.followups(payload) if not m["flags"] & EPHEMERAL]
    return shown


@pytest.mark.parametrize("place", PLACES)
async def test_private_answers_never_reach_a_shared_place(bot: RunningBot, place: str) -> None:
    emu = bot.emu
    asks = [(ADMIN, n, o) for n, o in ADMIN_ASKS] + [(USER, n, o) for n, o in USER_ASKS]
    assert {n for _, n, _ in asks} | {"forget"} == {c.name for c in ADMIN_COMMANDS} | {
        "link",
        "export",
        "forgetme",
        *SCHEDULE_LISTS,
    }
    interactions = []
    for who, name, options in asks:
        answer = await ask(bot, place, who, name, options)
        if place == "guild-slash":
            interactions.append(emu.interactions[_last_token(emu)]["payload"])
            assert all(m["flags"] & EPHEMERAL for m in answer), name  # follow-ups included

    shown = public(emu, interactions)
    assert {m["content"] for m in shown} <= NOTES
    assert not any(m["attachments"] for m in shown)
    everything = json.dumps(shown)
    assert MARKER not in everything and "link code" not in everything.lower()
    # ...while the asking user did get the answers, where only they see them.
    private = _private_texts(emu, interactions)
    assert re.search(r"Your link code: \S+", private)
    assert MARKER in private  # /history (and the export file)
    if place == "guild-slash":
        history = emu.followups(interactions[0])
        assert len(history) > 1 and len(history[0]["content"]) <= DISCORD_LIMIT  # overflowed
    if place == "guild-mention":
        assert [m["content"] for m in shown].count(SENT) == len(USER_ASKS)


async def test_closed_dms_leave_a_note_without_the_content(bot: RunningBot) -> None:
    bot.emu.close_dms(USER)

    (note,) = await bot.say(USER, "/link", guild=True, mention_bot=True)
    (export_note,) = await bot.say(USER, "/export", guild=True, mention_bot=True)

    assert note["content"] == export_note["content"] == NO_DM
    assert not export_note["attachments"]
    dm = bot.emu.channel_messages(bot.emu.dm_channel_id(USER))
    assert "link code" not in json.dumps(dm).lower() and not any(m["attachments"] for m in dm)
    assert await bot.settled()  # closed, not left for a retry that cannot help


def _last_token(emu: DiscordEmulator) -> str:
    return list(emu.interactions)[-1]


def _private_texts(emu: DiscordEmulator, interactions: list[dict[str, Any]]) -> str:
    texts = []
    for user in (USER, ADMIN):
        for m in emu.channel_messages(emu.dm_channel_id(user)):
            texts += [m["content"], *(a["content"] for a in m["attachments"])]
    for payload in interactions:
        for m in emu.followups(payload):
            texts += [m["content"], *(a["content"] for a in m["attachments"])]
    return "\n".join(texts)
