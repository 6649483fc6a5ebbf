"""The scheduler on both backends, on a hand-stepped clock, with the quotes emulator scripting
the price path: alerts fire once per crossing and re-arm after 1% back, `move` once per trading
day, reminders quote their text (late ones say so; a day late is told at the next message),
a failing provider never fires an alert, the outbox is written before the send and survives a
restart, a gone chat falls back to the private one, and the user's jobs follow export,
/forgetme and /link."""

from __future__ import annotations

import time

from bot.messages import Outgoing, SendResult
from bot.scheduler import DOWN_AFTER, QUOTE_CONCURRENCY, Scheduler
from testkit.emulators.quotes import QuotesEmulator
from testkit.helpers import Clock, wait_until

from .conftest import POLL, OpenApp, RecordingSender, say, scheduler, text_of


async def test_alert_fires_once_per_crossing_and_rearms_after_one_percent_back(
    open_proactive: OpenApp, market: QuotesEmulator, clock: Clock
) -> None:
    async with open_proactive() as app:
        await say(app, "/alert AAPL above 200")
        sender = RecordingSender()
        sched = scheduler(app, clock, sender)
        # The price path, one poll each: below, crossed, above, dipped under by < 1%, above
        # again, back by more than 1% (re-armed), crossed again.
        path = [190.0, 201.0, 205.0, 199.0, 203.0, 197.5, 200.5]
        fired_at = []
        for step, price in enumerate(path):
            market.set_price("AAPL", price)
            before = len(sender.sent)
            await sched.tick()
            if len(sender.sent) > before:
                fired_at.append(step)
            clock.now += POLL
        assert fired_at == [1, 6]
        assert sender.texts[0].startswith("🔔 AAPL above 200: now 201")
        assert sender.sent[0].chat_id is None and sender.sent[0].platform_user_id == "42"
        assert len({item.id for item in sender.sent}) == 2
        assert await app.store.pending_outbox(app.settings.app_name, clock.now + 1e6) == []


async def test_below_and_one_request_per_distinct_symbol_per_poll(
    open_proactive: OpenApp, market: QuotesEmulator, clock: Clock
) -> None:
    async with open_proactive() as app:
        await say(app, "/alert TSLA below 240")
        await say(app, "/alert TSLA below 230", user="7")
        await say(app, "/alert AAPL above 500", user="8")
        sender = RecordingSender()
        sched = scheduler(app, clock, sender)
        market.requests.clear()
        await sched.tick()
        assert sorted(symbol for symbol, _ in market.requests) == ["AAPL", "TSLA"]
        market.set_price("TSLA", 235.0)
        clock.now += POLL / 2
        await sched.tick()  # not yet time to poll again
        assert len(market.requests) == 2 and sender.sent == []
        clock.now += POLL / 2
        await sched.tick()
        assert [(i.platform_user_id, i.reply.text) for i in sender.sent] == [
            ("42", "🔔 TSLA below 240: now 235 (-8.52% today).")
        ]


async def test_move_alert_fires_at_most_once_per_trading_day(
    open_proactive: OpenApp, market: QuotesEmulator, clock: Clock
) -> None:
    async with open_proactive() as app:
        await say(app, "/alert MSFT move 5%")
        sender = RecordingSender()
        sched = scheduler(app, clock, sender)
        for change in (2.0, -6.0, -7.0, -5.5):  # crossed at the 2nd poll; same day after
            market.set_price("MSFT", 400.0, change)
            market.market_time = clock.now
            await sched.tick()
            clock.now += POLL
        assert len(sender.sent) == 1 and "MSFT moves 5% in a day" in sender.texts[0]
        assert "(-6.00% today)" in sender.texts[0]
        # Past midnight in New York the quote is still the last session's (its market time
        # says so): the same move, not a new day's.
        clock.now += 18 * 3600  # 04:04 in New York, the next day
        await sched.tick()
        assert len(sender.sent) == 1
        market.market_time = clock.now  # the next session trades, still down 5.5%
        clock.now += POLL
        await sched.tick()
        assert len(sender.sent) == 2


