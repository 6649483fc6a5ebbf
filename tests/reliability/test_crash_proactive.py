"""kill -9 of `python -m bot` around proactive messages (issue 15), on both backends.

The bot runs as a real process on the Telegram (or Discord) emulator, with the quotes emulator
and ALERT_POLL_SECONDS=1; users set reminders and alerts by chat. Each kill hits an exact,
observed point of a message's life:

- before the claim: the reminder is stored, not yet due, when the bot dies; it comes due while
  the bot is down (checked in the database: the job is still there, no outbox row);
- after the claim, before the send: the outbox row is written and the sendMessage is on its
  way, held by the emulator, which never lets it through (Telegram never saw it);
- after the send, before the mark: the sendMessage reached Telegram, which keeps it; the bot
  dies before it sees the answer, so its outbox row is still unsent.

After each restart: none lost; on Telegram at most one duplicate per kill (only the last point
can make one); on Discord none at all, since the resend carries the same nonce. A restart
also catches up: a reminder missed while down is sent once, marked late.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from storage import Store, open_store
from storage.types import Event, EventActions, Job, ScheduleChange, new_id
from testkit.emulators.discord_api import DiscordEmulator
from testkit.emulators.quotes import Listing, QuotesEmulator
from testkit.emulators.telegram_api import Call, TelegramApiEmulator
from testkit.helpers import wait_until
from tests.reliability.conftest import APP, BotProcess, Database, start_on_discord

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

TIMEOUT = 45.0  # generous: a resend after a kill also waits for the outbox lease
DISCORD_TOKEN = "OTAwMDAwMDAwMDAwMDAwMDAx.GFAKE2.crash-SECRET-proactive_token_0123456"
POSTS = r"/channels/\d+/messages"


@pytest.fixture
async def market() -> AsyncIterator[QuotesEmulator]:
    async with QuotesEmulator({"TSLA": Listing(160.0, 158.0)}) as emulator:
        yield emulator


def proactive_env(market: QuotesEmulator) -> dict[str, str]:
    # A short lease: a message left mid-send by the killed process goes out soon after the
    # restart (the emulators answer in milliseconds, far below it).
    return {
        "ALERT_POLL_SECONDS": "1",
        "OUTBOX_LEASE_SECONDS": "3",
        "QUOTES_BASE_URL": market.base_url,
    }


class Chat:
    """One Telegram user talking to the bot process."""

    def __init__(self, tg: TelegramApiEmulator, bot: BotProcess, user: int) -> None:
        self.tg, self.bot, self.user = tg, bot, user

    async def say(self, text: str) -> str:
        before = len(self.tg.bot_messages(self.user))
        self.tg.private_text(self.user, text)
        await self.bot.until(lambda: len(self.tg.bot_messages(self.user)) > before, TIMEOUT)
        return self.tg.shown(self.user)[before]

    def count(self, text: str) -> int:
        return self.tg.shown(self.user).count(text)

    def count_prefix(self, prefix: str) -> int:
        return sum(text.startswith(prefix) for text in self.tg.shown(self.user))


def kill_on(bot: BotProcess, user: int, mark: str) -> Callable[[Call], None]:
    """The emulator's request hook: SIGKILL as the bot's `mark` message to `user` arrives
    (Telegram takes it; the bot never sees the answer)."""

    def hook(call: Call) -> None:
        text = str(call.params.get("text", ""))
        to_user = str(call.params.get("chat_id")) == str(user)
        if call.method == "sendMessage" and to_user and text.startswith(mark):
            bot.kill()

    return hook


async def jobs_of(store: Store, platform: str, user: int) -> list[Job]:
    user_id = await store.find_user(platform, str(user))
    assert user_id is not None
    return await store.jobs(APP, user_id)


async def unsent(store: Store) -> list[str]:
    return [item.text for item in await store.pending_outbox(APP, time.time() + 86_400)]


async def test_kill_9_around_a_reminder_loses_none_on_telegram(
    tg: TelegramApiEmulator, database: Database, tmp_path: Path, market: QuotesEmulator
) -> None:
    bot = BotProcess(tg, database, tmp_path, extra_env=proactive_env(market))
    before_claim, in_flight, sent = (Chat(tg, bot, u) for u in (740_001, 740_002, 740_003))
    try:
        async with await open_store(database.url) as store:
            # 1. Before the claim: due while the bot is down.
            await bot.start()
            assert (
                await before_claim.say("remind me in 3 seconds to water the plants")
            ).startswith("OK")
            bot.kill()
            assert await bot.wait() == -9
            [job] = await jobs_of(store, "telegram", before_claim.user)
            assert await unsent(store) == []
            await wait_until(lambda: time.time() > (job.due_at or 0) + 0.5, timeout=TIMEOUT)

            # 2. After the claim, before the send: held on its way, never taken.
            await bot.start()
            await bot.until(lambda: before_claim.count('⏰ Reminder: "water the plants"'), TIMEOUT)
            await in_flight.say("remind me in 2 seconds to stretch")
            tg.hold("sendMessage")
            await bot.until(lambda: any("stretch" in str(c.params) for c in tg.holding), TIMEOUT)
            bot.kill()
            assert await bot.wait() == -9
            tg.drop_held()  # answered 502 to nobody: Telegram never took it
            assert await unsent(store) == ['⏰ Reminder: "stretch"']  # claimed, not sent
            assert await jobs_of(store, "telegram", in_flight.user) == []

            # 3. After the send, before the mark: Telegram has it, the bot never knew.
            await bot.start()
            await bot.until(lambda: in_flight.count('⏰ Reminder: "stretch"'), TIMEOUT)
            tg.on_call = kill_on(bot, sent.user, "⏰")
            await sent.say("remind me in 2 seconds to call mom")
            assert await bot.wait(TIMEOUT) == -9
            tg.on_call = None
            assert await unsent(store) == ['⏰ Reminder: "call mom"']

            await bot.start()
            await bot.until(lambda: sent.count('⏰ Reminder: "call mom"'), TIMEOUT)
            await bot.until(_no_outbox(store), TIMEOUT)
            assert await bot.terminate() == 0, bot.tail()
    finally:
        await bot.close()

    assert before_claim.count('⏰ Reminder: "water the plants"') == 1
    assert in_flight.count('⏰ Reminder: "stretch"') == 1
    # Telegram takes no idempotency key: the send in flight at the kill may show twice.
    duplicates = sent.count('⏰ Reminder: "call mom"') - 1
    assert 0 <= duplicates <= 1
    print(f"\n[{database.kind}] telegram reminders: 3 kills, none lost, duplicates {duplicates}")


async def test_kill_9_around_an_alert_fires_it_once_per_crossing(
    tg: TelegramApiEmulator, database: Database, tmp_path: Path, market: QuotesEmulator
) -> None:
    bot = BotProcess(tg, database, tmp_path, extra_env=proactive_env(market))
    watcher = Chat(tg, bot, 741_001)
    first, second = "🔔 TSLA below 150: now 149", "🔔 TSLA below 150: now 148"
    try:
        async with await open_store(database.url) as store:
            # 1. Before the claim: the price crosses while the bot is down.
            await bot.start()
            await watcher.say("tell me when TSLA drops below 150")
            bot.kill()
            assert await bot.wait() == -9
            market.prices["TSLA"] = Listing(149.0, 158.0)
            [job] = await jobs_of(store, "telegram", watcher.user)
            assert job.armed and await unsent(store) == []
            await bot.start()  # a fresh quote after the restart fires it
            await bot.until(lambda: watcher.count_prefix(first), TIMEOUT)

            # 2. After the claim (disarmed, outbox row written), before Telegram took it.
            market.prices["TSLA"] = Listing(152.0, 158.0)  # back up by more than 1%: re-armed

            async def rearmed() -> bool:
                return all(j.armed for j in await jobs_of(store, "telegram", watcher.user))

            await bot.until(rearmed, TIMEOUT)
            tg.hold("sendMessage")
            market.prices["TSLA"] = Listing(148.0, 158.0)
            await bot.until(lambda: any(second in str(c.params) for c in tg.holding), TIMEOUT)
            bot.kill()
            assert await bot.wait() == -9
            tg.drop_held()
            [job] = await jobs_of(store, "telegram", watcher.user)
            assert not job.armed and len(await unsent(store)) == 1

            await bot.start()
            await bot.until(lambda: watcher.count_prefix(second), TIMEOUT)
            polls = len(market.requests)
            await bot.until(lambda: len(market.requests) >= polls + 3, TIMEOUT)
            assert await bot.terminate() == 0, bot.tail()
    finally:
        await bot.close()
    # Each crossing told once: not lost to a kill, not fired again from the same crossing.
    assert (watcher.count_prefix(first), watcher.count_prefix(second)) == (1, 1)


async def test_a_restart_catches_up_on_reminders_missed_while_down(
    tg: TelegramApiEmulator, database: Database, tmp_path: Path, market: QuotesEmulator
) -> None:
    bot = BotProcess(tg, database, tmp_path, extra_env=proactive_env(market))
    user = Chat(tg, bot, 742_001)
    try:
        async with await open_store(database.url) as store:
            await bot.start()
            await user.say("hello")
            bot.kill()
            assert await bot.wait() == -9
            # Set while it ran, due while it was down: 10 minutes late, and two days late.
            now = time.time()
            await _add_reminders(
                store, user.user, {"feed the cat": now - 600, "renew": now - 2 * 86_400}
            )

            await bot.start()
            await bot.until(
                lambda: any("late: I was offline" in t for t in tg.shown(user.user)), TIMEOUT
            )
            tg.private_text(user.user, "hi again")  # the one missed by days: told in the next chat
            await bot.until(
                lambda: any("missed your reminder" in t for t in tg.shown(user.user)), TIMEOUT
            )
            await bot.until(_no_outbox(store), TIMEOUT)
            assert await bot.terminate() == 0, bot.tail()
    finally:
        await bot.close()
    shown = tg.shown(user.user)
    late = [t for t in shown if "late: I was offline" in t]
    assert len(late) == 1 and '"feed the cat"' in late[0]
    missed = [t for t in shown if "missed your reminder" in t]
    assert len(missed) == 1 and '"renew"' in missed[0], shown


async def test_kill_9_on_discord_resends_without_a_duplicate(
    database: Database, tmp_path: Path, market: QuotesEmulator
) -> None:
    async with DiscordEmulator() as emu:
        emu.expected_auth = f"Bot {DISCORD_TOKEN}"
        env = {
            "DISCORD_BOT_TOKEN": DISCORD_TOKEN,
            "DISCORD_API_BASE": emu.api_base,
            "DISCORD_GATEWAY_URL": emu.gateway_url,
            **proactive_env(market),
        }
        bot = BotProcess(None, database, tmp_path, extra_env=env)
        users = [emu.user(3_100_000_000_000_000_001 + i, f"user{i}") for i in range(2)]
        try:
            async with await open_store(database.url) as store:
                texts = ("remind me in 2 seconds to stretch", "tell me when TSLA drops below 150")
                for user, text in zip(users, texts, strict=True):
                    await _kill_while_posting(bot, emu, market, store, user, text)
                    assert len(await unsent(store)) == 1  # the bot never saw it accepted
                await start_on_discord(bot, emu, TIMEOUT)
                await bot.until(_no_outbox(store), TIMEOUT)
                assert await bot.terminate() == 0, bot.tail()
        finally:
            emu.release()
            await bot.close()

        for user, mark in zip(users, ("⏰", "🔔"), strict=True):
            shown = [m for m in emu.channel_messages(emu.dm_channel_id(user["id"]))]
            proactive = [m for m in shown if m["content"].startswith(mark)]
            assert len(proactive) == 1, shown  # the resend's nonce found the landed message
        resent = emu.calls_to("POST", POSTS)
        nonces = [
            c.body.get("nonce") for c in resent if str(c.body.get("nonce", "")).startswith("o")
        ]
        assert len(nonces) > len(set(nonces))  # a resend did happen, and was deduplicated


async def _kill_while_posting(
    bot: BotProcess,
    emu: DiscordEmulator,
    market: QuotesEmulator,
    store: Store,
    user: dict[str, Any],
    text: str,
) -> None:
    """Start (and let the last run's outbox go out), let `user` set a job by DM, hold
    Discord's message POSTs, let it fire (TSLA crosses), SIGKILL while its POST is held, then
    let the POST land."""
    market.prices["TSLA"] = Listing(160.0, 158.0)
    await start_on_discord(bot, emu, TIMEOUT)
    await bot.until(_no_outbox(store), TIMEOUT)
    dm = emu.dm_channel_id(user["id"])
    await emu.send_message(user, text)
    await bot.until(lambda: len(emu.channel_messages(dm)) >= 1, TIMEOUT)
    emu.hold("POST", POSTS)
    held = len(emu.held)
    market.prices["TSLA"] = Listing(149.0, 158.0)
    await bot.until(lambda: len(emu.held) > held, TIMEOUT)
    bot.kill()  # the message POST is on its way; it lands after the kill
    assert await bot.wait() == -9
    emu.release()


def _no_outbox(store: Store) -> Callable[[], object]:
    async def empty() -> bool:
        return not await unsent(store)

    return empty


async def _add_reminders(store: Store, user: int, due: dict[str, float]) -> None:
    """Reminders as the /remind command stores them: an event's schedule changes."""
    user_id = await store.find_user("telegram", str(user))
    assert user_id is not None
    session = await store.get_session(APP, user_id, f"telegram:{user}")
    assert session is not None
    jobs = [
        Job(new_id(), "reminder", "telegram", None, str(user), at - 3600, text=text, due_at=at)
        for text, at in due.items()
    ]
    changes = tuple(ScheduleChange("add", job=job) for job in jobs)
    event = Event("system", {"text": "/remind"}, actions=EventActions(schedule_changes=changes))
    assert await store.append_event(session, event)
