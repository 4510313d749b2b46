"""Segment signals: `segment_entered` / `segment_exited`, one per row of the membership log.

The log is the signal stream. Each row carries `seq`, a number given in commit order (log
writes are serialised, `membership._commit`), so a consumer that remembers the last `seq` it
read misses nothing, even when a slow scheduled refresh commits after a realtime entry:

- over HTTP, `GET /api/v1/segments/signals?after=CURSOR` pages through the log oldest first;
- in the process, `Signals.subscribe(fn)` calls `fn(signals)` after each commit that logged
  any (a subscriber that raises is logged and skipped; the write has happened either way).
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import orjson

from quanyu.errors import InvalidInput
from quanyu.warehouse.base import Warehouse

log = logging.getLogger(__name__)

MAX_PAGE = 1000
NAMES = {"entered": "segment_entered", "exited": "segment_exited"}


@dataclass(frozen=True)
class Signal:
    seq: int
    workspace_id: str
    segment_id: str
    profile_id: str
    kind: str  # entered | exited
    at: datetime
    version: int
    run_id: str
    mode: str

    @property
    def signal(self) -> str:
        return NAMES[self.kind]

    def public(self) -> dict[str, Any]:
        return {"signal": self.signal, "segment_id": self.segment_id, "profile_id": self.profile_id,
                "at": self.at.isoformat(), "version": self.version, "run_id": self.run_id, "mode": self.mode,
                "cursor": encode(self.seq)}  # fmt: skip


Subscriber = Callable[[Sequence[Signal]], None]


class Signals:
    """The in-process subscribers to segment signals (journeys, webhooks, tests)."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._guard = threading.Lock()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call `fn` with the signals of every committed membership change; returns the
        function that unsubscribes."""
        with self._guard:
            self._subscribers.append(fn)

        def cancel() -> None:
            with self._guard:
                if fn in self._subscribers:
                    self._subscribers.remove(fn)

        return cancel

    @property
    def wanted(self) -> bool:
        """Whether anyone listens (signals are only built for subscribers)."""
        return bool(self._subscribers)

    def publish(self, signals: Sequence[Signal]) -> None:
        with self._guard:
            subscribers = list(self._subscribers)
        for fn in subscribers:
            try:
                fn(signals)
            except Exception:
                log.exception("segment signal subscriber %r failed", fn)


# ---------------------------------------------------------------------------------------------
# Reading


def signal_rows(log_table: ibis.Table, workspace_id: str, after: int, segment_id: str | None) -> ibis.Table:
    """The workspace's log rows past `after`, oldest first (keyset on `seq`)."""
    preds = [log_table.workspace_id == workspace_id, log_table.seq > after]
    if segment_id is not None:
        preds.append(log_table.segment_id == segment_id)
    return log_table.filter(*preds).order_by(log_table.seq)


def signals_page(
    warehouse: Warehouse, workspace_id: str, after: str | None = None, limit: int = 100,
    segment_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Signals past the cursor `after` (from the start without one), oldest first.
    `next_cursor` is always set: poll with it to get what comes next."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit 需在 1–{MAX_PAGE} / limit must be 1–{MAX_PAGE}", code="invalid_limit")
    start = decode(after)
    expr = signal_rows(warehouse.table("segment_membership_log"), workspace_id, start, segment_id)
    rows = warehouse.execute(expr.limit(limit)).to_pylist()
    items = [Signal(**row).public() for row in rows]
    last = rows[-1]["seq"] if rows else start
    return {"items": items, "next_cursor": encode(last)}


def encode(seq: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"seq": seq})).decode()


def decode(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except Exception as exc:
        raise InvalidInput("cursor 无效 / invalid cursor", code="invalid_cursor") from exc
    seq = value.get("seq") if isinstance(value, dict) else None
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise InvalidInput("cursor 无效 / invalid cursor", code="invalid_cursor")
    return seq
