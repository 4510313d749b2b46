"""The engine's clock. Production reads the system time; tests and the demo move time forward
(`ManualClock`) so a three-day wait passes in a second."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that stands still until told to move; thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (start or datetime.now(UTC)).astimezone(UTC)
        self._guard = threading.Lock()

    def now(self) -> datetime:
        with self._guard:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._guard:
            self._now += delta
            return self._now

    def set(self, at: datetime) -> None:
        with self._guard:
            self._now = at.astimezone(UTC)


class OffsetClock:
    """System time shifted by a fixed offset (`quanyu journeys run --advance 3d`)."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset
