"""Pure query builders over the events table: no connection, just Ibis expressions."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import ibis
import orjson

from quanyu.errors import InvalidInput
from quanyu.warehouse.schema import EVENTS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (no float rounding)."""
    return (value - EPOCH) // timedelta(microseconds=1)


def events_table() -> ibis.Table:
    return ibis.table(EVENTS, name="events")


@dataclass(frozen=True)
class EventFilter:
    workspace_id: str
    user_id: str | None = None
    anonymous_id: str | None = None
    event: str | None = None
    type: str | None = None
    source_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Cursor:
    timestamp_us: int
    message_id: str

    def encode(self) -> str:
        return base64.urlsafe_b64encode(orjson.dumps([self.timestamp_us, self.message_id])).decode()

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            ts, mid = orjson.loads(base64.urlsafe_b64decode(token.encode()))
            return cls(int(ts), str(mid))
        except Exception as exc:
            raise InvalidInput("cursor 无效 / invalid cursor", code="invalid_cursor") from exc


def browse(events: ibis.Table, flt: EventFilter, cursor: Cursor | None, limit: int) -> ibis.Table:
    """Newest first, keyset-paginated on (timestamp, message_id)."""
    preds = [events.workspace_id == flt.workspace_id]
    for column in ("user_id", "anonymous_id", "event", "type", "source_id"):
        value = getattr(flt, column)
        if value is not None:
            preds.append(events[column] == value)
    if flt.since is not None:
        preds.append(events.timestamp >= flt.since)
    if flt.until is not None:
        preds.append(events.timestamp < flt.until)
    if cursor is not None:
        preds.append(past_cursor(events, cursor, newest_first=True))
    return events.filter(*preds).order_by([events.timestamp.desc(), events.message_id.desc()]).limit(limit)


def past_cursor(events: ibis.Table, cursor: Cursor, newest_first: bool) -> ibis.BooleanValue:
    """Rows after `cursor` in (timestamp, message_id) order: keyset pagination either way."""
    at = ibis.literal(EPOCH + timedelta(microseconds=cursor.timestamp_us), type="timestamp('UTC')")
    if newest_first:
        return (events.timestamp < at) | ((events.timestamp == at) & (events.message_id < cursor.message_id))
    return (events.timestamp > at) | ((events.timestamp == at) & (events.message_id > cursor.message_id))


def channel_stats(events: ibis.Table, workspace_id: str) -> ibis.Table:
    """Per channel: events, distinct visitors (by user or anonymous id), orders and revenue."""
    mine = events.filter(events.workspace_id == workspace_id)
    who = ibis.coalesce(mine.user_id, mine.anonymous_id)
    is_order = mine.order_id.notnull() & (mine.event == "Order Completed")
    return (
        mine.group_by(["channel", "domain", "presence"])
        .aggregate(
            events=mine.count(),
            visitors=who.nunique(),
            orders=mine.order_id.nunique(where=is_order),
            revenue=mine.amount.sum(where=is_order).fill_null(0).round(2),
            first_seen=mine.timestamp.min(),
            last_seen=mine.timestamp.max(),
        )
        .order_by(ibis.desc("events"))
    )
