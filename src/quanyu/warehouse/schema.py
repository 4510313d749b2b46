"""Warehouse table schemas (Ibis), shared by every engine."""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt

TS = dt.Timestamp(timezone="UTC")

EVENTS = ibis.schema(
    {
        "workspace_id": dt.string,
        "message_id": dt.string,
        "type": dt.string,
        "event": dt.string,
        "name": dt.string,
        "user_id": dt.string,
        "anonymous_id": dt.string,
        "group_id": dt.string,
        "previous_id": dt.string,
        # timestamp = when it happened, corrected for client clock skew with sentAt.
        "timestamp": TS,
        "original_timestamp": TS,
        "sent_at": TS,
        "received_at": TS,
        # "future" / "past" when the timestamp is implausible; stored anyway, never dropped.
        "timestamp_flag": dt.string,
        "source_id": dt.string,
        "source_type": dt.string,
        "channel": dt.string,
        "domain": dt.string,  # public | private (公域/私域)
        "presence": dt.string,  # online | offline (线上/线下)
        "utm_campaign": dt.string,
        "utm_source": dt.string,
        "utm_medium": dt.string,
        "utm_term": dt.string,
        "utm_content": dt.string,
        "store_id": dt.string,
        "guide_id": dt.string,
        "order_id": dt.string,
        "amount": dt.float64,
        "currency": dt.string,
        "line_items": dt.json,
        "properties": dt.json,
        "traits": dt.json,
        "context": dt.json,
        "ip": dt.string,
        "batch_id": dt.int64,
    }
)

# One row per queue batch the warehouse holds, written in the same transaction as its events,
# with how many of its events were new (the rest repeated a stored messageId): after a crash
# the pipeline recovers both the fact and the counts from here.
APPLIED_BATCHES = ibis.schema({"batch_id": dt.int64, "applied_at": TS, "inserted": dt.int64})

JSON_COLUMNS = ("line_items", "properties", "traits", "context")


# The identity graph's nodes: every normalised identifier of a workspace and the person
# (profile) it belongs to, rewritten per workspace by each stitch.
IDENTITY_NODES = ibis.schema(
    {"workspace_id": dt.string, "key": dt.string, "id_type": dt.string, "value": dt.string,
     "scope": dt.string, "profile_id": dt.string, "is_anchor": dt.boolean, "first_seen": TS}
)  # fmt: skip

# Profile ids that stopped existing because their person merged into another: old → new.
IDENTITY_REDIRECTS = ibis.schema(
    {"workspace_id": dt.string, "old_profile_id": dt.string, "profile_id": dt.string, "at": TS}
)
