"""Time of day in a person's zone (`quanyu.journeys.clock_time`): quiet hours, send-at times, local
days and anniversaries, across daylight saving changes, with property tests over many zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quanyu.journeys.clock_time import (
    QuietHours,
    days_until_anniversary,
    local_day,
    next_local_midnight,
    next_time_of_day,
    zone,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
LA = ZoneInfo("America/Los_Angeles")
LONDON = ZoneInfo("Europe/London")
KOLKATA = ZoneInfo("Asia/Kolkata")
AUCKLAND = ZoneInfo("Pacific/Auckland")
HAVANA = ZoneInfo("America/Havana")  # changes clocks at midnight
NIGHT = QuietHours.parse("21:00-09:00")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(
    tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0
) -> datetime:
    """The UTC instant of a wall time in `tz` (fold=1: the second of a repeated time)."""
    return datetime(year, month, day, hour, minute, tzinfo=tz, fold=fold).astimezone(UTC)


# --- zones and days --------------------------------------------------------------------------


def test_zone_falls_back_to_the_default() -> None:
    assert zone("America/Los_Angeles", "Asia/Shanghai") == LA
    assert zone(" Asia/Kolkata ", "Asia/Shanghai") == KOLKATA
    for bad in [None, "", "   ", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "localtime", "x\x00",
                "a" * 5000, "Asia", "+08:00"]:  # fmt: skip
        assert zone(bad, "Asia/Shanghai") == SHANGHAI, bad
    for bad_default in ["", "Mars/Olympus", "../x"]:
        with pytest.raises(ValueError, match="unknown default time zone"):
            zone("Asia/Tokyo", bad_default)


def test_local_day() -> None:
    assert local_day(utc(2026, 3, 1, 15, 59), SHANGHAI) == date(2026, 3, 1)
    assert local_day(utc(2026, 3, 1, 16, 0), SHANGHAI) == date(2026, 3, 2)
    assert local_day(utc(2026, 3, 2, 7, 59), LA) == date(2026, 3, 1)
    assert local_day(utc(2026, 3, 1, 18, 29), KOLKATA) == date(2026, 3, 1)
    assert local_day(utc(2026, 3, 1, 18, 30), KOLKATA) == date(2026, 3, 2)
    assert local_day(utc(2026, 3, 1, 11, 0), AUCKLAND) == date(2026, 3, 2)  # +13 in summer
    # Any aware time is accepted; a naive one is refused.
    assert local_day(datetime(2026, 3, 2, 0, 30, tzinfo=timezone(timedelta(hours=8))), SHANGHAI) == date(
        2026, 3, 2
    )
    with pytest.raises(ValueError, match="aware"):
        local_day(datetime(2026, 3, 1), SHANGHAI)


# --- quiet hours -----------------------------------------------------------------------------


def test_parse_quiet_hours() -> None:
    assert QuietHours(time(21), time(9)) == NIGHT
    assert QuietHours.parse(" 22:30 – 7:05 ") == QuietHours(time(22, 30), time(7, 5))
    assert QuietHours.parse("12:00~14:00") == QuietHours(time(12), time(14))
    assert str(QuietHours.parse("9:00-21:00")) == "09:00-21:00"
    for bad in [
        "",
        "21:00",
        "21-09",
        "24:00-09:00",
        "21:60-09:00",
        "21:00-09:00-10:00",
        "9pm-9am",
        "21:00 09:00",
    ]:
        with pytest.raises(ValueError, match="21:00-09:00"):
            QuietHours.parse(bad)
    with pytest.raises(ValueError, match="without a zone"):
        QuietHours(time(21, tzinfo=UTC), time(9))


def test_shanghai_night() -> None:
    # 21:00-09:00 China Standard Time is 13:00-01:00 UTC.
    assert not NIGHT.is_quiet(utc(2026, 3, 1, 12, 59), SHANGHAI)
    assert NIGHT.is_quiet(utc(2026, 3, 1, 13, 0), SHANGHAI)
    assert NIGHT.is_quiet(utc(2026, 3, 1, 16, 0), SHANGHAI)  # midnight
    assert NIGHT.is_quiet(utc(2026, 3, 2, 0, 59, 59), SHANGHAI)
    assert not NIGHT.is_quiet(utc(2026, 3, 2, 1, 0), SHANGHAI)
    assert NIGHT.ends_at(utc(2026, 3, 1, 13, 0), SHANGHAI) == utc(2026, 3, 2, 1, 0)  # evening: tomorrow
    assert NIGHT.ends_at(utc(2026, 3, 1, 22, 0), SHANGHAI) == utc(2026, 3, 2, 1, 0)  # early morning: today
    noon = utc(2026, 3, 1, 4, 0)
    assert NIGHT.ends_at(noon, SHANGHAI) == noon


def test_window_within_a_day() -> None:
    lunch = QuietHours.parse("12:00-14:00")
    assert not lunch.is_quiet(utc(2026, 3, 1, 3, 59), SHANGHAI)
    assert lunch.is_quiet(utc(2026, 3, 1, 4, 0), SHANGHAI)
    assert lunch.is_quiet(utc(2026, 3, 1, 5, 59), SHANGHAI)
    assert not lunch.is_quiet(utc(2026, 3, 1, 6, 0), SHANGHAI)
    assert not lunch.is_quiet(utc(2026, 3, 1, 16, 0), SHANGHAI)  # midnight is outside
    assert lunch.ends_at(utc(2026, 3, 1, 4, 30), SHANGHAI) == utc(2026, 3, 1, 6, 0)


def test_empty_window() -> None:
    none = QuietHours.parse("09:00-09:00")
    for hour in range(24):
        at = utc(2026, 3, 1, hour)
        assert not none.is_quiet(at, SHANGHAI)
        assert none.ends_at(at, SHANGHAI) == at


def test_kolkata_half_hour_offset() -> None:
    assert not NIGHT.is_quiet(utc(2026, 3, 1, 15, 29), KOLKATA)  # 20:59 IST
    assert NIGHT.is_quiet(utc(2026, 3, 1, 15, 30), KOLKATA)  # 21:00 IST
    assert NIGHT.ends_at(utc(2026, 3, 1, 15, 30), KOLKATA) == utc(2026, 3, 2, 3, 30)  # 09:00 IST


def test_los_angeles_spring_forward() -> None:
    # 8 March 2026: 02:00 PST becomes 03:00 PDT (10:00 UTC).
    assert NIGHT.ends_at(local(LA, 2026, 3, 7, 22), LA) == local(LA, 2026, 3, 8, 9) == utc(2026, 3, 8, 16)
    # The night is an hour shorter in real time.
    assert NIGHT.ends_at(local(LA, 2026, 3, 7, 21), LA) - local(LA, 2026, 3, 7, 21) == timedelta(hours=11)
    # A window ending at 02:30, which does not exist that night, ends when the clock jumps.
    early = QuietHours.parse("01:00-02:30")
    assert early.is_quiet(utc(2026, 3, 8, 9, 30), LA)  # 01:30 PST
    assert early.ends_at(utc(2026, 3, 8, 9, 30), LA) == utc(2026, 3, 8, 10, 0)  # 03:00 PDT
    assert not early.is_quiet(utc(2026, 3, 8, 10, 0), LA)


def test_los_angeles_fall_back() -> None:
    # 1 November 2026: 02:00 PDT becomes 01:00 PST (09:00 UTC); 01:00-02:00 happens twice.
    assert NIGHT.ends_at(local(LA, 2026, 10, 31, 22), LA) == utc(2026, 11, 1, 17)  # 09:00 PST
    late = QuietHours.parse("21:00-01:30")
    assert late.ends_at(local(LA, 2026, 10, 31, 23), LA) == utc(2026, 11, 1, 8, 30)  # first 01:30 (PDT)
    assert not late.is_quiet(utc(2026, 11, 1, 8, 40), LA)  # 01:40 PDT
    # The clock goes back to 01:00: by the wall clock that is quiet again, until the second 01:30.
    second = local(LA, 2026, 11, 1, 1, 10, fold=1)
    assert second == utc(2026, 11, 1, 9, 10)
    assert late.is_quiet(second, LA)
    assert late.ends_at(second, LA) == utc(2026, 11, 1, 9, 30)


def test_london_changes() -> None:
    # 29 March 2026: 01:00 GMT becomes 02:00 BST; 25 October: 02:00 BST becomes 01:00 GMT.
    assert NIGHT.ends_at(utc(2026, 3, 28, 22), LONDON) == utc(2026, 3, 29, 8)  # 09:00 BST
    assert NIGHT.ends_at(utc(2026, 10, 24, 21), LONDON) == utc(2026, 10, 25, 9)  # 09:00 GMT
    gap = QuietHours.parse("00:30-01:30")
    assert gap.ends_at(utc(2026, 3, 29, 0, 45), LONDON) == utc(2026, 3, 29, 1, 0)  # 02:00 BST
    assert not NIGHT.is_quiet(utc(2026, 6, 1, 19, 59), LONDON)  # 20:59 BST
    assert NIGHT.is_quiet(utc(2026, 6, 1, 20, 0), LONDON)


def test_auckland() -> None:
    # Southern hemisphere: NZDT (+13) ends 5 April 2026 03:00 -> 02:00; NZST (+12) ends 27 September.
    assert NIGHT.ends_at(utc(2026, 4, 4, 10), AUCKLAND) == utc(2026, 4, 4, 21)  # 09:00 NZST
    assert NIGHT.ends_at(utc(2026, 9, 26, 10), AUCKLAND) == utc(2026, 9, 26, 20)  # 09:00 NZDT
    assert NIGHT.is_quiet(utc(2026, 1, 1, 8), AUCKLAND)  # 21:00 NZDT


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        NIGHT.is_quiet(datetime(2026, 3, 1, 22), SHANGHAI)
    with pytest.raises(ValueError, match="aware"):
        NIGHT.ends_at(datetime(2026, 3, 1, 22), SHANGHAI)
    with pytest.raises(ValueError, match="aware"):
        next_time_of_day(datetime(2026, 3, 1, 22), SHANGHAI, time(10))
    with pytest.raises(ValueError, match="without a zone"):
        next_time_of_day(utc(2026, 3, 1), SHANGHAI, time(10, tzinfo=UTC))


# --- send at a time of day -------------------------------------------------------------------


def test_next_time_of_day() -> None:
    ten = time(10)
    assert next_time_of_day(utc(2026, 3, 1, 1, 0), SHANGHAI, ten) == utc(2026, 3, 1, 2, 0)
    assert next_time_of_day(utc(2026, 3, 1, 2, 0), SHANGHAI, ten) == utc(2026, 3, 2, 2, 0)  # strictly after
    assert next_time_of_day(utc(2026, 3, 1, 2, 0, 1), SHANGHAI, ten) == utc(2026, 3, 2, 2, 0)
    assert next_time_of_day(utc(2026, 3, 1, 4, 0), KOLKATA, ten) == utc(2026, 3, 1, 4, 30)  # 09:30 IST
    assert next_time_of_day(utc(2026, 3, 1, 5, 0), KOLKATA, ten) == utc(2026, 3, 2, 4, 30)
    # Across the change, the wall time stays 10:00.
    assert next_time_of_day(utc(2026, 3, 7, 19), LA, ten) == utc(2026, 3, 8, 17)  # 10:00 PDT
    assert next_time_of_day(utc(2026, 10, 31, 18), LA, ten) == utc(2026, 11, 1, 18)  # 10:00 PST
    assert next_time_of_day(utc(2026, 10, 24, 10), LONDON, ten) == utc(2026, 10, 25, 10)  # 10:00 GMT


def test_next_time_of_day_in_a_gap_or_overlap() -> None:
    # 02:30 does not exist on 8 March in Los Angeles: the clock shows 03:00 PDT first.
    assert next_time_of_day(utc(2026, 3, 7, 12), LA, time(2, 30)) == utc(2026, 3, 8, 10)
    # 01:30 happens twice on 1 November: the first one, and once only (no second send that night).
    first = next_time_of_day(utc(2026, 10, 31, 20), LA, time(1, 30))
    assert first == utc(2026, 11, 1, 8, 30)
    assert next_time_of_day(first, LA, time(1, 30)) == utc(2026, 11, 2, 9, 30)


def test_next_local_midnight() -> None:
    assert next_local_midnight(utc(2026, 3, 1, 15, 59), SHANGHAI) == utc(2026, 3, 1, 16)
    assert next_local_midnight(utc(2026, 3, 1, 16), SHANGHAI) == utc(2026, 3, 2, 16)
    assert next_local_midnight(utc(2026, 3, 1, 12), KOLKATA) == utc(2026, 3, 1, 18, 30)
    assert next_local_midnight(utc(2026, 3, 8, 12), LA) == utc(2026, 3, 9, 7)  # after the change: PDT
    assert next_local_midnight(utc(2026, 10, 25, 12), LONDON) == utc(2026, 10, 26, 0)
    # Havana springs forward at midnight (8 March 2026, 00:00 CST -> 01:00 CDT): the day starts then.
    assert next_local_midnight(utc(2026, 3, 7, 18), HAVANA) == utc(2026, 3, 8, 5)
    # ... and falls back from 01:00 to 00:00 (1 November): the first midnight starts the day.
    start = next_local_midnight(utc(2026, 10, 31, 18), HAVANA)
    assert start == utc(2026, 11, 1, 4)
    assert local_day(start, HAVANA) == date(2026, 11, 1)
    assert next_local_midnight(utc(2026, 11, 1, 5, 30), HAVANA) == utc(2026, 11, 2, 5)  # in the repeat


# --- anniversaries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "month", "day", "days"),
    [
        (date(2026, 3, 1), 3, 1, 0),
        (date(2026, 3, 1), 3, 2, 1),
        (date(2026, 3, 1), 2, 28, 364),
        (date(2026, 12, 31), 1, 1, 1),
        (date(2026, 1, 1), 12, 31, 364),
        # 29 February: on the 28th in common years, on the 29th in leap years.
        (date(2026, 3, 1), 2, 29, 364),
        (date(2027, 2, 28), 2, 29, 0),
        (date(2027, 3, 1), 2, 29, 365),
        (date(2028, 2, 28), 2, 29, 1),
        (date(2028, 2, 29), 2, 29, 0),
        (date(2028, 2, 29), 2, 28, 365),
        (date(2100, 2, 27), 2, 29, 1),  # 2100 is not a leap year
    ],
)
def test_days_until_anniversary(today: date, month: int, day: int, days: int) -> None:
    assert days_until_anniversary(today, month, day) == days


def test_anniversary_of_a_day_that_does_not_exist() -> None:
    for month, day in [(2, 30), (13, 1), (0, 1), (4, 31), (1, 0)]:
        with pytest.raises(ValueError, match="invalid month and day"):
            days_until_anniversary(date(2026, 3, 1), month, day)


# --- properties ------------------------------------------------------------------------------

ZONES = [SHANGHAI, LA, LONDON, KOLKATA, AUCKLAND, HAVANA, ZoneInfo("Australia/Lord_Howe"),  # 30-minute DST
         ZoneInfo("America/Santiago"), ZoneInfo("Asia/Kathmandu"), ZoneInfo("UTC")]  # fmt: skip
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
)
# Times near the usual change hours (00:00-03:00) are drawn more often, to land in gaps and overlaps.
wall_times = st.one_of(
    st.times(),
    st.builds(time, st.integers(0, 3), st.sampled_from([0, 15, 30, 45, 59]), st.sampled_from([0, 59])),
)
windows = st.builds(QuietHours, wall_times, wall_times) | st.sampled_from(
    [
        NIGHT,
        QuietHours(time(0, 30), time(2, 30)),
        QuietHours(time(22), time(1, 30)),
        QuietHours(time(12), time(14)),
    ]
)
# Instants near a change: the hours around 2 a.m. local on the change days of recent years.
near_changes = st.builds(
    lambda base, minutes: base + timedelta(minutes=minutes),
    st.sampled_from(
        [
            utc(2026, 3, 8, 9),
            utc(2026, 11, 1, 8),
            utc(2026, 3, 29, 0),
            utc(2026, 10, 25, 0),
            utc(2026, 4, 4, 13),
            utc(2026, 9, 26, 13),
            utc(2026, 3, 8, 4),
            utc(2026, 11, 1, 3),
            utc(2026, 4, 5, 3),  # Santiago
            utc(2026, 9, 6, 4),
            utc(2026, 4, 4, 15),  # Lord Howe
            utc(2026, 10, 3, 15, 30),
        ]
    ),
    st.integers(-24 * 60, 24 * 60),
)
moments = st.one_of(instants, near_changes)
PROPS = settings(max_examples=300, deadline=None)


@PROPS
@given(at=moments, tz=st.sampled_from(ZONES), window=windows)
def test_ends_at_is_never_quiet_and_never_earlier(at: datetime, tz: ZoneInfo, window: QuietHours) -> None:
    end = window.ends_at(at, tz)
    assert end.tzinfo is UTC
    assert end >= at
    assert not window.is_quiet(end, tz)
    if not window.is_quiet(at, tz):
        assert end == at
    else:
        assert end - at <= timedelta(hours=25)
        # Nothing in between was outside the window (checked on a coarse grid).
        step = (end - at) / 8
        assert all(window.is_quiet(at + step * i, tz) for i in range(8))


@PROPS
@given(at=moments, tz=st.sampled_from(ZONES), wall=wall_times)
def test_next_time_of_day_is_strictly_after_and_within_a_day(at: datetime, tz: ZoneInfo, wall: time) -> None:
    nxt = next_time_of_day(at, tz, wall)
    assert nxt.tzinfo is UTC
    assert at < nxt <= at + timedelta(hours=26)
    shown = nxt.astimezone(tz).time()
    # The wall clock shows the time asked for, or (in a gap) the first time after it.
    assert shown == wall or nxt.astimezone(tz).replace(tzinfo=None) > datetime.combine(
        local_day(nxt, tz), wall
    )


@PROPS
@given(at=moments, tz=st.sampled_from(ZONES))
def test_next_local_midnight_starts_the_next_day(at: datetime, tz: ZoneInfo) -> None:
    start = next_local_midnight(at, tz)
    assert at < start <= at + timedelta(hours=26)
    assert local_day(start, tz) > local_day(at, tz)
    assert local_day(start - timedelta(seconds=1), tz) <= local_day(at, tz)


@settings(max_examples=200, deadline=None)
@given(
    today=st.dates(max_value=date(9998, 1, 1)),
    birthday=st.dates(min_value=date(2000, 1, 1), max_value=date(2000, 12, 31)),
)
def test_anniversary_is_within_a_year_and_lands_on_the_day(today: date, birthday: date) -> None:
    days = days_until_anniversary(today, birthday.month, birthday.day)
    assert 0 <= days <= 365
    on = today + timedelta(days=days)
    if (birthday.month, birthday.day) == (2, 29) and on.month == 2 and on.day == 28:
        assert not (on.year % 4 == 0 and (on.year % 100 != 0 or on.year % 400 == 0))
    else:
        assert (on.month, on.day) == (birthday.month, birthday.day)
