"""Normalisation as one columnar query: queued batches → rows of the events table.

A pure builder. Each queued batch (a JSON array of completed Segment messages) is parsed once
by the engine (`json_transform` into a list of structs), unnested, joined with its source's
channel defaults, and projected onto the warehouse schema. Within the micro-batch the first
occurrence of a messageId wins; against the warehouse, an anti-join over the dedupe horizon
drops resends.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import ibis.expr.datatypes as dt
import orjson
import pyarrow as pa

from quanyu.collect.source_types import CHANNELS, DOMAINS, PRESENCES
from quanyu.warehouse.events import events_table
from quanyu.warehouse.schema import TS

BATCHES = "_quanyu_batches"

# One row per queued batch, carrying its source's channel defaults alongside the payload.
BATCH_SCHEMA = ibis.schema(
    {"batch_id": dt.int64, "workspace_id": dt.string, "source_id": dt.string, "source_type": dt.string,
     "channel": dt.string, "domain": dt.string, "presence": dt.string, "received_at": TS,
     "payload": dt.string}
)  # fmt: skip

_STRING_FIELDS = ("messageId", "type", "event", "name", "userId", "anonymousId", "groupId", "previousId",
                  "timestamp", "originalTimestamp", "sentAt")  # fmt: skip
_JSON_FIELDS = ("properties", "traits", "context")
MESSAGE = dt.Struct({**{f: dt.string for f in _STRING_FIELDS}, **{f: dt.json for f in _JSON_FIELDS}})

# The nested values the warehouse promotes to columns. Parsing the batch a second time with this
# structure is far cheaper than extracting each path from the JSON blobs row by row.
_UTM = ("campaign", "source", "medium", "term", "content")
_CAMPAIGN = dt.Struct({"name": dt.string, **{k: dt.string for k in _UTM[1:]}})
_OVERRIDES = dt.Struct({k: dt.string for k in ("channel", "domain", "presence", "store_id", "guide_id")})
_PROPS = dt.Struct(
    {"order_id": dt.string, "total": dt.float64, "revenue": dt.float64, "amount": dt.float64,
     "value": dt.float64, "currency": dt.string, "store_id": dt.string, "guide_id": dt.string,
     "products": dt.json, **{f"utm_{k}": dt.string for k in _UTM}}
)  # fmt: skip
PROMOTED = dt.Struct(
    {"properties": _PROPS,
     "context": dt.Struct({"ip": dt.string, "campaign": _CAMPAIGN, "quanyu": _OVERRIDES, "traits": dt.json})}
)  # fmt: skip


def _duckdb_structure(dtype: dt.DataType) -> object:
    if isinstance(dtype, dt.Struct):
        return {name: _duckdb_structure(t) for name, t in dtype.items()}
    return "JSON" if dtype.is_json() else "DOUBLE" if dtype.is_floating() else "VARCHAR"


@ibis.udf.scalar.builtin(name="json_transform")
def _messages(json: str, structure: str) -> dt.Array(MESSAGE):  # type: ignore[valid-type]
    """DuckDB's JSON → typed value, parsing each document once."""


_MESSAGE_ID = dt.Struct({"messageId": dt.string})


@ibis.udf.scalar.builtin(name="json_transform")
def _message_ids(json: str, structure: str) -> dt.Array(_MESSAGE_ID):  # type: ignore[valid-type]
    """The same parse, keeping only the messageId (the narrow dedupe pass)."""


@ibis.udf.scalar.builtin(name="json_transform")
def _promoted(json: str, structure: str) -> dt.Array(PROMOTED):  # type: ignore[valid-type]
    """The same parse, into the promoted nested fields."""


def _first_text(*values: ibis.Value) -> ibis.Value:
    return ibis.coalesce(*[v.nullif("") for v in values])


def _allowed(value: ibis.StringValue, allowed: frozenset[str], default: ibis.Value) -> ibis.Value:
    return ibis.ifelse(value.isin(sorted(allowed)), value, default)


