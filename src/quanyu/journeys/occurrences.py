"""When date and schedule triggers fire: the latest occurrence at or before a moment."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, time, timedelta
from typing import Any

from quanyu.journeys.model import DateTrigger, ScheduleTrigger


def occurrence(trig: DateTrigger | ScheduleTrigger, now: datetime, tz: Any) -> str | None:
    """The latest occurrence at or before `now`, as a sortable string; None before the first."""
    local = now.astimezone(tz)
    if isinstance(trig, ScheduleTrigger) and trig.once is not None:
        return trig.once.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if now >= trig.once else None
    at = time.fromisoformat(trig.at)
    day = local.date()
    if isinstance(trig, DateTrigger) or trig.every == "day":
        candidate = day if local.time() >= at else day - timedelta(days=1)
    elif trig.every == "week":
        candidate = day - timedelta(days=(day.isoweekday() - trig.weekday) % 7)
        if candidate == day and local.time() < at:
            candidate -= timedelta(days=7)
    else:
        candidate = day.replace(day=trig.day)
        if candidate > day or (candidate == day and local.time() < at):
            prev = (day.replace(day=1) - timedelta(days=1)).replace(day=trig.day)
            candidate = prev
    if isinstance(trig, DateTrigger):
        return candidate.isoformat() if candidate == day else None
    return f"{candidate.isoformat()}T{trig.at}"


def is_leap(year: int) -> bool:
    return calendar.isleap(year)