async def test_failing_provider_delays_alerts_and_never_fires_one(
    open_proactive: OpenApp, market: QuotesEmulator, clock: Clock
) -> None:
    async with open_proactive() as app:
        await say(app, "/alert AAPL above 100")  # the emulator's AAPL trades at 187
        sender = RecordingSender()
        sched = scheduler(app, clock, sender)
        for mode in ("error", "garbage", "bad_shape"):
            market.mode = mode
            await sched.tick()
            clock.now += POLL * 20  # past any backoff
        assert sender.sent == []
        market.requests.clear()
        market.mode = "error"
        await sched.tick()
        clock.now += POLL  # backing off: the next poll waits longer than POLL
        await sched.tick()
        assert len(market.requests) == 1
        market.mode = "ok"
        clock.now += POLL * 20
        await sched.tick()
        assert len(sender.sent) == 1 and "now 187.42" in sender.texts[0]


async def test_reminder_arrives_once_with_its_text(open_proactive: OpenApp, clock: Clock) -> None:
    async with open_proactive() as app:
        await say(app, '/remind in 90s call "mom" <b>now</b>', group=True)
        sender = RecordingSender()
        sched = scheduler(app, clock, sender)
        await sched.tick()
        assert sender.sent == []
        clock.now += 91
        await sched.tick()
        await sched.tick()
        assert sender.texts == ['⏰ Reminder: "call "mom" <b>now</b>"']
        [item] = sender.sent
        assert item.chat_id == "group-42" and item.id.startswith("reminder:")
        assert "No reminders" in await text_of(app, "/reminders")


async def test_missed_reminders_late_and_a_day_late(open_proactive: OpenApp, clock: Clock) -> None:
    async with open_proactive() as app:  # the clock: 2026-12-01 15:00 UTC
        await say(app, "/remind at 16:00 water the plants")
        await say(app, "/remind at 17:00 call the bank", user="7")
    clock.now += 3 * 3600  # down until 18:00: 2 h late and 1 h late
    async with open_proactive() as app:
        sender = RecordingSender()
        await scheduler(app, clock, sender).tick()
        assert sorted(sender.texts) == [
            '⏰ Reminder (late: I was offline at 16:00): "water the plants"',
            '⏰ Reminder (late: I was offline at 17:00): "call the bank"',
        ]
        await say(app, "/remind at 19:00 feed the cat")
    clock.now += 26 * 3600  # down for more than a day
    async with open_proactive() as app:
        sender = RecordingSender()
        await scheduler(app, clock, sender).tick()
        assert sender.sent == []  # not sent: told in the next conversation, once
        first = await text_of(app, "hello")
        assert 'I missed your reminder for 2026-12-01 19:00: "feed the cat"' in first
        assert "missed your reminder" not in await text_of(app, "hello again")


async def test_outbox_is_written_before_sending_and_sent_after_a_restart(
    open_proactive: OpenApp, clock: Clock
) -> None:
    async with open_proactive() as app:
        await say(app, "/remind in 1m stand up")
        clock.now += 61
        # A crash after the claim, before the send: the claim wrote the outbox row.
        await scheduler(app, clock, RecordingSender()).fire_due(clock.now)
        [row] = await app.store.pending_outbox(app.settings.app_name, clock.now)
        assert row.text == '⏰ Reminder: "stand up"'
        assert await app.store.due_jobs(app.settings.app_name, clock.now) == []
    async with open_proactive() as app:
        sender = RecordingSender()
        sched = scheduler(app, clock, sender)
        await sched.tick()
        await sched.tick()
        assert sender.texts == ['⏰ Reminder: "stand up"']
        assert [i.id for i in sender.tried] == [row.id]


async def test_retry_waits_and_nothing_is_lost(open_proactive: OpenApp, clock: Clock) -> None:
    async with open_proactive() as app:
        await say(app, "/remind in 1m stand up")
        sender = RecordingSender()
        sender.answer = lambda item: SendResult.RETRY
        sched = scheduler(app, clock, sender)
        clock.now += 61
        await sched.tick()
        await sched.tick()  # waiting out the backoff
        assert len(sender.tried) == 1 and sender.sent == []
        sender.answer = lambda item: SendResult.SENT
        clock.now += 10
        await sched.tick()
        await sched.tick()
        assert sender.texts == ['⏰ Reminder: "stand up"'] and len(sender.tried) == 2


