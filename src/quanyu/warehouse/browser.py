"""The event browser: runs the pure `browse` query and shapes rows for people and scripts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from quanyu.warehouse.base import Warehouse
from quanyu.warehouse.events import Cursor, EventFilter, browse, channel_stats, to_micros
from quanyu.warehouse.schema import JSON_COLUMNS

ITEM_FIELDS = (
    "message_id", "type", "event", "name", "user_id", "anonymous_id", "group_id", "previous_id",
    "timestamp", "received_at",
    "timestamp_flag", "source_id", "source_type", "channel", "domain", "presence", "utm_campaign",
    "utm_source", "utm_medium", "store_id", "guide_id", "order_id", "amount", "currency",
    "line_items", "properties", "traits", "context",
)  # fmt: skip


def list_events(warehouse: Warehouse, flt: EventFilter, cursor: str | None, limit: int) -> dict[str, Any]:
    expr = browse(warehouse.table("events"), flt, Cursor.decode(cursor) if cursor else None, limit + 1)
    rows = warehouse.execute(expr.select(*ITEM_FIELDS)).to_pylist()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = Cursor(to_micros(last["timestamp"]), last["message_id"]).encode()
    items = [_item(r) for r in rows]
    return {"items": items, "next_cursor": next_cursor}


def _item(row: dict[str, Any]) -> dict[str, Any]:
    for key in JSON_COLUMNS:
        value = row.get(key)
        row[key] = orjson.loads(value) if isinstance(value, str | bytes) else value
    for key in ("timestamp", "received_at"):
        value = row.get(key)
        row[key] = value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value
    return row


def event_stats(warehouse: Warehouse, workspace_id: str) -> dict[str, Any]:
    rows = warehouse.execute(channel_stats(warehouse.table("events"), workspace_id)).to_pylist()
    for row in rows:
        for key in ("first_seen", "last_seen"):
            row[key] = row[key].astimezone(UTC).isoformat() if row[key] else None
    totals = {
        "events": sum(r["events"] for r in rows),
        "orders": sum(r["orders"] for r in rows),
        "revenue": round(sum(r["revenue"] for r in rows), 2),
    }
    return {"channels": rows, "totals": totals}
