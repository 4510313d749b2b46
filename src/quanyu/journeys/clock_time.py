"""Time of day in a person's own time zone: quiet hours, "send at 10:00", local days for caps.

Pure functions. Every instant in and out is an aware datetime (results are in UTC); wall-clock
times (`datetime.time`) are naive and mean the person's local clock.

Daylight saving time is handled by asking the zone, never by adding hours to a local time:

- a wall time that does not exist (the spring-forward gap) resolves to the first instant after
  the gap, e.g. 02:30 on the day Los Angeles jumps from 02:00 to 03:00 is 03:00 PDT;
- a wall time that happens twice (the fall-back overlap) is its first occurrence, except where
  only the second one is still ahead (a person already inside the repeated hour).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Files in a system zoneinfo folder that are not IANA zones: "localtime" is the server's zone.
_NOT_ZONES = frozenset({"localtime", "posixrules"})
_HH_MM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def zone(name: str | None, default: str) -> ZoneInfo:
    """The person's time zone; an unknown or blank name falls back to `default` (which must exist)."""
    # The default is checked even when the name is good: a bad setting shows up at once.
    fallback = _zone(default)
    if fallback is None:
        raise ValueError(f"未知的默认时区 / unknown default time zone {default!r}")
    return _zone(name) or fallback


def _zone(name: str | None) -> ZoneInfo | None:
    if not isinstance(name, str) or not name.strip() or name.strip() in _NOT_ZONES:
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, malformed ("../x") or too long
        return None


def _utc(at: datetime) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"需要带时区的时间 / an aware datetime is required, got {at!r}")
    return at.astimezone(UTC)


def _wall(at: datetime, tz: ZoneInfo) -> datetime:
    """The local wall-clock time (naive) at an instant."""
    return at.astimezone(tz).replace(tzinfo=None)


def _naive_time(value: time, what: str) -> time:
    if value.tzinfo is not None:
        raise ValueError(f"{what} 必须是本地钟点（不带时区）/ {what} must be a local time without a zone")
    return value


def local_day(at_utc: datetime, tz: ZoneInfo) -> date:
    """The person's calendar day at an instant (the day a daily frequency cap counts)."""
    return _utc(at_utc).astimezone(tz).date()


def _instants(wall: datetime, tz: ZoneInfo) -> list[datetime]:
    """The UTC instants at which the local clock shows `wall`, earliest first.

    Two in a fall-back overlap, one usually; in a spring-forward gap (none) the first instant
    after the gap instead.
    """
    found = set()
    for fold in (0, 1):
        instant = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if _wall(instant, tz) == wall:
            found.add(instant)
    if found:
        return sorted(found)
    return [_after_gap(wall, tz)]


def _after_gap(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant whose wall time is past a nonexistent `wall` (the end of the gap)."""
    # The two readings of `wall` (with the offsets before and after the jump) bracket the jump;
    # search whole seconds between them: zones change offset on whole seconds.
    a = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    b = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo = int(min(a, b).timestamp()) - 1
    hi = int(max(a, b).timestamp()) + 1
    if _wall(_at(lo), tz) >= wall or _wall(_at(hi), tz) < wall:  # not a simple jump: no better answer
        return max(a, b)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(_at(mid), tz) >= wall:
            hi = mid
        else:
            lo = mid
    return _at(hi)


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class QuietHours:
    """A daily window of local time in which nothing is sent; start == end means none.

    The window includes `start` and excludes `end`; it crosses midnight when end < start
    (21:00-09:00).
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        _naive_time(self.start, "start")
        _naive_time(self.end, "end")

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """ "21:00-09:00" (also with "–" or "~" and spaces)."""
        parts = re.split(r"\s*[-–~]\s*", text.strip()) if isinstance(text, str) else []
        matches = [_HH_MM.fullmatch(p) for p in parts]
        if len(parts) != 2 or not all(matches):
            raise ValueError(
                f'免打扰时段格式应为 "21:00-09:00" / quiet hours must look like "21:00-09:00", got {text!r}'
            )
        start, end = (time(int(m.group(1)), int(m.group(2))) for m in matches if m)
        return cls(start, end)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def _quiet_wall(self, wall: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end

    def is_quiet(self, at_utc: datetime, tz: ZoneInfo) -> bool:
        """Whether the person's local clock is inside the window at this instant."""
        return self._quiet_wall(_wall(_utc(at_utc), tz).time())

    def ends_at(self, at_utc: datetime, tz: ZoneInfo) -> datetime:
        """The first instant at or after `at_utc` outside the window (`at_utc` itself if it is)."""
        current = _utc(at_utc)
        # Each round lands on a local `end`; only a gap swallowing the end can leave it quiet
        # (Samoa skipped 30 December 2011), and the next round then finds the same day's end.
        for _ in range(8):
            if not self.is_quiet(current, tz):
                return current
            current = self._next_end(current, tz)
        return current  # unreachable with real zones

    def _next_end(self, current: datetime, tz: ZoneInfo) -> datetime:
        wall = _wall(current, tz)
        day = wall.date()
        if self.start > self.end and wall.time() >= self.start:  # evening part: it ends tomorrow
            day += timedelta(days=1)
        for _ in range(3):
            ahead = [i for i in _instants(datetime.combine(day, self.end), tz) if i > current]
            if ahead:
                return ahead[0]
            day += timedelta(days=1)
        return current + timedelta(hours=1)  # unreachable with real zones


def next_time_of_day(at_utc: datetime, tz: ZoneInfo, hh_mm: time) -> datetime:
    """The next instant strictly after `at_utc` when the local clock shows `hh_mm`.

    Each local day has one such instant: the first occurrence in a fall-back overlap (so a
    daily 01:30 send does not go out twice on that night), the end of the gap when the day
    skips it.
    """
    at = _utc(at_utc)
    _naive_time(hh_mm, "hh_mm")
    day = _wall(at, tz).date()
    for _ in range(3):
        instant = _instants(datetime.combine(day, hh_mm), tz)[0]
        if instant > at:
            return instant
        day += timedelta(days=1)
    raise AssertionError("no local day within three days")  # zones never skip more than a day


def next_local_midnight(at_utc: datetime, tz: ZoneInfo) -> datetime:
    """The start of the person's next local day ("hold until tomorrow")."""
    at = _utc(at_utc)
    tomorrow = _wall(at, tz).date() + timedelta(days=1)
    # Midnight can happen twice (America/Havana falls back from 01:00 to 00:00): the first one,
    # unless it is already behind; or not at all (Havana springs forward from 00:00 to 01:00):
    # the day then starts when the gap ends.
    for instant in _instants(datetime.combine(tomorrow, time()), tz):
        if instant > at:
            return instant
    return _instants(datetime.combine(tomorrow + timedelta(days=1), time()), tz)[0]


def days_until_anniversary(today: date, month: int, day: int) -> int:
    """Days from `today` to the next `month`/`day` (0 on the day itself).

    A 29 February birthday is celebrated on 28 February in years without one.
    """
    try:
        date(2000, month, day)  # a day that no year has (2000 is a leap year)
    except (ValueError, TypeError):
        raise ValueError(f"无效的月日 / invalid month and day {month!r}-{day!r}") from None
    for year in (today.year, today.year + 1):
        on = date(year, month, 28 if (month, day) == (2, 29) and not calendar.isleap(year) else day)
        if on >= today:
            return (on - today).days
    raise AssertionError("an anniversary within a year")  # the next year's always qualifies