async def test_a_gone_chat_falls_back_to_private_then_to_a_linked_account(
    open_proactive: OpenApp, clock: Clock
) -> None:
    async with open_proactive() as app:
        await say(app, "/remind in 1m in the group", group=True)
        telegram, discord = RecordingSender("telegram"), RecordingSender("discord")
        telegram.answer = lambda item: (
            SendResult.CHAT_GONE if item.chat_id is not None else SendResult.SENT
        )
        clock.now += 61
        sched = scheduler(app, clock, telegram, discord)
        await sched.tick()
        await sched.tick()
        assert [(i.chat_id, i.reply.text) for i in telegram.sent] == [
            (None, '⏰ Reminder: "in the group"')
        ]
        # Blocked in private too: the user's Discord account (linked) gets it.
        await say(app, "/remind in 1m blocked everywhere on telegram")
        await say(app, "hi", platform="discord", user="d-42")
        code = (await text_of(app, "/link")).split("Your link code: ")[1].split()[0]
        assert "linked" in (await text_of(app, f"/link {code} confirm", platform="discord",
                                         user="d-42")).lower()  # fmt: skip
        telegram.answer = lambda item: SendResult.CHAT_GONE
        clock.now += 61
        await sched.tick()
        await sched.tick()
        assert [(i.platform, i.chat_id, i.platform_user_id) for i in discord.sent] == [
            ("discord", None, "d-42")
        ]


async def test_jobs_are_the_users_data_export_forget_and_link(
    open_proactive: OpenApp, clock: Clock
) -> None:
    async with open_proactive() as app:
        await say(app, "/alert AAPL above 200")
        await say(app, "/remind in 2h private thing")
        name = app.settings.app_name
        user_id = await app.store.find_user("telegram", "42")
        assert user_id is not None
        exported = await app.store.export_user(name, user_id)
        assert [(j["kind"], j.get("symbol"), j.get("text")) for j in exported["jobs"]] == [
            ("alert", "AAPL", None),
            ("reminder", None, "private thing"),
        ]
        # /link merge: the joining account's jobs move to the account it joins.
        await say(app, "/alert TSLA below 100", platform="discord", user="d-9")
        code = (await text_of(app, "/link")).split("Your link code: ")[1].split()[0]
        await say(app, f"/link {code} confirm", platform="discord", user="d-9")
        assert "1. AAPL above 200\n2. TSLA below 100" in await text_of(app, "/alerts")
        # /forgetme erases them, with any unsent outbox row.
        clock.now += 3 * 3600
        await scheduler(app, clock, RecordingSender()).fire_due(clock.now)
        assert len(await app.store.pending_outbox(name, clock.now)) == 1
        await say(app, "/forgetme")
        await say(app, "/forgetme confirm")
        assert await app.store.jobs(name, user_id) == []
        assert await app.store.pending_outbox(name, clock.now) == []
        assert await app.store.alert_symbols(name) == []


async def test_outgoing_carries_a_deterministic_id(open_proactive: OpenApp, clock: Clock) -> None:
    async with open_proactive() as app:
        await say(app, "/remind in 1m stand up")
        seen: list[Outgoing] = []
        sender = RecordingSender()
        sender.answer = lambda item: seen.append(item) or SendResult.RETRY  # type: ignore[func-returns-value]
        sched = scheduler(app, clock, sender)
        clock.now += 61
        await sched.tick()
        clock.now += 60
        await sched.tick()
        assert len(seen) == 2 and seen[0].id == seen[1].id


async def test_digest_lists_the_watchlist_with_prices_once_a_day(
    open_proactive: OpenApp, market: QuotesEmulator, clock: Clock
) -> None:
    async with open_proactive() as app:  # the clock: Tue 2026-12-01 15:00 UTC
        await say(app, "/watchlist add AAPL")
        await say(app, "/watchlist add NOPE")
        await say(app, "/digest 16:00")
        await say(app, "/digest 16:00", user="7")  # an empty watchlist
        sender = RecordingSender()
        sched = scheduler(app, clock, sender)
        market.requests.clear()
        for _ in range(2 * 24):  # two days, hourly
            clock.now += 3600
            await sched.tick()
        mine = [i.reply.text for i in sender.sent if i.platform_user_id == "42"]
        assert mine[0] == (
            "📰 Your digest (Tue 01 Dec):\nAAPL 187.42 USD (+1.25%)\nNOPE: no quote right now"
        )
        assert len(mine) == 2 and mine[1].startswith("📰 Your digest (Wed 02 Dec)")
        theirs = [i.reply.text for i in sender.sent if i.platform_user_id == "7"]
        assert len(theirs) == 2 and "your watchlist is empty" in theirs[0]
        assert sorted(s for s, _ in market.requests) == ["AAPL", "AAPL", "NOPE", "NOPE"]


