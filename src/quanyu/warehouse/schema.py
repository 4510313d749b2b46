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

# Events with their person (`quanyu.identity.person_events`): the columns segment conditions
# read, the identifier each event is attributed to and that identifier's current profile id.
# Derived from events + identity_event_keys + identity_nodes; rebuilt with the graph.
PERSON_EVENTS = ibis.schema(
    {"workspace_id": dt.string, "profile_id": dt.string, "key": dt.string, "message_id": dt.string,
     "type": dt.string, "event": dt.string, "name": dt.string, "timestamp": TS, "source_id": dt.string,
     "source_type": dt.string, "channel": dt.string, "domain": dt.string, "presence": dt.string,
     "store_id": dt.string, "guide_id": dt.string, "order_id": dt.string, "amount": dt.float64,
     "currency": dt.string, "utm_source": dt.string, "utm_medium": dt.string, "utm_campaign": dt.string,
     "utm_term": dt.string, "utm_content": dt.string, "properties": dt.json}
)  # fmt: skip

# One row per queue batch the warehouse holds, written in the same transaction as its events,
# with how many of its events were new (the rest repeated a stored messageId): after a crash
# the pipeline recovers both the fact and the counts from here.
APPLIED_BATCHES = ibis.schema({"batch_id": dt.int64, "applied_at": TS, "inserted": dt.int64})

JSON_COLUMNS = ("line_items", "properties", "traits", "context")


# The identity graph's nodes: every normalised identifier of a workspace, the person (profile)
# it belongs to, and its raw component (connected through links before the per-type limits
# apply: the unit an incremental stitch recomputes). Rewritten per component by each stitch.
IDENTITY_NODES = ibis.schema(
    {"workspace_id": dt.string, "key": dt.string, "id_type": dt.string, "value": dt.string,
     "scope": dt.string, "profile_id": dt.string, "is_anchor": dt.boolean, "first_seen": TS,
     "component": dt.string}
)  # fmt: skip

# The graph's links, one row per identifier pair (a_key < b_key), with the first record that
# showed them together: the evidence a merge is explained by.
IDENTITY_EDGES = ibis.schema(
    {"workspace_id": dt.string, "a_key": dt.string, "b_key": dt.string, "first_seen": TS,
     "message_id": dt.string, "channel": dt.string, "source_type": dt.string, "kind": dt.string}
)  # fmt: skip

# Which identifier each event is attributed to (its strongest one): events reach their person
# through it, so merges and splits never rewrite events.
IDENTITY_EVENT_KEYS = ibis.schema(
    {"workspace_id": dt.string, "message_id": dt.string, "key": dt.string, "timestamp": TS}
)

# Queue batches whose events the identity graph has taken in (the pipeline's identity stage
# catches up from applied_batches with an anti-join on this).
IDENTITY_BATCHES = ibis.schema({"batch_id": dt.int64, "at": TS})

# Queue batches the journeys' intake has read (triggers, waits, goals, exits, consent): it
# catches up from identity_batches with an anti-join on this, like the identity stage.
JOURNEY_BATCHES = ibis.schema({"batch_id": dt.int64, "at": TS})

# Borderline probabilistic matches waiting for a person to decide (the review queue), and the
# decisions: pending → merged | rejected. A rejected pair is never queued again.
IDENTITY_REVIEWS = ibis.schema(
    {"workspace_id": dt.string, "review_id": dt.string, "a_profile_id": dt.string, "b_profile_id": dt.string,
     "a_key": dt.string, "b_key": dt.string, "match_probability": dt.float64, "match_weight": dt.float64,
     "status": dt.string, "created_at": TS, "decided_at": TS, "actor": dt.string}
)  # fmt: skip

# Links an operator marked as wrong (unmerge): never used again by any stitch.
IDENTITY_EXCLUSIONS = ibis.schema(
    {"workspace_id": dt.string, "a_key": dt.string, "b_key": dt.string, "at": TS,
     "actor": dt.string, "reason": dt.string}
)  # fmt: skip

