"""/alert, /alerts, /remind, /reminders, /digest and /tz on both backends: what they store (as
events carrying schedule_changes), what they answer, their limits and usage lines, and that a
list about one user never lands in a shared chat."""

from __future__ import annotations

from datetime import UTC, datetime

from agents.profile import TIME_ZONE_KEY
from agents.schedules import MAX_ALERTS, MAX_REMINDERS
from testkit.emulators.quotes import QuotesEmulator
from testkit.helpers import Clock

from .conftest import OpenApp, say, text_of


async def _user(app) -> str:  # type: ignore[no-untyped-def]
    user_id = await app.store.find_user("telegram", "42")
    assert user_id is not None
    return user_id


async def test_alerts_set_listed_removed_with_buttons(open_proactive: OpenApp) -> None:
    async with open_proactive() as app:
        set_ = await text_of(app, "/alert aapl above 200")
        assert set_.startswith("Alert set: AAPL above 200 (now 187.42 USD).")
        assert "Alert set: TSLA below 150.5" in await text_of(app, "/alert $TSLA below 150.50")
        assert "MSFT moves 5% in a day" in await text_of(app, "/alert MSFT move 5%")
        [listing] = await say(app, "/alerts")
        assert listing.text.splitlines() == [
            "Your alerts:",
            "1. AAPL above 200",
            "2. TSLA below 150.5",
            "3. MSFT moves 5% in a day",
        ]
        assert listing.private
        listed = await app.store.jobs(app.settings.app_name, await _user(app))
        assert [a.label for a in listing.actions] == ["Remove 1", "Remove 2", "Remove 3"]
        assert [a.command for a in listing.actions] == [f"/alert remove {j.id}" for j in listed]
        [removed] = await say(app, "/alert remove 2")
        assert removed.text == "Removed: TSLA below 150.5" and removed.private
        assert "There is no alert number 7" in await text_of(app, "/alert remove 7")
        # The old list's buttons still name their own alerts: "Remove 3" is MSFT, now number 2.
        stale_tsla, stale_msft = listing.actions[1], listing.actions[2]
        assert await text_of(app, stale_tsla.command) == "That alert is already gone."
        assert await text_of(app, stale_msft.command) == "Removed: MSFT moves 5% in a day"
        assert "Alert set: MSFT moves 5% in a day" in await text_of(app, "/alert MSFT move 5%")
        jobs = await app.store.jobs(app.settings.app_name, await _user(app))
        assert [(j.symbol, j.op, j.value) for j in jobs] == [
            ("AAPL", "above", 200.0),
            ("MSFT", "move", 5.0),
        ]
        assert all(j.chat_id is None and j.platform == "telegram" for j in jobs)  # private chat
    async with open_proactive() as app:  # after a restart
        assert "1. AAPL above 200\n2. MSFT moves 5% in a day" in await text_of(app, "/alerts")


async def test_alert_usage_lines_and_limit(open_proactive: OpenApp, market: QuotesEmulator) -> None:
    async with open_proactive() as app:
        for bad in (
            "/alert",
            "/alert AAPL",
            "/alert AAPL sideways 3",
            "/alert AAPL above",
            "/alert AAPL above 1 2",
        ):
            assert (await text_of(app, bad)).startswith("Usage: /alert"), bad
        assert "is not a price" in await text_of(app, "/alert AAPL above cheap")
        assert "is not a percentage" in await text_of(app, "/alert AAPL move 150%")
        assert "A ticker is" in await text_of(app, "/alert $$$ above 3")
        assert "couldn't find a quote for NOPE" in await text_of(app, "/alert NOPE above 3")
        market.mode = "error"  # the provider is down: the alert is set, unchecked
        assert "Alert set: MSFT above 1. I'll" in await text_of(app, "/alert MSFT above 1")
        market.mode = "ok"
        for n in range(MAX_ALERTS - 1):
            assert "Alert set" in await text_of(app, f"/alert AAPL above {100 + n}")
        assert "remove one first" in await text_of(app, "/alert AAPL above 999")
        assert len(await app.store.jobs(app.settings.app_name, await _user(app))) == MAX_ALERTS


