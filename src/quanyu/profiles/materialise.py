"""Materialised profiles: one query computes the rows, one transaction writes them.

`refresh` rebuilds the `profiles` rows of a workspace, or of some profile ids (the people new
events or merges touched). It

1. moves the manual tags of ids that merged away to their survivors (refreshed too);
2. builds one Ibis expression (`profile_rows`): identifiers and reachability, computed traits,
   merged traits, RFM scores against the workspace's distribution, rule tags, and the change
   in rule tags against the tag log;
3. writes, in one warehouse transaction, the profile rows in place of the old ones (ids that
   no longer exist lose their row) and the rule-tag changes to the tag log.

RFM on an incremental refresh: the quintile cut points are recomputed from the stored rows of
every other profile plus the fresh rows, so a refreshed profile scores exactly as a full
refresh would score it if nobody else's data had changed. Other profiles keep the scores
they were given until their own refresh; a periodic full refresh re-scores everyone (and
re-evaluates time-relative rules such as `{"days_ago": 90}`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.profiles import rfm
from quanyu.profiles.compile import check
from quanyu.profiles.computed import EVENT_COLUMNS, Commerce, attach, computed, net_revenue, purchases
from quanyu.profiles.conditions import TagRule, parse_rules
from quanyu.profiles.identifiers import attributed_events, profile_identifiers
from quanyu.profiles.scope import among, owned
from quanyu.profiles.survivors import alive, survivors
from quanyu.profiles.tags import MANUAL, RULE, moved_tags, rule_log_rows, rule_tags, tag_lists, tag_state
from quanyu.profiles.traits import TraitPrecedence, merged_traits
from quanyu.warehouse.base import Append, Replace, Warehouse
from quanyu.warehouse.schema import PROFILES, TS

_PROFILE_ROWS = PROFILES.to_pyarrow()
_NO_TEXTS = ibis.literal([], type=dt.Array(dt.string))


@dataclass(frozen=True)
class RefreshResult:
    workspace_id: str
    profiles: int  # rows written
    removed: int  # ids asked for that no longer exist (merged away); their rows are gone
    tag_changes: int  # rule-tag changes and moved manual tags appended to the tag log
    seconds: float  # in all
    query_seconds: float  # building, compiling and running the profile query
    write_seconds: float  # the transaction replacing the rows

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Tables:
    """The warehouse tables a refresh reads."""

    events: ibis.Table
    event_keys: ibis.Table
    nodes: ibis.Table
    edges: ibis.Table
    profiles: ibis.Table
    tags: ibis.Table

    @classmethod
    def of(cls, warehouse: Warehouse) -> Tables:
        t = warehouse.table
        return cls(t("events"), t("identity_event_keys"), t("identity_nodes"), t("identity_edges"),
                   t("profiles"), t("profile_tags"))  # fmt: skip


def _filled(t: ibis.Table) -> dict[str, ibis.Value]:
    """Defaults for people with no events (or no purchases, traits, channels)."""
    zero, nothing, no = ibis.literal(0, dt.int64), ibis.literal(0.0, dt.float64), ibis.literal(False)
    defaults: dict[str, ibis.Value] = {
        "traits": ibis.literal("{}", type=dt.json),
        "trait_sources": ibis.literal([], type=dt.Array(PROFILES["trait_sources"].value_type)),
        "channels": _NO_TEXTS,
        "channel_activity": ibis.literal([], type=dt.Array(PROFILES["channel_activity"].value_type)),
        "reachable_channels": _NO_TEXTS,
        **dict.fromkeys(("event_count", "order_count", "refund_count"), zero),
        **dict.fromkeys(("revenue", "refund_amount", "net_revenue"), nothing),
        **dict.fromkeys(("in_private_domain", "in_public_domain", "online", "offline"), no),
    }
    return {name: ibis.coalesce(t[name], value) for name, value in defaults.items()}


def profile_rows(
    t: Tables,
    workspace_id: str,
    profile_ids: Sequence[str] | None,
    rules: Sequence[TagRule],
    precedence: TraitPrecedence,
    commerce: Commerce,
    now: datetime,
) -> ibis.Table:
    """Profile rows in the PROFILES schema, plus `rule_added` / `rule_removed` tag lists."""
    # The people in scope are chosen on the nodes, once: every later join inherits the choice.
    nodes = owned(t.nodes, workspace_id, profile_ids)
    keyed = attributed_events(t.events, t.event_keys, nodes, workspace_id).select(*EVENT_COLUMNS, "key")
    events = keyed.drop("key")
    people = profile_identifiers(nodes, t.edges, keyed, workspace_id)
    joined = attach(people, computed(events, commerce), merged_traits(events, precedence))
    fresh = joined.mutate(**_filled(joined))
    scored = rfm.scored(fresh, _population(t.profiles, events, workspace_id, profile_ids, commerce))
    earned = scored.mutate(rule_tags=rule_tags(rules, scored, now))
    manual = tag_lists(tag_state(t.tags, workspace_id, profile_ids, MANUAL)).rename(manual_tags="tags")
    held = tag_lists(tag_state(t.tags, workspace_id, profile_ids, RULE)).rename(held_rule_tags="tags")
    out = attach(earned, manual, held)
    before = ibis.coalesce(out.held_rule_tags, _NO_TEXTS)
    return out.select(
        *[name for name in PROFILES.names if name not in ("workspace_id", "tags", "updated_at")],
        workspace_id=ibis.literal(workspace_id, dt.string),
        tags=out.rule_tags.union(ibis.coalesce(out.manual_tags, _NO_TEXTS)).sort(),
        updated_at=ibis.literal(now, TS),
        rule_added=out.rule_tags.filter(lambda tag: ~before.contains(tag)),
        rule_removed=before.filter(lambda tag: ~out.rule_tags.contains(tag)),
    )


def _population(
    profiles: ibis.Table,
    events: ibis.Table,
    workspace_id: str,
    profile_ids: Sequence[str] | None,
    commerce: Commerce,
) -> ibis.Table:
    """The RFM inputs of the workspace's buyers: fresh for the refreshed profiles, stored for
    everybody else. Built from the purchases alone, so the engine does not compute the wide
    profile rows twice."""
    buys = purchases(events, commerce)
    fresh = buys.select(
        "order_count", "last_purchase_at",
        net_revenue=net_revenue(buys.revenue, buys.refund_amount),
    )  # fmt: skip
    if profile_ids is None:
        return fresh
    stored = profiles.filter(profiles.workspace_id == workspace_id, ~among(profiles.profile_id, profile_ids))
    return ibis.union(stored.select(*fresh.columns), fresh, distinct=False)


def orphaned_rule_tags(t: Tables, workspace_id: str, profile_ids: Sequence[str] | None) -> ibis.Table:
    """(profile_id, tag) rule tags held by ids that no longer exist."""
    nodes = t.nodes.filter(t.nodes.workspace_id == workspace_id).select("profile_id")
    return (
        tag_state(t.tags, workspace_id, profile_ids, RULE)
        .anti_join(nodes, "profile_id")
        .select("profile_id", "tag")
    )


def _changes(workspace_id: str, rows: pa.Table, orphans: pa.Table, at: datetime) -> pa.Table:
    """Rule-tag log rows: what rules started and stopped giving, and what merged-away ids held."""
    parts = []
    for column, op in (("rule_added", "add"), ("rule_removed", "remove")):
        lists = rows.column(column).combine_chunks()
        owners = pc.take(rows.column("profile_id"), pc.list_parent_indices(lists))
        parts.append(rule_log_rows(workspace_id, owners, pc.list_flatten(lists), op, "rule", at))
    gone = orphans.combine_chunks()
    parts.append(
        rule_log_rows(workspace_id, gone.column("profile_id"), gone.column("tag"), "remove", "merge", at)
    )
    return pa.concat_tables(parts)


def refresh(
    warehouse: Warehouse,
    workspace_id: str,
    profile_ids: Sequence[str] | None = None,
    rules: Sequence[TagRule | Mapping[str, Any]] = (),
    *,
    precedence: TraitPrecedence | None = None,
    commerce: Commerce | None = None,
    now: datetime | None = None,
) -> RefreshResult:
    """Re-materialise every profile of the workspace (`profile_ids=None`) or just those ids.

    Pass merged-away ids too: their rows are deleted, their survivors are refreshed with them
    and their manual tags move to the survivors.
    """
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    checked = parse_rules(rules)
    for rule in checked:
        check(rule)  # every field and literal, before anything is written
    t = Tables.of(warehouse)
    ids = None if profile_ids is None else sorted(set(profile_ids))
    heirs = survivors(warehouse, workspace_id, _gone(warehouse, t, workspace_id, ids))
    if ids is not None:
        ids = sorted(set(ids) | set(heirs.values()))
    moves = moved_tags(warehouse, workspace_id, heirs, now)
    if moves.num_rows:
        # Its own transaction: moving is idempotent, and the refresh query must see the result.
        warehouse.write([Append("profile_tags", moves)])
    querying = time.perf_counter()
    expr = profile_rows(
        t, workspace_id, ids, checked, precedence or TraitPrecedence(), commerce or Commerce(), now
    )
    rows = warehouse.execute(expr)
    query_seconds = time.perf_counter() - querying
    orphans = warehouse.execute(orphaned_rule_tags(t, workspace_id, ids))
    changes = _changes(workspace_id, rows, orphans, now)
    profiles = rows.select(_PROFILE_ROWS.names).cast(_PROFILE_ROWS)
    replace = (
        Replace("profiles", workspace_id, profiles)
        if ids is None
        else Replace("profiles", workspace_id, profiles, column="profile_id", values=ids)
    )
    writing = time.perf_counter()
    warehouse.write([replace, Append("profile_tags", changes)])
    done = time.perf_counter()
    removed = 0 if ids is None else len(set(ids) - set(profiles.column("profile_id").to_pylist()))
    return RefreshResult(
        workspace_id, profiles.num_rows, removed, changes.num_rows + moves.num_rows // 2,
        round(done - started, 3), round(query_seconds, 3), round(done - writing, 3),
    )  # fmt: skip


def _gone(warehouse: Warehouse, t: Tables, workspace_id: str, ids: Sequence[str] | None) -> list[str]:
    """Ids without identifiers: of those asked for, or (full refresh) of those holding manual tags."""
    if ids is not None:
        return sorted(set(ids) - alive(warehouse, workspace_id, ids))
    nodes = t.nodes.filter(t.nodes.workspace_id == workspace_id).select("profile_id")
    tagged = tag_state(t.tags, workspace_id, None, MANUAL).select("profile_id").distinct()
    return sorted(warehouse.execute(tagged.anti_join(nodes, "profile_id")).column("profile_id").to_pylist())