# The append-only log of merges and splits, each with its explanation.
IDENTITY_CHANGES = ibis.schema(
    {"workspace_id": dt.string, "change_id": dt.string, "at": TS, "kind": dt.string,
     "profile_id": dt.string, "other_profile_ids": dt.Array(dt.string), "reason": dt.json,
     "explanation": dt.string}
)  # fmt: skip

# Profile ids that stopped existing because their person merged into another: old → new.
IDENTITY_REDIRECTS = ibis.schema(
    {"workspace_id": dt.string, "old_profile_id": dt.string, "profile_id": dt.string, "at": TS}
)

# One row per person, materialised from their events and identifiers (`quanyu.profiles`):
# merged traits with the source each value came from, identifiers with their sources, computed
# traits, RFM scores and the tags held at the last refresh. Rewritten per profile by refresh.
PROFILE_CHANNEL = dt.Struct({"channel": dt.string, "first_seen": TS, "last_seen": TS, "events": dt.int64})
PROFILE_IDENTIFIER = dt.Struct(
    {
        "type": dt.string,
        "value": dt.string,
        "scope": dt.string,
        "first_seen": TS,
        "sources": dt.Array(dt.string),
    }
)
PROFILE_TRAIT_SOURCE = dt.Struct(
    {"key": dt.string, "source_type": dt.string, "source_id": dt.string, "at": TS}
)
PROFILES = ibis.schema(
    {"workspace_id": dt.string, "profile_id": dt.string,
     "traits": dt.json, "trait_sources": dt.Array(PROFILE_TRAIT_SOURCE),
     "identifiers": dt.Array(PROFILE_IDENTIFIER), "identifier_count": dt.int64,
     "reachable_channels": dt.Array(dt.string),
     "event_count": dt.int64, "first_seen": TS, "last_seen": TS,
     "channels": dt.Array(dt.string), "channel_activity": dt.Array(PROFILE_CHANNEL),
     "preferred_channel": dt.string, "first_touch_channel": dt.string, "first_touch_source": dt.string,
     "first_touch_campaign": dt.string, "in_private_domain": dt.boolean, "in_public_domain": dt.boolean,
     "online": dt.boolean, "offline": dt.boolean,
     "order_count": dt.int64, "revenue": dt.float64, "avg_order_value": dt.float64,
     "first_purchase_at": TS, "last_purchase_at": TS, "refund_count": dt.int64,
     "refund_amount": dt.float64, "net_revenue": dt.float64,
     "rfm_recency": dt.int64, "rfm_frequency": dt.int64, "rfm_monetary": dt.int64, "rfm_segment": dt.string,
     "tags": dt.Array(dt.string), "updated_at": TS}
)  # fmt: skip

# The append-only log of tag changes: manual ones (through the API, with their actor) and
# rule-based ones (written by refresh when a rule starts or stops matching). A profile's tags
# are the latest `op` per (profile, tag, source) that is "add".
PROFILE_TAGS = ibis.schema(
    {"workspace_id": dt.string, "profile_id": dt.string, "tag": dt.string, "source": dt.string,
     "op": dt.string, "at": TS, "actor": dt.string}
)  # fmt: skip

# Who is in each saved segment now, since when and under which definition version they entered.
# Refresh rewrites only the changes (entries inserted, exits deleted) in one transaction with
# their log rows.
SEGMENT_MEMBERS = ibis.schema(
    {"workspace_id": dt.string, "segment_id": dt.string, "profile_id": dt.string, "version": dt.int64,
     "since": TS}
)  # fmt: skip

# The append-only log of segment entries and exits (kind "entered" | "exited"): when, under which
# definition version, by which refresh run and mode ("scheduled" | "on_demand" | "realtime").
# `seq` numbers the rows in commit order: the keyset of the signal stream (segments/signals.py).
SEGMENT_MEMBERSHIP_LOG = ibis.schema(
    {"workspace_id": dt.string, "segment_id": dt.string, "profile_id": dt.string, "kind": dt.string,
     "at": TS, "version": dt.int64, "run_id": dt.string, "mode": dt.string, "seq": dt.int64}
)  # fmt: skip
