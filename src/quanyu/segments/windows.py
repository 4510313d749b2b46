"""Time windows → a UTC interval `[start, end)`, in the workspace's time zone.

The seed's question, "is the last 30 days counted back from now or a calendar month?", is
answered by which window a definition uses, never by a guess:

- rolling `{"last": 30, "unit": "day"}`: from exactly 30 days before the evaluation moment up to
  it (months are calendar months back: `last 1 month` on 31 March starts on 28/29 February);
- calendar `{"calendar": "last_month"}`: the whole previous calendar month in the workspace's
  zone (weeks start on Monday); `today` and `this_*` end at the end of the current period, so a
  window also holds events stamped a little in the future by a skewed clock;
- absolute `{"from": "2026-03-01", "to": "2026-04-01"}`: dates mean midnight in the workspace's
  zone, times without an offset are read in it too; either end may be open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from quanyu.segments.definition import Absolute, CalendarWindow, Rolling, Span, bad

_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
         "week": timedelta(weeks=1)}  # fmt: skip


@dataclass(frozen=True)
class Interval:
    start: datetime | None  # inclusive, UTC; None = open
    end: datetime | None  # exclusive, UTC; None = open


def resolve(
    window: Rolling | CalendarWindow | Absolute, now: datetime, zone: ZoneInfo, where: str = ""
) -> Interval:
    if isinstance(window, Rolling):
        try:
            if window.unit == "month":
                local = now.astimezone(zone)
                return Interval(_months_back(local, window.last).astimezone(UTC), None)
            return Interval(now - _STEP[window.unit] * window.last, None)
        except (ValueError, OverflowError):  # reaches back before year 1: all of time
            return Interval(None, None)
    if isinstance(window, CalendarWindow):
        first, after = _calendar(window.calendar, now.astimezone(zone).date())
        return Interval(_midnight(first, zone), _midnight(after, zone))
    start = _instant(window.from_, zone, f"{where}.from") if window.from_ is not None else None
    end = _instant(window.to, zone, f"{where}.to") if window.to is not None else None
    if start is not None and end is not None and start >= end:
        raise bad(f"{where}.to", f"to must come after from ({window.to!r} ≤ {window.from_!r})")
    return Interval(start, end)


def span(s: Span) -> timedelta:
    """A sequence's gap. Months count as 30 days here: a gap has no calendar to align to."""
    return timedelta(days=30 * s.value) if s.unit == "month" else _STEP[s.unit] * s.value


def _calendar(name: str, today: date) -> tuple[date, date]:
    monday = today - timedelta(days=today.weekday())
    first = today.replace(day=1)
    if name == "today":
        return today, today + timedelta(days=1)
    if name == "yesterday":
        return today - timedelta(days=1), today
    if name == "this_week":
        return monday, monday + timedelta(weeks=1)
    if name == "last_week":
        return monday - timedelta(weeks=1), monday
    if name == "this_month":
        return first, _add_months(first, 1)
    if name == "last_month":
        return _add_months(first, -1), first
    if name == "this_year":
        return date(today.year, 1, 1), date(today.year + 1, 1, 1)
    return date(today.year - 1, 1, 1), date(today.year, 1, 1)  # last_year


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return day.replace(year=year, month=month + 1, day=1)


def _months_back(local: datetime, months: int) -> datetime:
    first = _add_months(local.date().replace(day=1), -months)
    # Clamp the day to the target month's length (31 March → 28/29 February).
    last_day = (_add_months(first, 1) - timedelta(days=1)).day
    return local.replace(year=first.year, month=first.month, day=min(local.day, last_day))


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def instant(value: str | dict[str, int], now: datetime, zone: ZoneInfo, where: str) -> datetime:
    """An ISO-8601 time or date, or `{"days_ago": N}`, as a UTC instant."""
    if isinstance(value, dict):
        days = value.get("days_ago")
        if (
            set(value) != {"days_ago"}
            or not isinstance(days, int)
            or isinstance(days, bool)
            or not 0 <= days <= 36_500
        ):
            raise bad(where, f'expected {{"days_ago": N}} with 0 ≤ N ≤ 36500, got {value!r}')
        return now - timedelta(days=days)
    return _instant(value, zone, where)


def _instant(value: str, zone: ZoneInfo, where: str) -> datetime:
    try:
        if len(value) == 10:
            return _midnight(date.fromisoformat(value), zone)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)
    except (ValueError, OverflowError):  # not a time, or a time outside years 1-9999 in UTC
        raise bad(
            where,
            f'expected an ISO-8601 date or time ("2026-03-01", "2026-03-01T08:00:00+08:00"), got {value!r}',
        ) from None
