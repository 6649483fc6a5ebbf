"""kill -9 on Discord: a deterministic nonce per reply closes Telegram's duplicate window.

`python -m bot` on the Discord emulator (gateway + REST). Each round, 10 users send a message
while every message POST is held (a slow Discord); once all ten are recorded and a seeded number
of replies are on their way, the bot is killed, and only then do the held POSTs land (the
replies left, the bot never saw them accepted). The restart replays the unanswered messages:
the replayed POST carries the same nonce with `enforce_nonce`, so Discord hands back the message
it already has (the adapter brings its text up to date) instead of posting a second one.
Three rounds, three kills: every message answered by exactly one bot message, stored once.

(Discord's gateway does not redeliver a message the bot never recorded, so kills here come after
the round's messages are in the inbox; Telegram's redelivery is tested in test_crash_kill.)
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import open_store
from testkit.emulators.discord_api import DiscordEmulator
from tests.reliability.conftest import (
    APP,
    BotProcess,
    Database,
    consistency_problems,
    start_on_discord,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

DISCORD_TOKEN = "OTAwMDAwMDAwMDAwMDAwMDAx.GFAKE1.crash-SECRET-discord_token_0123456789"
SEED = 8
USERS = 10
ROUNDS = 3
FIRST_USER = 3_000_000_000_000_000_001
POSTS = r"/channels/\d+/messages"
TIMEOUT = 30.0
TEXTS = ("tell me a joke about python", "add QDZ to my watchlist", "what's my name?")


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator() as emulator:
        emulator.expected_auth = f"Bot {DISCORD_TOKEN}"
        yield emulator


async def test_kill_9_on_discord_replayed_replies_are_deduplicated_by_nonce(
    emu: DiscordEmulator, database: Database, tmp_path: Path
) -> None:
    env = {
        "DISCORD_BOT_TOKEN": DISCORD_TOKEN,
        "DISCORD_API_BASE": emu.api_base,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
    }
    bot = BotProcess(None, database, tmp_path, extra_env=env)
    rng = random.Random(SEED)
    users = [emu.user(FIRST_USER + i, f"user{i}") for i in range(USERS)]
    sent: dict[str, list[str]] = {u["id"]: [] for u in users}
    landed_late = 0
    try:
        async with await open_store(database.url) as store:
            for text in TEXTS:
                await start_on_discord(bot, emu, TIMEOUT)
                emu.hold("POST", POSTS)
                held_before = len(emu.held)  # `held` keeps earlier rounds' (released) entries
                ids = set()
                for user in users:
                    message = await emu.send_message(user, text)
                    sent[user["id"]].append(message["id"])
                    ids.add(message["id"])
                on_the_way = rng.randint(1, USERS // 2)

                async def recorded(ids: set[str] = ids, k: int = on_the_way + held_before) -> bool:
                    pending = {i.message_id for i in await store.inbox_pending("discord")}
                    return ids <= pending and len(emu.held) >= k

                await bot.until(recorded, TIMEOUT)
                bot.kill()
                assert await bot.wait() == -9
                landed_late += len(emu.held) - held_before
                emu.release()  # the replies on their way land after the bot died
            await start_on_discord(bot, emu, TIMEOUT)

            async def answered() -> bool:
                return not await store.inbox_pending("discord")

            await bot.until(answered, TIMEOUT)
            assert await bot.terminate() == 0, bot.tail()

            posts = emu.calls_to("POST", POSTS)
            replayed = sum(n - 1 for n in Counter(c.body["nonce"] for c in posts).values())
            for user in users:
                channel = int(user["id"]) + 1
                replies = emu.channel_messages(channel)
                # Exactly one bot message per user message: the replayed POSTs were deduped.
                assert [m["nonce"] for m in replies] == [f"{i}:0" for i in sent[user["id"]]]
                assert all(m["content"].strip() for m in replies)
                user_id = await store.find_user("discord", user["id"])
                assert user_id is not None
                events = await store.history(APP, user_id, limit=1000)
                assert [e.text for e in events if e.author == "user"] == list(TEXTS)
                assert not await consistency_problems(store, user_id, events)
                finals = [e.text for e in events if e.final]
                assert [m["content"] for m in replies] == finals  # each shows its real answer
    finally:
        emu.release()
        await bot.close()
    log = bot.log.read_text(errors="replace")
    assert DISCORD_TOKEN not in log
    print(
        f"\n[{database.kind}] discord: {USERS * ROUNDS} messages, {ROUNDS} kills, "
        f"{landed_late} replies landed after the kill, {replayed} replayed POSTs deduplicated "
        f"by nonce, duplicates 0"
    )