async def test_each_process_sends_only_on_its_own_platforms(
    open_proactive: OpenApp, clock: Clock
) -> None:
    """Telegram and Discord may run in separate processes on one database: either may claim a
    due job, but only the one running its platform sends it; a fallback to another platform's
    account waits for that process too."""
    async with open_proactive() as app:
        await say(app, "/remind in 1m on discord", platform="discord", user="d-1")
        clock.now += 61
        telegram_only = RecordingSender("telegram")
        await scheduler(app, clock, telegram_only).tick()
        assert telegram_only.tried == []
        [waiting] = await app.store.pending_outbox(app.settings.app_name, clock.now)
        assert waiting.platform == "discord"
        discord = RecordingSender("discord")
        await scheduler(app, clock, discord).tick()
        assert discord.texts == ['⏰ Reminder: "on discord"']


async def test_a_poll_gives_up_early_when_the_provider_is_down(
    open_proactive: OpenApp, market: QuotesEmulator, clock: Clock
) -> None:
    async with open_proactive() as app:
        market.mode = "error"  # (set first: /alert takes a symbol it cannot check now)
        for n in range(40):  # 40 distinct symbols, 20 alerts each for two users
            await say(app, f"/alert S{n} above 10", user=str(n % 2))
        market.requests.clear()
        sender = RecordingSender()
        await scheduler(app, clock, sender).tick()
        # Gave up after DOWN_AFTER failures in a row (plus those already in flight).
        assert len(market.requests) <= DOWN_AFTER + QUOTE_CONCURRENCY < 40
        assert sender.sent == []


async def test_running_on_its_own_and_stopping_cleanly(
    open_proactive: OpenApp, clock: Clock
) -> None:
    async with open_proactive() as app:
        await say(app, "/remind in 1m stand up")
        clock.now += 61
        sender = RecordingSender()
        assert app.quotes is not None
        sched = Scheduler(
            app.store, app.settings.app_name, app.quotes, [sender], clock=clock, tick_seconds=0.01
        )
        await sched.start()
        await wait_until(lambda: sender.sent, timeout=10)
        started = time.monotonic()
        await sched.stop()
        assert time.monotonic() - started < 2
        await sched.stop()  # idempotent
        assert sender.texts == ['⏰ Reminder: "stand up"']


async def test_sends_and_polls_are_counted_without_user_data(
    open_proactive: OpenApp, clock: Clock
) -> None:
    async with open_proactive() as app:
        await say(app, "/remind in 1m secret errand")
        await say(app, "/alert AAPL above 1")
        sender = RecordingSender()
        answers = iter([SendResult.RETRY, SendResult.SENT, SendResult.SENT])
        sender.answer = lambda item: next(answers)
        assert app.quotes is not None
        sched = Scheduler(
            app.store, app.settings.app_name, app.quotes, [sender], clock=clock, jitter=0,
            observer=app.metrics,
        )  # fmt: skip
        clock.now += 61
        await sched.tick()  # the alert fires and is sent; the reminder is retried
        clock.now += 10
        await sched.tick()
        text = app.metrics.render().decode()
        for kind, outcome in (("reminder", "retry"), ("reminder", "sent"), ("alert", "sent")):
            line = f'switchboard_proactive_messages_total{{kind="{kind}",outcome="{outcome}"}} 1.0'
            assert line in text
        assert 'switchboard_alert_poll_seconds_count{phase="quote"} 1.0' in text
        assert "secret" not in text and "AAPL" not in text and '"42"' not in text


async def test_the_fallback_tries_every_linked_account_once_whatever_its_age(
    open_proactive: OpenApp, clock: Clock
) -> None:
    async with open_proactive() as app:
        await say(app, "hi", platform="discord", user="d-7")  # met the bot on Discord first
        code = (
            (await text_of(app, "/link", platform="discord", user="d-7"))
            .split("Your link code: ")[1]
            .split()[0]
        )
        await say(app, f"/link {code} confirm", user="7")  # then Telegram joined
        await say(app, "/remind in 1m the older account gets it", user="7")
        telegram, discord = RecordingSender("telegram"), RecordingSender("discord")
        telegram.answer = lambda item: SendResult.CHAT_GONE
        discord.answer = lambda item: SendResult.CHAT_GONE
        sched = scheduler(app, clock, telegram, discord)
        clock.now += 61
        for _ in range(4):
            await sched.tick()
        # Telegram's private chat, then the Discord DM, each once; then dropped, not looped.
        assert [(i.platform, i.platform_user_id) for i in telegram.tried + discord.tried] == [
            ("telegram", "7"),
            ("discord", "d-7"),
        ]
        assert await app.store.pending_outbox(app.settings.app_name, clock.now + 1e6) == []
