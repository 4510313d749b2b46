"""Normalisation of Segment messages into warehouse columns, built column by column.

Written for throughput: one pass per message with plain dict access, columns accumulated as
Python lists and turned into Arrow arrays once per micro-batch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from quanyu.collect.source_types import CHANNELS, DOMAINS, PRESENCES
from quanyu.collect.sources import SourceInfo
from quanyu.warehouse.events import to_micros
from quanyu.warehouse.schema import EVENTS

_ARROW_SCHEMA = EVENTS.to_pyarrow()
_AMOUNT_KEYS = ("total", "revenue", "amount", "value")
_UTM = ("campaign", "source", "medium", "term", "content")


class EventColumns:
    """Accumulates normalised events; `to_arrow()` yields one columnar batch."""

    def __init__(self, future_after: timedelta, past_before: timedelta) -> None:
        self.future_after = future_after
        self.past_before = past_before
        self.columns: dict[str, list[Any]] = {name: [] for name in EVENTS.names}

    def __len__(self) -> int:
        return len(self.columns["message_id"])

    def add(self, msg: dict[str, Any], source: SourceInfo, received_at: datetime, batch_id: int) -> None:
        c = self.columns
        props = msg.get("properties") or {}
        context = msg.get("context") or {}
        overrides = context.get("quanyu") or {}
        ts, original, sent, flag = self._times(msg, received_at)
        c["workspace_id"].append(source.workspace_id)
        c["message_id"].append(msg["messageId"])
        c["type"].append(msg["type"])
        c["event"].append(msg.get("event"))
        c["name"].append(msg.get("name"))
        c["user_id"].append(msg.get("userId"))
        c["anonymous_id"].append(msg.get("anonymousId"))
        c["group_id"].append(msg.get("groupId"))
        c["previous_id"].append(msg.get("previousId"))
        c["timestamp"].append(ts)
        c["original_timestamp"].append(original)
        c["sent_at"].append(sent)
        c["received_at"].append(to_micros(received_at))
        c["timestamp_flag"].append(flag)
        c["source_id"].append(source.id)
        c["source_type"].append(source.type)
        c["channel"].append(_pick(overrides.get("channel"), CHANNELS, source.channel))
        c["domain"].append(_pick(overrides.get("domain"), DOMAINS, source.domain))
        c["presence"].append(_pick(overrides.get("presence"), PRESENCES, source.presence))
        self._campaign(context.get("campaign"), props)
        c["store_id"].append(_text(props.get("store_id") or overrides.get("store_id")))
        c["guide_id"].append(_text(props.get("guide_id") or overrides.get("guide_id")))
        self._order(props)
        c["properties"].append(orjson.dumps(props).decode() if props else None)
        traits = msg.get("traits") or context.get("traits")
        c["traits"].append(orjson.dumps(traits).decode() if traits else None)
        c["context"].append(orjson.dumps(context).decode() if context else None)
        c["ip"].append(_text(context.get("ip")))
        c["batch_id"].append(batch_id)

    def _times(self, msg: dict[str, Any], received_at: datetime) -> tuple[int, int | None, int | None, str | None]:
        original = _parse(msg.get("timestamp") or msg.get("originalTimestamp"))
        sent = _parse(msg.get("sentAt"))
        if original is not None and sent is not None:
            # Segment's clock-skew correction: trust the server clock for the offset.
            ts = received_at - (sent - original)
        else:
            ts = original or received_at
        flag = None
        if ts > received_at + self.future_after:
            flag = "future"
        elif ts < received_at - self.past_before:
            flag = "past"
        return to_micros(ts), to_micros(original) if original else None, to_micros(sent) if sent else None, flag

    def _campaign(self, campaign: Any, props: dict[str, Any]) -> None:
        campaign = campaign if isinstance(campaign, dict) else {}
        for key in _UTM:
            value = campaign.get("name" if key == "campaign" else key) or props.get(f"utm_{key}")
            self.columns[f"utm_{key}"].append(_text(value))

    def _order(self, props: dict[str, Any]) -> None:
        c = self.columns
        amount = next((v for k in _AMOUNT_KEYS if _is_number(v := props.get(k))), None)
        c["order_id"].append(_text(props.get("order_id")))
        c["amount"].append(float(amount) if amount is not None else None)
        currency = props.get("currency")
        c["currency"].append(
            currency.upper() if isinstance(currency, str) else ("CNY" if amount is not None else None)
        )
        products = props.get("products")
        c["line_items"].append(orjson.dumps(products).decode() if isinstance(products, list) else None)

    def to_arrow(self) -> pa.Table:
        return pa.Table.from_pydict(self.columns, schema=_ARROW_SCHEMA)


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _pick(value: Any, allowed: frozenset[str], default: str) -> str:
    return value if value in allowed else default


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
