"""Where identifiers come from, and how a record's identifiers become links.

`candidates()` is a pure Ibis builder over the events table: one row per raw identifier an
event carries (`userId`, `anonymousId`, phones and emails in traits, `context.device.id`,
`context.externalIds`, member cards, ad click ids in properties). `links()` normalises them
in Python (once per distinct raw value, not per event) and links each event's identifiers in
a star around its strongest one, which is all connectivity needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.identity.identifiers import IdentifierTypes
from quanyu.warehouse.functions import json_text

# (identifier type, JSON column, path) read from every event.
_TRAIT_PATHS = (
    ("phone", "traits", "$.phone"),
    ("phone", "context", "$.traits.phone"),
    ("email", "traits", "$.email"),
    ("email", "context", "$.traits.email"),
    ("member_card", "traits", "$.member_card"),
    ("device_id", "context", "$.device.id"),
)
# Ad click ids, which the ad click and the landing page it opened both carry in their properties:
# 百度 bd_vid, 腾讯广告 gdt_vid / qz_gdt, 巨量引擎 and 小红书 clickid, Google gclid, Meta fbclid,
# TikTok ttclid, Microsoft msclkid. One event has one click id at most, so one scan reads them all.
_CLICK_ID_PATHS = tuple(
    f"$.{name}" for name in ("bd_vid", "gdt_vid", "qz_gdt", "clickid", "gclid", "fbclid", "ttclid", "msclkid")
)

CANDIDATE_SCHEMA = ibis.schema(
    {"workspace_id": dt.string, "message_id": dt.string, "seen": dt.Timestamp(timezone="UTC"),
     "channel": dt.string, "source_type": dt.string, "id_type": dt.string, "raw": dt.string,
     "scope": dt.string}
)  # fmt: skip
_CARRIED = ("workspace_id", "message_id", "seen", "channel", "source_type")


def candidates(events: ibis.Table) -> ibis.Table:
    """Raw identifiers per event, in CANDIDATE_SCHEMA (values not yet normalised)."""
    base = events.select("workspace_id", "message_id", "channel", "source_type", seen=events.timestamp,
                         traits=events.traits, context=events.context, properties=events.properties,
                         user_id=events.user_id, anonymous_id=events.anonymous_id)  # fmt: skip

    def rows(id_type: ibis.Value, raw: ibis.Value, scope: ibis.Value, table: ibis.Table = base) -> ibis.Table:
        return table.select(*_CARRIED, id_type=id_type, raw=raw, scope=scope).filter(ibis._.raw.notnull())

    no_scope = ibis.literal("", type=dt.string)
    parts = [
        rows(ibis.literal("user_id"), base.user_id, no_scope),
        rows(ibis.literal("anonymous_id"), base.anonymous_id, no_scope),
    ]
    for id_type, column, path in _TRAIT_PATHS:
        parts.append(rows(ibis.literal(id_type), json_text(base[column], path), no_scope))
    click = ibis.coalesce(*(json_text(base.properties, path) for path in _CLICK_ID_PATHS))
    parts.append(rows(ibis.literal("click_id"), click, no_scope))
    external = base.select(*_CARRIED, x=base.context["externalIds"].array.unnest())
    parts.append(
        rows(
            json_text(external.x, "$.type"),
            json_text(external.x, "$.id"),
            ibis.coalesce(json_text(external.x, "$.app_id"), no_scope),
            external,
        )
    )
    return ibis.union(*parts, distinct=False)


@dataclass(frozen=True)
class Links:
    """Identifier links (star per record) and identifiers seen on their own."""

    a_keys: pa.Array
    a_types: np.ndarray
    b_keys: pa.Array
    b_types: np.ndarray
    seen: np.ndarray  # epoch micros
    single_keys: pa.Array
    single_types: np.ndarray
    single_seen: np.ndarray
    # Normalised identifiers by key: type, value, scope (for storing the nodes).
    identifiers: dict[str, tuple[str, str, str]]
    # The record each link came from (its evidence): message id, channel, source type.
    evidence: pa.Table
    # Per record with a usable identifier: its message id, strongest identifier and time.
    records: pa.Table


def links(rows: pa.Table, types: IdentifierTypes) -> Links:
    """Normalise candidate rows and link each record's identifiers.

    Junk and malformed values are dropped here, so they never link anybody; masked phones are
    dropped too (partial evidence is for probabilistic matching, not for links).
    """
    type_names = [t.name for t in types]
    type_index = {name: i for i, name in enumerate(type_names)}
    priority = np.array([t.priority for t in types], dtype=np.int64)

    # Normalise each distinct (type, raw, scope) once. Combined by dictionary codes, not by
    # joining the texts: a raw value may contain any character a separator could be.
    columns = [
        pc.fill_null(rows[c], "").combine_chunks().dictionary_encode() for c in ("id_type", "raw", "scope")
    ]
    codes = np.zeros(rows.num_rows, dtype=np.int64)
    for col in columns:
        codes = codes * len(col.dictionary) + col.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    parts = [col.dictionary.take(col.indices.take(pa.array(first))).to_pylist() for col in columns]
    identifiers: dict[str, tuple[str, str, str]] = {}
    key_of: list[str | None] = []
    for id_type, raw, scope in zip(*parts, strict=True):
        ident = types.identify(id_type, raw, scope) if id_type in types else None
        if ident is None or not types.get(ident.type).links:
            key_of.append(None)
            continue
        identifiers[ident.key] = (ident.type, ident.value, ident.scope)
        key_of.append(ident.key)
    keys = pa.array(key_of, pa.string()).take(pa.array(inverse.reshape(-1)))
    valid = pc.is_valid(keys).to_numpy(zero_copy_only=False)
    record = pc.binary_join_element_wise(rows["workspace_id"], rows["message_id"], "\x1f").combine_chunks()
    seen = pc.cast(rows["seen"], pa.timestamp("us", "UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)

    record_codes = record.dictionary_encode().indices.to_numpy(zero_copy_only=False)[valid]
    kept = rows.filter(pa.array(valid)).select(["message_id", "channel", "source_type", "seen"])
    key_arr = keys.filter(pa.array(valid))
    key_types = np.array([type_index[identifiers[k][0]] for k in key_arr.to_pylist()], dtype=np.int16)
    seen = seen[valid]
    # The star's centre per record: its strongest identifier (ties: any, connectivity is the same).
    strength = priority[key_types]
    order = np.lexsort((-strength, record_codes))
    rec_sorted = record_codes[order]
    first = np.r_[True, rec_sorted[1:] != rec_sorted[:-1]] if len(rec_sorted) else np.zeros(0, bool)
    centre = order[first][np.cumsum(first) - 1]  # for each sorted row, its record's centre row
    is_leaf = ~first
    a_rows, b_rows = centre[is_leaf], order[is_leaf]
    # Records with one identifier still make that identifier a node.
    counts = np.bincount(rec_sorted)
    lone = order[first][counts[rec_sorted[first]] == 1]
    centres = order[first]
    records = pa.table(
        {"message_id": kept["message_id"].take(centres), "key": key_arr.take(pa.array(centres)),
         "timestamp": kept["seen"].take(centres)}
    )  # fmt: skip
    return Links(
        key_arr.take(pa.array(a_rows)),
        key_types[a_rows],
        key_arr.take(pa.array(b_rows)),
        key_types[b_rows],
        seen[b_rows],
        key_arr.take(pa.array(lone)),
        key_types[lone],
        seen[lone],
        identifiers,
        kept.select(["message_id", "channel", "source_type"]).take(pa.array(b_rows)),
        records,
    )
