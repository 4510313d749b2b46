"""The demo's time window: shopping festivals, waking hours and timestamp formatting.

Times are plain integers, seconds on the Asia/Shanghai wall clock since the Unix epoch
(China has no daylight saving, so a fixed +08:00 offset is exact). Integers keep the hot
loop cheap; they become ISO-8601 strings only when a message is written.
"""

from __future__ import annotations

import calendar
import random
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import accumulate

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
DAY = 86_400
HOUR = 3_600
_OFFSET = 8 * HOUR

# People shop after lunch and in the evening; almost nobody at 4 am.
_HOUR_WEIGHTS = (
    0.6,
    0.3,
    0.15,
    0.1,
    0.1,
    0.2,
    0.6,
    1.4,
    2.2,
    2.6,
    2.8,
    3.0,
    3.6,
    3.4,
    2.8,
    2.8,
    2.9,
    3.0,
    3.2,
    3.8,
    4.6,
    5.0,
    4.2,
    2.0,
)
_HOUR_CUM = tuple(accumulate(_HOUR_WEIGHTS))

# (name, first (month, day), last (month, day), daily weight, peak-day weight)
_FESTIVALS = (
    ("年货节 New Year goods", (1, 5), (1, 25), 1.5, 1.5),
    ("38女王节 Queen's day", (3, 1), (3, 8), 1.4, 2.0),
    ("春茶上新 Spring tea", (3, 25), (4, 20), 1.5, 1.5),
    ("618年中大促 618", (6, 1), (6, 18), 1.7, 3.5),
    ("中秋礼盒 Mid-autumn gifts", (9, 1), (9, 20), 1.4, 1.4),
    ("双11 Double 11", (10, 24), (11, 11), 1.6, 4.5),
    ("双12 Double 12", (12, 8), (12, 12), 1.3, 2.0),
)
_FESTIVAL_KEYS = {
    "年货节 New Year goods": "nianhuo",
    "38女王节 Queen's day": "38",
    "春茶上新 Spring tea": "spring_tea",
    "618年中大促 618": "618",
    "中秋礼盒 Mid-autumn gifts": "mid_autumn",
    "双11 Double 11": "double11",
    "双12 Double 12": "double12",
}


def months_before(moment: datetime, months: int) -> datetime:
    """The same wall-clock moment `months` calendar months earlier (day clamped)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def to_shanghai(moment: datetime | None) -> datetime:
    """`moment` on the Shanghai clock; naive means Shanghai, None means today 00:00."""
    if moment is None:
        today = datetime.now(SHANGHAI).date()
        return datetime(today.year, today.month, today.day, tzinfo=SHANGHAI)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(SHANGHAI)


@dataclass
class Timeline:
    """Sampling of realistic moments inside [start, end) and their ISO timestamps."""

    start: int
    end: int
    first_day: int = field(init=False)
    days: int = field(init=False)
    _day_cum: list[float] = field(init=False, repr=False)
    _day_text: dict[int, str] = field(init=False, repr=False)
    _campaign: list[str | None] = field(init=False, repr=False)
    _starts: list[tuple[int, str]] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self.first_day = self.start // DAY
        self.days = (self.end - 1) // DAY - self.first_day + 1
        dates = [date.fromordinal(_EPOCH_ORDINAL + self.first_day + i) for i in range(self.days)]
        self._campaign = [_festival_of(d) for d in dates]
        weights = [_day_weight(d, c) for d, c in zip(dates, self._campaign, strict=True)]
        self._day_cum = list(accumulate(weights))
        self._day_text = {}

    @classmethod
    def ending(cls, end: datetime, months: int) -> Timeline:
        """The window of `months` calendar months up to `end`."""
        return cls(_wall_seconds(months_before(end, months)), _wall_seconds(end))

    def stamp(self, t: int) -> str:
        """ISO-8601 with the +08:00 offset, clamped into the window."""
        if t >= self.end:
            t = self.end - 1
        elif t < self.start:
            t = self.start
        day, rest = divmod(t, DAY)
        text = self._day_text.get(day)
        if text is None:
            text = date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
            self._day_text[day] = text
        hours, rest = divmod(rest, HOUR)
        return f"{text}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}+08:00"

    def day_index(self, t: int) -> int:
        """Index of the window day containing `t` (0 is the first day)."""
        return min(max(t // DAY - self.first_day, 0), self.days - 1)

    def pick_day(self, rng: random.Random, lo: int = 0, hi: int | None = None) -> int:
        """A day index in [lo, hi], busier on weekends and during shopping festivals."""
        hi = self.days - 1 if hi is None else min(hi, self.days - 1)
        lo = min(max(lo, 0), hi)
        below = self._day_cum[lo - 1] if lo else 0.0
        target = below + rng.random() * (self._day_cum[hi] - below)
        return min(bisect_left(self._day_cum, target, lo, hi + 1), hi)

    def moment(self, rng: random.Random, day: int) -> int:
        """A waking-hours moment on window day `day`, kept inside the window."""
        hour = bisect_left(_HOUR_CUM, rng.random() * _HOUR_CUM[-1])
        t = (self.first_day + day) * DAY + hour * HOUR + rng.randrange(HOUR)
        return min(max(t, self.start), self.end - 1)

    def festival(self, t: int) -> str | None:
        """The shopping festival running at `t`, if any (a display name)."""
        return self._campaign[self.day_index(t)]

    def campaign_key(self, t: int) -> str:
        """A campaign slug such as `2026_618` or `always_on`."""
        name = self.festival(t)
        if name is None:
            return "always_on"
        year = date.fromordinal(_EPOCH_ORDINAL + t // DAY).year
        return f"{year}_{_FESTIVAL_KEYS[name]}"

    def festival_starts(self) -> list[tuple[int, str]]:
        """(first moment, campaign key) of every festival that starts inside the window."""
        if self._starts is not None:
            return self._starts
        starts = []
        for i in range(self.days):
            name = self._campaign[i]
            if name is not None and (i == 0 or self._campaign[i - 1] != name):
                t = (self.first_day + i) * DAY
                starts.append((t, self.campaign_key(t)))
        self._starts = starts
        return starts

    def next_birthday(self, birthday: str, after: int) -> int | None:
        """Midnight of the first birthday (`YYYY-MM-DD`) after `after`, if in the window."""
        month, day = int(birthday[5:7]), int(birthday[8:10])
        year = self.date_of(after).year
        for candidate in (date(year, month, day), date(year + 1, month, day)):
            t = (candidate.toordinal() - _EPOCH_ORDINAL) * DAY
            if after < t < self.end:
                return t
        return None

    def date_of(self, t: int) -> date:
        """The Shanghai calendar date of `t`."""
        return date.fromordinal(_EPOCH_ORDINAL + t // DAY)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _wall_seconds(moment: datetime) -> int:
    return int(moment.timestamp()) + _OFFSET


def _festival_of(day: date) -> str | None:
    key = (day.month, day.day)
    for name, first, last, _, _ in _FESTIVALS:
        if first <= key <= last:
            return name
    return None


def _day_weight(day: date, festival: str | None) -> float:
    weight = 1.25 if day.weekday() >= 5 else 1.0
    for name, _, last, daily, peak in _FESTIVALS:
        if name == festival:
            weight *= peak if (day.month, day.day) == last else daily
    return weight
