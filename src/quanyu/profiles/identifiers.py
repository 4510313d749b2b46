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


def attributed_events(
    events: ibis.Table, event_keys: ibis.Table, nodes: ibis.Table, workspace_id: str
) -> ibis.Table:
    """The workspace's events of the people in `nodes`, with `profile_id` and the `key` each
    event is attributed to.

    `identity.membership.profile_events` joins the same way but drops the key; keeping it here
    lets one join serve both the profile's events and its identifiers' sources.
    """
    keyed = event_keys.filter(event_keys.workspace_id == workspace_id)
    attributed = keyed.join(nodes.select("key", "profile_id"), "key").select(
        "message_id", "key", "profile_id"
    )
    return events.filter(events.workspace_id == workspace_id).join(attributed, "message_id")


def key_sources(events: ibis.Table, edges: ibis.Table, keys: ibis.Table, workspace_id: str) -> ibis.Table:
    """(key, sources): the distinct source types each of `keys` was seen on, sorted.

    `events` are attributed events (with `key`, so already of the people in scope); edges add
    the source of each identifier's first link.
    """
    edges = edges.filter(edges.workspace_id == workspace_id)
    by_link = [
        edges.select(key=edges[end], source_type=edges.source_type).semi_join(keys, "key")
        for end in ("a_key", "b_key")
    ]
    seen = ibis.union(events.select("key", "source_type"), *by_link, distinct=False)
    found = seen.filter(seen.source_type.notnull()).distinct()
    return found.group_by("key").aggregate(sources=found.source_type.collect().sort())


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
    nodes: ibis.Table,
    edges: ibis.Table,
    events: ibis.Table,
    workspace_id: str,
    reach: Sequence[Reach] = REACH,
) -> ibis.Table:
    """(profile_id, identifiers, identifier_count, reachable_channels) per profile of `nodes`
    (the workspace's nodes in scope); identifiers sorted by type and value."""
    sources = key_sources(events, edges, nodes.select("key"), workspace_id)
    rows = nodes.left_join(sources, "key")
    rows = rows.mutate(sources=ibis.coalesce(rows.sources, ibis.literal([], type=dt.Array(dt.string))))
    rows = rows.mutate(reach=_reached(rows.id_type, rows.sources, reach))
    item = ibis.struct({"type": rows.id_type, "value": rows.value, "scope": rows.scope,
                        "first_seen": rows.first_seen, "sources": rows.sources})  # fmt: skip
    return rows.group_by("profile_id").aggregate(
        identifiers=item.collect().sort(),
        identifier_count=rows.count(),
        reachable_channels=rows.reach.collect(distinct=True).sort(),
    )