async def test_reminders_set_listed_removed(open_proactive: OpenApp, clock: Clock) -> None:
    async with open_proactive() as app:  # the clock: 2026-12-01 15:00 UTC
        answer = await text_of(app, "/remind in 1h30m stretch your legs")
        assert answer == 'Reminder set for 2026-12-01 16:30 (UTC): "stretch your legs"'
        assert "2026-12-02 09:00 (UTC)" in await text_of(app, "/remind at 09:00 call mom")
        assert "2026-12-24 18:00" in await text_of(app, "/remind 2026-12-24 18:00 gifts!")
        assert "has passed already" in await text_of(app, "/remind 2026-11-30 10:00 late")
        [listing] = await say(app, "/reminders")
        assert listing.private and listing.text.splitlines() == [
            "Your reminders:",
            '1. 2026-12-01 16:30 (UTC): "stretch your legs"',
            '2. 2026-12-02 09:00 (UTC): "call mom"',
            '3. 2026-12-24 18:00 (UTC): "gifts!"',
        ]
        assert 'Removed: 2026-12-02 09:00 (UTC): "call mom"' in await text_of(
            app, "/remind remove 2"
        )
        jobs = await app.store.jobs(app.settings.app_name, await _user(app))
        due = [datetime.fromtimestamp(j.due_at or 0, UTC).strftime("%d %H:%M") for j in jobs]
        assert due == ["01 16:30", "24 18:00"]


async def test_reminder_usage_and_limit(open_proactive: OpenApp) -> None:
    async with open_proactive() as app:
        for bad in ("/remind", "/remind in 10m", "/remind at 09:00", "/remind tomorrow"):
            assert (await text_of(app, bad)).startswith("Usage: /remind"), bad
        assert "is not a duration" in await text_of(app, "/remind in 10x stretch")
        assert "is not a time of day" in await text_of(app, "/remind at 25:00 stretch")
        assert "is not a date" in await text_of(app, "/remind 2026-13-01 10:00 stretch")
        assert "at most 500 characters" in await text_of(app, "/remind in 1m " + "x" * 501)
        for n in range(MAX_REMINDERS):
            assert "Reminder set" in await text_of(app, f"/remind in {n + 1}m item {n}")
        assert "remove one first" in await text_of(app, "/remind in 1h one too many")


async def test_time_zone_and_digest(open_proactive: OpenApp, clock: Clock) -> None:
    async with open_proactive() as app:
        assert "Your time zone: UTC" in await text_of(app, "/tz")
        assert "not a time zone I know" in await text_of(app, "/tz Mars/Olympus")
        assert "not a time zone" in await text_of(app, "/tz ../../etc/passwd")
        assert "Your digest: off" in await text_of(app, "/digest")
        assert "Every day at 08:30 (UTC)" in await text_of(app, "/digest 8:30")
        [moved] = await say(app, "/tz Europe/Berlin")
        assert moved.text == "Your time zone is now Europe/Berlin." and moved.private
        assert "every day at 08:30 (Europe/Berlin)" in await text_of(app, "/digest")
        # Reminders are now set on the user's clock: 15:00 UTC is 16:00 in Berlin.
        assert "2026-12-01 17:00 (Europe/Berlin)" in await text_of(app, "/remind in 1h tea")
        [digest] = [j for j in await app.store.jobs("Multi-Agent System", await _user(app))
                    if j.kind == "digest"]  # fmt: skip
        assert (
            datetime.fromtimestamp(digest.due_at or 0, UTC)
            .isoformat()
            .startswith("2026-12-02T07:30")
        )
        assert (await app.store.user_state(app.settings.app_name, await _user(app)))[
            TIME_ZONE_KEY
        ] == "Europe/Berlin"
        assert "Digest off." in await text_of(app, "/digest off")
        assert (await text_of(app, "/digest 9")).startswith("'9' is not a time of day")
        assert not [
            j for j in await app.store.jobs(app.settings.app_name, await _user(app))
            if j.kind == "digest"
        ]  # fmt: skip


async def test_lists_about_a_user_never_reach_a_shared_chat(open_proactive: OpenApp) -> None:
    async with open_proactive() as app:
        await say(app, "/alert AAPL above 200", group=True)
        await say(app, "/remind in 1h secret plan", group=True)
        for command in ("/alerts", "/reminders", "/tz", "/digest", "/alert remove 1"):
            for reply in await say(app, command, group=True):
                assert reply.private, command
        await say(app, "/digest 08:00", group=True)
        jobs = await app.store.jobs(app.settings.app_name, await _user(app))
        # Alerts and reminders fire where they were set; the digest (the watchlist) privately.
        assert [(j.kind, j.chat_id) for j in jobs] == [
            ("reminder", "group-42"),
            ("digest", None),
        ]


async def test_a_redelivered_command_adds_nothing(open_proactive: OpenApp) -> None:
    async with open_proactive() as app:
        await say(app, "/alert AAPL above 200", message_id="m1")
        await say(app, "/alert AAPL above 200", message_id="m1")
        assert len(await app.store.jobs(app.settings.app_name, await _user(app))) == 1
