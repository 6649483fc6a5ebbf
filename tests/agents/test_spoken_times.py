"""agents.schedules.parse_when: reminder times as people say them (the tools' and the offline
model's form), on top of the rules the /remind command uses."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from agents.schedules import WHEN_PATTERN, ScheduleError, local_stamp, parse_when

BERLIN = ZoneInfo("Europe/Berlin")
# Saturday 2026-03-28 20:00 in Berlin: the clocks go forward (02:00 -> 03:00) that night.
NOW = datetime(2026, 3, 28, 19, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("said", "seconds"),
    [
        ("in 10 minutes", 600),
        ("in 90s", 90),
        ("in 1h30m", 5400),
        ("in an hour", 3600),
        ("in 1 hour and 30 minutes", 5400),
        ("in 2 days", 2 * 86400),
    ],
)
def test_in_a_span(said: str, seconds: int) -> None:
    assert parse_when(said, NOW, BERLIN) - NOW == seconds


@pytest.mark.parametrize(
    ("said", "local"),
    [
        ("tomorrow at 9", "2026-03-29 09:00"),  # after the change: 07:00 UTC, not 08:00
        ("tomorrow 09:00", "2026-03-29 09:00"),
        ("at 9pm", "2026-03-28 21:00"),
        ("at 9", "2026-03-29 09:00"),  # the next 09:00
        ("today at 23:30", "2026-03-28 23:30"),
        ("tomorrow at 12am", "2026-03-29 00:00"),
        ("2026-12-24 18:00", "2026-12-24 18:00"),
    ],
)
def test_local_times_in_the_users_zone(said: str, local: str) -> None:
    assert local_stamp(parse_when(said, NOW, BERLIN), BERLIN) == local


def test_tomorrow_at_9_across_the_dst_change_is_0700_utc() -> None:
    due = datetime.fromtimestamp(parse_when("tomorrow at 9", NOW, BERLIN), UTC)
    assert (due.hour, due.minute) == (7, 0)


@pytest.mark.parametrize("said", ["today at 8", "at 25", "in forever", "2026-01-01 10:00"])
def test_nonsense_or_the_past_is_a_short_answer(said: str) -> None:
    with pytest.raises(ScheduleError):
        parse_when(said, NOW, BERLIN)


@pytest.mark.parametrize(
    ("message", "found"),
    [
        ("remind me in 10 minutes to stretch", "in 10 minutes"),
        ("remind me tomorrow at 9 to call mom", "tomorrow at 9"),
        ("remind me to call mom tomorrow at 9am", "tomorrow at 9am"),
        ("remind me at 18:30 to take the pizza out", "at 18:30"),
    ],
)
def test_the_pattern_finds_the_time_in_a_message(message: str, found: str) -> None:
    match = re.search(WHEN_PATTERN, message)
    assert match is not None and match.group(0) == found