def normalised(future_after: timedelta, past_before: timedelta) -> ibis.Table:
    """Rows in the events schema, one per message of the registered batches."""
    batches = ibis.table(BATCH_SCHEMA, name=BATCHES)
    message_structure = orjson.dumps([_duckdb_structure(MESSAGE)]).decode()
    promoted_structure = orjson.dumps([_duckdb_structure(PROMOTED)]).decode()
    # DuckDB unnests two lists in one projection side by side: element i of each belongs together.
    j = batches.select(
        *[name for name in BATCH_SCHEMA.names if name != "payload"],
        m=_messages(batches.payload, message_structure).unnest(),
        p=_promoted(batches.payload, promoted_structure).unnest(),
    )
    m, props, ctx = j.m, j.p["properties"], j.p["context"]
    overrides, campaign = ctx["quanyu"], ctx["campaign"]
    ts = m["timestamp"].cast(TS)
    amount = ibis.coalesce(props["total"], props["revenue"], props["amount"], props["value"])
    currency = props["currency"].upper()
    return j.select(
        workspace_id=j.workspace_id,
        message_id=m["messageId"],
        type=m["type"],
        event=m["event"],
        name=m["name"],
        user_id=m["userId"],
        anonymous_id=m["anonymousId"],
        group_id=m["groupId"],
        previous_id=m["previousId"],
        timestamp=ts,
        original_timestamp=m["originalTimestamp"].cast(TS),
        sent_at=m["sentAt"].cast(TS),
        received_at=j.received_at,
        timestamp_flag=ibis.cases(
            (ts > j.received_at + ibis.interval(seconds=int(future_after.total_seconds())), "future"),
            (ts < j.received_at - ibis.interval(days=past_before.days), "past"),
            else_=ibis.null(dt.string),
        ),
        source_id=j.source_id,
        source_type=j.source_type,
        channel=_allowed(overrides["channel"], CHANNELS, j.channel),
        domain=_allowed(overrides["domain"], DOMAINS, j.domain),
        presence=_allowed(overrides["presence"], PRESENCES, j.presence),
        **{
            f"utm_{k}": _first_text(campaign["name" if k == "campaign" else k], props[f"utm_{k}"])
            for k in _UTM
        },
        store_id=_first_text(props["store_id"], overrides["store_id"]),
        guide_id=_first_text(props["guide_id"], overrides["guide_id"]),
        order_id=_first_text(props["order_id"]),
        amount=amount,
        currency=ibis.ifelse(currency.isnull() & amount.notnull(), "CNY", currency),
        line_items=ibis.ifelse(props["products"].array.notnull(), props["products"], ibis.null(dt.json)),
        properties=m["properties"],
        traits=ibis.coalesce(m["traits"], ctx["traits"]),
        context=m["context"],
        ip=ctx["ip"],
        batch_id=j.batch_id,
    )


def repeats() -> ibis.Table:
    """(workspace_id, message_id, batch_id) of messages that repeat one from an earlier queue
    batch of the micro-batch: the earliest batch wins.

    A narrow pass: only messageIds are parsed and windowed, never the wide rows. Copies inside
    one queue batch are not told apart here; the collector never queues them (it keeps the first
    copy of a messageId per request and per replay), and if one slipped through both copies
    would be kept rather than both dropped.
    """
    batches = ibis.table(BATCH_SCHEMA, name=BATCHES)
    structure = orjson.dumps([_duckdb_structure(_MESSAGE_ID)]).decode()
    ids = batches.select(
        "workspace_id", "batch_id", m=_message_ids(batches.payload, structure).unnest()
    ).select("workspace_id", "batch_id", message_id=ibis._.m["messageId"])
    first = ids.batch_id.min().over(group_by=[ids.workspace_id, ids.message_id])
    ranked = ids.mutate(first_batch=first)
    return ranked.filter(ranked.batch_id > ranked.first_batch).select(
        "workspace_id", "message_id", "batch_id"
    )


def new_events(future_after: timedelta, past_before: timedelta, since: datetime) -> ibis.Table:
    """Normalised rows whose messageId is neither stored within the dedupe horizon nor a
    repeat of an earlier batch of the same micro-batch.

    Both checks are anti-joins, so the warehouse appends only new rows: deleting repeats after
    the insert would make the engine rewrite freshly written row groups at commit.
    """
    rows = normalised(future_after, past_before)
    stored = events_table()
    recent = stored.filter(stored.received_at >= since).select("workspace_id", "message_id")
    # An anti-join keeps exactly the left side's columns, already in the events schema's order.
    fresh = rows.anti_join(recent, ["workspace_id", "message_id"])
    return fresh.anti_join(repeats(), ["workspace_id", "message_id", "batch_id"])


def batch_table(rows: list[tuple[int, str, str, str, str, str, str, datetime, bytes]]) -> pa.Table:
    """Arrow form of claimed queue batches (fields in BATCH_SCHEMA order)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(BATCH_SCHEMA)
    arrays = [pa.array(col, typ) for col, typ in zip(columns[:-1], _ARROW_BATCH.types[:-1], strict=True)]
    # Payloads stay bytes until the engine parses them; the cast only validates UTF-8.
    arrays.append(pa.array(columns[-1], pa.binary()).cast(pa.string()))
    table = pa.Table.from_arrays(arrays, schema=_ARROW_BATCH)
    # Small record batches let the engine parse payloads on every core.
    return pa.Table.from_batches(table.to_batches(max_chunksize=8), schema=_ARROW_BATCH)


_ARROW_BATCH = BATCH_SCHEMA.to_pyarrow()
