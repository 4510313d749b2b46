"""Time windows as a marketer means them, in the workspace's zone: every expected interval below
is written out by hand (local wall-clock times), never computed with the code under test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from quanyu.errors import InvalidInput
from quanyu.segments.definition import Absolute, CalendarWindow, Rolling, Span
from quanyu.segments.windows import Interval, instant, resolve, span

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")  # GMT in winter, BST (+1) from the last Sunday of March
NEW_YORK = ZoneInfo("America/New_York")


def local(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone)  # type: ignore[misc]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def calendar(name: str, now: datetime, zone: ZoneInfo) -> Interval:
    return resolve(CalendarWindow(calendar=name), now, zone)  # type: ignore[arg-type]


def rolling(last: int, unit: str, now: datetime, zone: ZoneInfo = SHANGHAI) -> Interval:
    return resolve(Rolling(last=last, unit=unit), now, zone)  # type: ignore[arg-type]


def absolute(zone: ZoneInfo = SHANGHAI, **bounds: Any) -> Interval:
    return resolve(Absolute.model_validate(bounds), utc(2026, 3, 15), zone, "conditions[0].window")


# ---------------------------------------------------------------------------------------------
# Rolling: counted back from the evaluation moment, open towards the future


@pytest.mark.parametrize(
    ("last", "unit", "start"),
    [
        (90, "minute", utc(2026, 3, 15, 8, 30)),
        (1, "minute", utc(2026, 3, 15, 9, 59)),
        (36, "hour", utc(2026, 3, 13, 22)),
        (30, "day", utc(2026, 2, 13, 10)),
        (1, "day", utc(2026, 3, 14, 10)),
        (2, "week", utc(2026, 3, 1, 10)),
    ],
)
def test_rolling_windows_count_back_exactly(last: int, unit: str, start: datetime) -> None:
    now = utc(2026, 3, 15, 10)
    assert rolling(last, unit, now) == Interval(start, None)


@pytest.mark.parametrize(
    ("now", "last", "start"),
    [
        # 31 March → 28 February in a common year, 29 February in a leap year
        (local(SHANGHAI, 2026, 3, 31, 10), 1, local(SHANGHAI, 2026, 2, 28, 10)),
        (local(SHANGHAI, 2024, 3, 31, 10), 1, local(SHANGHAI, 2024, 2, 29, 10)),
        (local(SHANGHAI, 2026, 5, 31, 23, 59), 1, local(SHANGHAI, 2026, 4, 30, 23, 59)),
        (local(SHANGHAI, 2026, 3, 15, 9), 1, local(SHANGHAI, 2026, 2, 15, 9)),
        # across a year end, and whole years of months
        (local(SHANGHAI, 2026, 1, 15, 9), 1, local(SHANGHAI, 2025, 12, 15, 9)),
        (local(SHANGHAI, 2026, 2, 28, 9), 14, local(SHANGHAI, 2024, 12, 28, 9)),
        (local(SHANGHAI, 2025, 2, 28, 9), 12, local(SHANGHAI, 2024, 2, 28, 9)),
        (local(SHANGHAI, 2024, 2, 29, 9), 12, local(SHANGHAI, 2023, 2, 28, 9)),
        # the month boundary is the workspace's: 31 March 01:00 in Shanghai is 30 March in UTC
        (local(SHANGHAI, 2026, 3, 31, 1), 1, local(SHANGHAI, 2026, 2, 28, 1)),
    ],
)
def test_rolling_months_are_calendar_months_clamped_to_the_month_end(
    now: datetime, last: int, start: datetime
) -> None:
    got = rolling(last, "month", now)
    assert got == Interval(start.astimezone(UTC), None)
    assert got.start is not None and got.start.tzinfo is UTC


def test_rolling_months_keep_the_local_time_across_a_daylight_saving_change() -> None:
    now = local(NEW_YORK, 2026, 3, 31, 12)  # EDT, UTC-4
    assert rolling(1, "month", now, NEW_YORK) == Interval(utc(2026, 2, 28, 17), None)  # EST, UTC-5


def test_rolling_back_before_year_one_is_all_of_time() -> None:
    assert rolling(100_000, "month", utc(2026, 3, 15)) == Interval(None, None)
    assert rolling(100_000, "week", utc(2026, 3, 15)).start == utc(2026, 3, 15) - timedelta(weeks=100_000)


# ---------------------------------------------------------------------------------------------
# Calendar windows in the workspace's zone


def expect(zone: ZoneInfo, start: tuple[int, int, int], end: tuple[int, int, int]) -> Interval:
    return Interval(local(zone, *start).astimezone(UTC), local(zone, *end).astimezone(UTC))


# Wednesday 15 April 2026, 10:00 in Shanghai.
MIDWEEK = local(SHANGHAI, 2026, 4, 15, 10)


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("today", (2026, 4, 15), (2026, 4, 16)),
        ("yesterday", (2026, 4, 14), (2026, 4, 15)),
        ("this_week", (2026, 4, 13), (2026, 4, 20)),
        ("last_week", (2026, 4, 6), (2026, 4, 13)),
        ("this_month", (2026, 4, 1), (2026, 5, 1)),
        ("last_month", (2026, 3, 1), (2026, 4, 1)),
        ("this_year", (2026, 1, 1), (2027, 1, 1)),
        ("last_year", (2025, 1, 1), (2026, 1, 1)),
    ],
)
def test_every_calendar_window_in_shanghai(
    name: str, start: tuple[int, int, int], end: tuple[int, int, int]
) -> None:
    got = calendar(name, MIDWEEK, SHANGHAI)
    assert got == expect(SHANGHAI, start, end)
    assert got.start is not None and got.start.hour == 16  # local midnight is 16:00 UTC the day before


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("today", (2026, 3, 29), (2026, 3, 30)),  # the day the clocks go forward: 23 hours long
        ("yesterday", (2026, 3, 28), (2026, 3, 29)),
        ("this_week", (2026, 3, 23), (2026, 3, 30)),  # Sunday: the week began on Monday
        ("last_week", (2026, 3, 16), (2026, 3, 23)),
        ("this_month", (2026, 3, 1), (2026, 4, 1)),
        ("last_month", (2026, 2, 1), (2026, 3, 1)),
        ("this_year", (2026, 1, 1), (2027, 1, 1)),
        ("last_year", (2025, 1, 1), (2026, 1, 1)),
    ],
)
def test_every_calendar_window_in_london(
    name: str, start: tuple[int, int, int], end: tuple[int, int, int]
) -> None:
    now = local(LONDON, 2026, 3, 29, 15)  # Sunday, after the clocks went forward
    assert calendar(name, now, LONDON) == expect(LONDON, start, end)


def test_the_day_the_clocks_change_has_its_true_length() -> None:
    today = calendar("today", local(LONDON, 2026, 3, 29, 15), LONDON)
    assert today == Interval(utc(2026, 3, 29, 0), utc(2026, 3, 28, 23) + timedelta(hours=24))
    assert today.end is not None and today.start is not None
    assert today.end - today.start == timedelta(hours=23)
    this_month = calendar("this_month", local(LONDON, 2026, 3, 29, 15), LONDON)
    assert this_month == Interval(utc(2026, 3, 1), utc(2026, 3, 31, 23))  # April starts in BST


def test_the_day_is_the_workspaces_day_around_midnight() -> None:
    # 16:30 UTC on 31 March is already 00:30 on 1 April in Shanghai.
    now = utc(2026, 3, 31, 16, 30)
    assert calendar("today", now, SHANGHAI) == expect(SHANGHAI, (2026, 4, 1), (2026, 4, 2))
    assert calendar("this_month", now, SHANGHAI) == expect(SHANGHAI, (2026, 4, 1), (2026, 5, 1))
    assert calendar("last_month", now, SHANGHAI) == expect(SHANGHAI, (2026, 3, 1), (2026, 4, 1))
    # Thirty minutes earlier it is still 31 March there.
    before = now - timedelta(minutes=31)
    assert calendar("today", before, SHANGHAI) == expect(SHANGHAI, (2026, 3, 31), (2026, 4, 1))
    assert calendar("this_month", before, SHANGHAI) == expect(SHANGHAI, (2026, 3, 1), (2026, 4, 1))
    # The same instant in London is still 31 March.
    assert calendar("today", now, LONDON) == expect(LONDON, (2026, 3, 31), (2026, 4, 1))


def test_year_ends() -> None:
    # 16:00 UTC on 31 December 2025 is midnight of New Year's Day 2026 in Shanghai.
    now = utc(2025, 12, 31, 16)
    assert calendar("today", now, SHANGHAI) == expect(SHANGHAI, (2026, 1, 1), (2026, 1, 2))
    assert calendar("yesterday", now, SHANGHAI) == expect(SHANGHAI, (2025, 12, 31), (2026, 1, 1))
    assert calendar("this_year", now, SHANGHAI) == expect(SHANGHAI, (2026, 1, 1), (2027, 1, 1))
    assert calendar("last_year", now, SHANGHAI) == expect(SHANGHAI, (2025, 1, 1), (2026, 1, 1))
    assert calendar("last_month", now, SHANGHAI) == expect(SHANGHAI, (2025, 12, 1), (2026, 1, 1))
    assert calendar("this_month", now, SHANGHAI) == expect(SHANGHAI, (2026, 1, 1), (2026, 2, 1))
    # 1 January 2026 is a Thursday: this week began on Monday 29 December 2025.
    assert calendar("this_week", now, SHANGHAI) == expect(SHANGHAI, (2025, 12, 29), (2026, 1, 5))
    assert calendar("last_week", now, SHANGHAI) == expect(SHANGHAI, (2025, 12, 22), (2025, 12, 29))
    # One second earlier, New York is still in 2025 and so is Shanghai's day before.
    assert calendar("this_year", now, NEW_YORK) == expect(NEW_YORK, (2025, 1, 1), (2026, 1, 1))
    assert calendar("this_month", now - timedelta(seconds=1), SHANGHAI) == expect(
        SHANGHAI, (2025, 12, 1), (2026, 1, 1)
    )


@pytest.mark.parametrize(
    ("today", "monday"),
    [((2026, 4, 13), (2026, 4, 13)), ((2026, 4, 19), (2026, 4, 13)), ((2026, 4, 20), (2026, 4, 20))],
)
def test_weeks_start_on_monday(today: tuple[int, int, int], monday: tuple[int, int, int]) -> None:
    now = local(SHANGHAI, *today, 23, 59)
    start = local(SHANGHAI, *monday)
    assert calendar("this_week", now, SHANGHAI) == Interval(
        start.astimezone(UTC), (start + timedelta(days=7)).astimezone(UTC)
    )


# ---------------------------------------------------------------------------------------------
# Absolute windows and instants


def test_absolute_dates_are_local_midnight() -> None:
    assert absolute(**{"from": "2026-03-01", "to": "2026-04-01"}) == Interval(
        utc(2026, 2, 28, 16), utc(2026, 3, 31, 16)
    )
    assert absolute(LONDON, **{"from": "2026-03-01", "to": "2026-04-01"}) == Interval(
        utc(2026, 3, 1), utc(2026, 3, 31, 23)
    )


def test_absolute_windows_may_be_open_at_either_end() -> None:
    assert absolute(**{"from": "2026-03-01"}) == Interval(utc(2026, 2, 28, 16), None)
    assert absolute(to="2026-03-01") == Interval(None, utc(2026, 2, 28, 16))


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-03-01T08:00:00", utc(2026, 3, 1)),  # no offset: read in the workspace's zone
        ("2026-03-01T08:00:00+08:00", utc(2026, 3, 1)),
        ("2026-03-01T08:00:00+00:00", utc(2026, 3, 1, 8)),
        ("2026-03-01T08:00:00Z", utc(2026, 3, 1, 8)),
        ("2026-03-01 08:00", utc(2026, 3, 1)),
    ],
)
def test_times_keep_their_offset_or_take_the_workspaces(text: str, moment: datetime) -> None:
    assert absolute(**{"from": text}).start == moment


@pytest.mark.parametrize(
    ("bounds", "path"),
    [
        ({"from": "yesterday"}, "conditions[0].window.from"),
        ({"from": "2026-02-30"}, "conditions[0].window.from"),
        ({"to": "2026-13-01T00:00"}, "conditions[0].window.to"),
        ({"from": "0001-01-01"}, "conditions[0].window.from"),  # before year 1 in UTC
        ({"from": ""}, "conditions[0].window.from"),
        ({"from": "2026-04-01", "to": "2026-03-01"}, "conditions[0].window.to"),
        ({"from": "2026-03-01", "to": "2026-03-01"}, "conditions[0].window.to"),
    ],
)
def test_bad_absolute_windows_name_their_bound(bounds: dict[str, str], path: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        absolute(**bounds)
    assert caught.value.code == "invalid_segment"
    assert [d["path"] for d in caught.value.details] == [path]


def test_instants_take_iso_times_and_days_ago() -> None:
    now = utc(2026, 3, 15, 10)
    assert instant({"days_ago": 30}, now, SHANGHAI, "x") == utc(2026, 2, 13, 10)
    assert instant({"days_ago": 0}, now, SHANGHAI, "x") == now
    assert instant("2026-03-01", now, SHANGHAI, "x") == utc(2026, 2, 28, 16)
    for bad in (
        {"days_ago": -1},
        {"days_ago": 36_501},
        {"days": 3},
        {"days_ago": 3, "x": 1},
        {"days_ago": True},
    ):
        with pytest.raises(InvalidInput) as caught:
            instant(bad, now, SHANGHAI, "conditions[0].last_time.before")  # type: ignore[arg-type]
        assert caught.value.details[0]["path"] == "conditions[0].last_time.before"


def test_sequence_gaps() -> None:
    assert span(Span(value=90, unit="minute")) == timedelta(minutes=90)
    assert span(Span(value=3)) == timedelta(days=3)
    assert span(Span(value=2, unit="week")) == timedelta(days=14)
    assert span(Span(value=1, unit="month")) == timedelta(days=30)
