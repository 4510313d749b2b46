"""A profile's identifiers with the sources they were seen on, and the channels they reach.

Sources are the evidence the identity graph keeps: the source type of every event attributed
to the identifier (`identity_event_keys`) and of the first record linking it to another one
(`identity_edges`). Reachability is declared per identifier type: a phone makes a person
reachable by SMS, an official-account openid on the official account, an app device id by
push (only a device seen in the app). It says an address exists, not that the person consented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt

from quanyu.profiles.scope import owned
from quanyu.warehouse.schema import TS


@dataclass(frozen=True)
class Reach:
    """Holding an identifier of `id_type` (seen on one of `source_types`, if given) makes a
    person reachable on `channel`."""

    id_type: str
    channel: str
    source_types: tuple[str, ...] = ()


REACH: tuple[Reach, ...] = (
    Reach("phone", "sms"),
    Reach("email", "email"),
    Reach("wechat_openid", "wechat_oa"),
    Reach("mini_program_openid", "mini_program"),
    Reach("wecom_external_userid", "wecom"),
    Reach("device_id", "push", ("app",)),
)

IDENTIFIER = dt.Struct({"type": dt.string, "value": dt.string, "scope": dt.string, "first_seen": TS,
                        "sources": dt.Array(dt.string)})  # fmt: skip


@dataclass(frozen=True)
class IdentityTables:
    nodes: ibis.Table
    edges: ibis.Table
    event_keys: ibis.Table
    events: ibis.Table


def key_sources(t: IdentityTables, keys: ibis.Table, workspace_id: str) -> ibis.Table:
    """(key, sources): the distinct source types each of `keys` was seen on, sorted."""
    ek = t.event_keys.filter(t.event_keys.workspace_id == workspace_id)
    ev = t.events.filter(t.events.workspace_id == workspace_id).select("message_id", "source_type")
    by_event = ek.semi_join(keys, "key").join(ev, "message_id").select("key", "source_type")
    edges = t.edges.filter(t.edges.workspace_id == workspace_id)
    by_link = [
        edges.select(key=edges[end], source_type=edges.source_type).semi_join(keys, "key")
        for end in ("a_key", "b_key")
    ]
    found = ibis.union(by_event, *by_link, distinct=True).filter(ibis._.source_type.notnull())
    return found.group_by("key").aggregate(sources=found.source_type.collect(order_by=found.source_type))


def _reached(id_type: ibis.StringValue, sources: ibis.ArrayValue, reach: Sequence[Reach]) -> ibis.StringValue:
    cases = []
    for r in reach:
        test = id_type == r.id_type
        if r.source_types:
            wanted = ibis.literal(list(r.source_types), type=dt.Array(dt.string))
            test = test & (sources.intersect(wanted).length() > 0).fill_null(False)
        cases.append((test, r.channel))
    return ibis.cases(*cases, else_=ibis.null(dt.string))


def profile_identifiers(
    t: IdentityTables,
    workspace_id: str,
    profile_ids: Sequence[str] | None = None,
    reach: Sequence[Reach] = REACH,
) -> ibis.Table:
    """(profile_id, identifiers, identifier_count, reachable_channels) per profile."""
    nodes = owned(t.nodes, workspace_id, profile_ids)
    sources = key_sources(t, nodes.select("key"), workspace_id)
    rows = nodes.left_join(sources, "key")
    rows = rows.mutate(
        sources=ibis.coalesce(rows.sources, ibis.literal([], type=dt.Array(dt.string))),
    )
    rows = rows.mutate(reach=_reached(rows.id_type, rows.sources, reach))
    item = ibis.struct({"type": rows.id_type, "value": rows.value, "scope": rows.scope,
                        "first_seen": rows.first_seen, "sources": rows.sources})  # fmt: skip
    return rows.group_by("profile_id").aggregate(
        identifiers=item.collect(order_by=[rows.first_seen, rows.id_type, rows.value]),
        identifier_count=rows.count(),
        reachable_channels=rows.reach.collect(distinct=True, order_by=rows.reach),
    )
