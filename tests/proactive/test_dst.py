"""Time zones and DST, on the injected clock: Europe/Berlin and America/New_York, both changes
of 2026. `/remind at 09:00` set the evening before a change fires once, at 09:00 local; a daily
digest fires once per local day, at its local time, across the change; nonexistent local times
move forward, ambiguous ones take their first occurrence."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from agents.schedules import local_to_utc, next_at
from testkit.helpers import Clock

from .conftest import OpenApp, RecordingSender, say, scheduler

CHANGES = [
    ("Europe/Berlin", date(2026, 3, 29)),  # 02:00 -> 03:00
    ("Europe/Berlin", date(2026, 10, 25)),  # 03:00 -> 02:00
    ("America/New_York", date(2026, 3, 8)),  # 02:00 -> 03:00
    ("America/New_York", date(2026, 11, 1)),  # 02:00 -> 01:00
]


def _local(at: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(at, zone)


def _at_local(day: date, hour: int, zone: ZoneInfo) -> float:
    return datetime.combine(day, time(hour), tzinfo=zone).timestamp()


@pytest.mark.parametrize(("zone_name", "day"), CHANGES)
async def test_remind_at_nine_on_the_change_day_fires_once_at_nine_local(
    open_proactive: OpenApp, clock: Clock, zone_name: str, day: date
) -> None:
    zone = ZoneInfo(zone_name)
    clock.now = _at_local(day - timedelta(days=1), 20, zone)
    async with open_proactive() as app:
        await say(app, f"/tz {zone_name}")
        assert f"{day.isoformat()} 09:00 ({zone_name})" in "".join(
            r.text for r in await say(app, "/remind at 09:00 standup")
        )
        sender = RecordingSender()
        sched = scheduler(app, clock, sender)
        fired: list[datetime] = []
        end = _at_local(day + timedelta(days=1), 12, zone)
        while clock.now < end:
            before = len(sender.sent)
            await sched.tick()
            fired += [_local(clock.now, zone)] * (len(sender.sent) - before)
            clock.now += 600
        assert [f.strftime("%Y-%m-%d %H:%M") for f in fired] == [f"{day.isoformat()} 09:00"]
        assert sender.texts == ['⏰ Reminder: "standup"']


@pytest.mark.parametrize(("zone_name", "day"), CHANGES)
async def test_daily_digest_once_per_local_day_across_the_change(
    open_proactive: OpenApp, clock: Clock, zone_name: str, day: date
) -> None:
    zone = ZoneInfo(zone_name)
    start = day - timedelta(days=3)
    clock.now = _at_local(start, 12, zone)
    async with open_proactive() as app:
        await say(app, f"/tz {zone_name}")
        await say(app, "/digest 09:00")
        sender = RecordingSender()
        sched = scheduler(app, clock, sender)
        fired: list[datetime] = []
        end = _at_local(day + timedelta(days=4), 12, zone)
        while clock.now < end:
            before = len(sender.sent)
            await sched.tick()
            fired += [_local(clock.now, zone)] * (len(sender.sent) - before)
            clock.now += 1800
        days = [start + timedelta(days=n) for n in range(1, 8)]
        assert [f.date() for f in fired] == days  # one a day, every local day
        assert {f.strftime("%H:%M") for f in fired} == {"09:00"}
        assert all(t.startswith("📰 Your digest") for t in sender.texts)


def test_nonexistent_local_times_move_forward_ambiguous_ones_take_the_first() -> None:
    berlin, new_york = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
    gap = local_to_utc(date(2026, 3, 29), time(2, 30), berlin)
    assert _local(gap, berlin).strftime("%H:%M %Z") == "03:30 CEST"
    gap = local_to_utc(date(2026, 3, 8), time(2, 30), new_york)
    assert _local(gap, new_york).strftime("%H:%M %Z") == "03:30 EDT"
    first = local_to_utc(date(2026, 10, 25), time(2, 30), berlin)
    assert datetime.fromtimestamp(first, UTC).strftime("%H:%M") == "00:30"  # CEST, not CET
    first = local_to_utc(date(2026, 11, 1), time(1, 30), new_york)
    assert datetime.fromtimestamp(first, UTC).strftime("%H:%M") == "05:30"  # EDT, not EST
    # 'at 02:30' asked just before the spring gap: later that morning, never skipped a day.
    asked = _at_local(date(2026, 3, 29), 1, berlin)
    assert _local(next_at(asked, time(2, 30), berlin), berlin).strftime("%d %H:%M") == "29 03:30"
