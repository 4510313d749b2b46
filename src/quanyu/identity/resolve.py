"""Resolve a workspace's people: records → identifier links → stitched graph → profile ids.

Two paths, one result. `rebuild()` recomputes the whole workspace from its events.
`extend()` takes new events only: it loads the raw components (people connected before the
per-type limits apply) their identifiers touch, adds the new links and stitches just those
components again. Stitching is deterministic on a component's links, so both paths give the
same people; `tests/identity/test_incremental.py` checks it on random histories.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.errors import InvalidInput
from quanyu.identity import person_events
from quanyu.identity.changes import Outcome, compare
from quanyu.identity.evidence import (
    EDGE_ROWS,
    NODE_ROWS,
    edges_from_links,
    merge_edges,
    merge_nodes,
    nodes_from_links,
    pair_keys,
)
from quanyu.identity.extract import CANDIDATE_SCHEMA, candidates, links
from quanyu.identity.identifiers import IdentifierTypes
from quanyu.identity.stitch import _components, build_graph, stitch
from quanyu.warehouse.base import Append, Replace, Warehouse
from quanyu.warehouse.events import events_table
from quanyu.warehouse.schema import IDENTITY_NODES

_NODES = IDENTITY_NODES.to_pyarrow()
_MICROS = pa.timestamp("us", "UTC")
# One stitch at a time per process: a rebuild and the pipeline's incremental stitch both
# rewrite nodes, and must not interleave.
STITCH_LOCK = threading.Lock()


def profile_id(workspace_id: str, anchor_key: str) -> str:
    """Deterministic: the same anchor identifier always names the same profile."""
    return "prof_" + hashlib.sha256(f"{workspace_id}/{anchor_key}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class StitchResult:
    workspace_id: str
    events: int
    identifiers: int
    links: int
    profiles: int
    links_dropped: int
    merges: int
    splits: int
    merged_away: int
    touched_profiles: list[str] = field(default_factory=list, repr=False)

    def public(self) -> dict[str, Any]:
        out = self.__dict__.copy()
        out["touched_profiles"] = len(self.touched_profiles)
        return out


@dataclass(frozen=True)
class _Stitched:
    nodes: pa.Table  # IDENTITY_NODES rows
    edges: pa.Table  # EDGE_ROWS
    profiles: int
    rejected: int
    parted_by: dict[str, list[dict[str, Any]]]


def rebuild(warehouse: Warehouse, workspace_id: str, types: IdentifierTypes | None = None) -> StitchResult:
    """Recompute every person of the workspace from its events."""
    types = types or IdentifierTypes()
    events = events_table()
    mine = events.filter(events.workspace_id == workspace_id)
    with STITCH_LOCK:
        n_events = _count(warehouse, mine)
        found = links(warehouse.execute(candidates(mine)), types)
        exclusions = _exclusions(warehouse, workspace_id, None)
        kept = _decided_edges(warehouse, workspace_id)
        done = _stitch(workspace_id, types, merge_nodes(nodes_from_links(found), _endpoint_nodes(kept, warehouse, workspace_id)),
                       merge_edges(edges_from_links(found), kept), exclusions)  # fmt: skip
        old = _stored_nodes(warehouse, workspace_id, None)
        outcome = compare(workspace_id, old, done.nodes, done.edges, done.parted_by)
        warehouse.write([
            Replace("identity_nodes", workspace_id, done.nodes),
            Replace("identity_edges", workspace_id, _edge_table(workspace_id, done.edges)),
            Replace("identity_event_keys", workspace_id, _event_keys(workspace_id, found.records)),
            Append("identity_redirects", outcome.redirects),
            Append("identity_changes", outcome.changes),
            Append("identity_batches", _untaken_batches(warehouse, mine)),
            person_events.refill(warehouse, workspace_id),
        ])  # fmt: skip
    return _result(workspace_id, n_events, done, outcome)


def _untaken_batches(warehouse: Warehouse, events: ibis.Table) -> pa.Table:
    """The workspace's batches the graph has not marked yet: the rebuild has taken them in."""
    done = warehouse.table("identity_batches")
    todo = events.select("batch_id").distinct().anti_join(done, "batch_id")
    ids = warehouse.execute(todo).column(0)
    now = pa.array([datetime.now(UTC)] * len(ids), _MICROS)
    return pa.table({"batch_id": pc.cast(ids, pa.int64()), "at": now})


def extend(
    warehouse: Warehouse, workspace_id: str, events: ibis.Table, types: IdentifierTypes | None = None
) -> StitchResult:
    """Stitch new events (`events`: an expression selecting them) into the stored graph.

    Idempotent: extending with events already stitched changes nothing, so a crash between
    the warehouse append and this step is repaired by simply running it again.
    """
    with STITCH_LOCK:
        return _restitch(warehouse, workspace_id, events, types or IdentifierTypes(), [])


def restitch_keys(
    warehouse: Warehouse, workspace_id: str, keys: Sequence[str], types: IdentifierTypes
) -> StitchResult:
    """Stitch again the components these identifiers are in (after links were added or marked
    wrong). The caller holds STITCH_LOCK."""
    return _restitch(warehouse, workspace_id, None, types, list(keys))


def _restitch(
    warehouse: Warehouse,
    workspace_id: str,
    events: ibis.Table | None,
    types: IdentifierTypes,
    keys: list[str],
) -> StitchResult:
    """Restitch the components that `events`' identifiers (if any) and `keys` are in."""
    if events is None:  # links added or marked wrong: nothing to read from the events
        n_events, rows = 0, CANDIDATE_SCHEMA.to_pyarrow().empty_table()
    else:
        n_events, rows = _count(warehouse, events), warehouse.execute(candidates(events))
    found = links(rows, types)
    new_nodes = nodes_from_links(found)
    touching = pa.chunked_array([new_nodes["key"].combine_chunks(), pa.array(keys, pa.string())])
    old = _stored_nodes(warehouse, workspace_id, touching)
    old_keys = old["key"]
    stored_edges = _stored_edges(warehouse, workspace_id, old_keys)
    nodes = merge_nodes(old.select(new_nodes.column_names).set_column(
        4, "first_seen", pc.cast(old["first_seen"], pa.int64())), new_nodes)  # fmt: skip
    done = _stitch(workspace_id, types, nodes, merge_edges(stored_edges, edges_from_links(found)),
                   _exclusions(warehouse, workspace_id, nodes["key"]))  # fmt: skip
    outcome = compare(workspace_id, old, done.nodes, done.edges, done.parted_by)
    message_ids = found.records["message_id"].to_pylist()
    changed = _changed_nodes(old, done.nodes)
    # Person events: relabel the rows of identifiers that moved to another person, then add
    # the rows of the events taken in (read before the write: the same transaction follows).
    derived: list[Replace] = []
    if (relabel := person_events.moved(warehouse, workspace_id, old, changed)) is not None:
        derived.append(relabel)
    if events is not None:
        derived.append(person_events.added(warehouse, workspace_id, events, found.records, done.nodes))
    warehouse.write([
        Replace("identity_nodes", workspace_id, changed, "key", changed["key"].to_pylist()),
        Replace("identity_edges", workspace_id, _edge_table(workspace_id, done.edges), "a_key",
                old_keys.to_pylist()),
        Replace("identity_event_keys", workspace_id, _event_keys(workspace_id, found.records),
                "message_id", message_ids),
        Append("identity_redirects", outcome.redirects),
        Append("identity_changes", outcome.changes),
        *derived,
    ])  # fmt: skip
    return _result(workspace_id, n_events, done, outcome)


def _changed_nodes(old: pa.Table, new: pa.Table) -> pa.Table:
    """The rows of `new` that are not already stored as they are: only those are rewritten,
    which keeps index maintenance proportional to what a batch really changed."""
    if old.num_rows == 0:
        return new
    compared = ["profile_id", "is_anchor", "first_seen", "component"]
    before = old.select(["key", *compared]).rename_columns(["key", *[f"old_{c}" for c in compared]])
    joined = new.join(before, "key", join_type="left outer")
    same = None
    for c in compared:
        equal = pc.fill_null(pc.equal(joined[c], joined[f"old_{c}"]), False)
        same = equal if same is None else pc.and_(same, equal)
    return joined.filter(pc.invert(same)).select(new.column_names)


def _stitch(
    workspace_id: str, types: IdentifierTypes, nodes: pa.Table, edges: pa.Table, exclusions: pa.Table
) -> _Stitched:
    type_list = list(types)
    names = pa.array([t.name for t in type_list], pa.string())
    a_types = pc.index_in(_type_of(edges["a_key"]), names).to_numpy(zero_copy_only=False)
    b_types = pc.index_in(_type_of(edges["b_key"]), names).to_numpy(zero_copy_only=False)
    n_types = pc.index_in(nodes["id_type"], names).to_numpy(zero_copy_only=False)
    graph = build_graph(
        edges["a_key"], a_types, edges["b_key"], b_types, edges["first_seen"].to_numpy(),
        nodes["key"], n_types, nodes["first_seen"].to_numpy(),
    )  # fmt: skip
    excluded = None
    if exclusions.num_rows:
        wrong = pair_keys(exclusions["a_key"], exclusions["b_key"])
        excluded = pc.is_in(pair_keys(edges["a_key"], edges["b_key"]), wrong).to_numpy(zero_copy_only=False)
    result = stitch(graph, type_list, excluded)
    keys = graph.keys.cast(pa.string())
    keep = np.ones(len(graph.src), dtype=bool) if excluded is None else ~excluded
    raw = _components(len(keys), graph.src[keep], graph.dst[keep])
    component_names = pa.table({"label": raw, "key": keys}).group_by("label").aggregate([("key", "min")])
    names_by_label = np.empty(len(component_names), dtype=object)
    names_by_label[component_names["label"].to_numpy()] = component_names["key_min"].to_numpy(
        zero_copy_only=False
    )
    anchor_keys = keys.take(pa.array(result.anchors)).to_pylist()
    pids = np.array([profile_id(workspace_id, k) for k in anchor_keys], dtype=object)
    is_anchor = np.zeros(len(keys), dtype=bool)
    is_anchor[result.anchors] = True
    info = nodes.take(pc.index_in(keys, nodes["key"]))
    rows = pa.table(
        {
            "workspace_id": pa.array([workspace_id] * len(keys), pa.string()),
            "key": keys,
            "id_type": info["id_type"],
            "value": info["value"],
            "scope": info["scope"],
            "profile_id": pa.array(pids[result.labels] if len(keys) else [], pa.string()),
            "is_anchor": pa.array(is_anchor),
            "first_seen": pa.array(graph.first_seen, pa.int64()).cast(_MICROS),
            "component": pa.array(names_by_label[raw] if len(keys) else [], pa.string()),
        },
        schema=_NODES,
    )
    return _Stitched(rows, edges, len(anchor_keys), len(result.rejected),
                     _parted_by(edges, excluded, result.rejected, exclusions, graph.types, type_list))  # fmt: skip


def _parted_by(
    edges: pa.Table, excluded: np.ndarray | None, rejected: np.ndarray, exclusions: pa.Table,
    node_types: np.ndarray, type_list: list[Any],
) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """Why links were refused, per identifier at either end (to explain splits)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if excluded is not None:
        actors = {
            p: a for p, a in zip(pair_keys(exclusions["a_key"], exclusions["b_key"]).to_pylist(),
                                 exclusions["actor"].to_pylist(), strict=True)
        }  # fmt: skip
        for i in np.flatnonzero(excluded).tolist():
            a, b = edges["a_key"][i].as_py(), edges["b_key"][i].as_py()
            cause = {"why": "unmerge", "a": a, "b": b, "actor": actors.get(f"{min(a, b)}\x1f{max(a, b)}")}
            out.setdefault(a, []).append(cause)
            out.setdefault(b, []).append(cause)
    for i in rejected.tolist():
        a, b = edges["a_key"][i].as_py(), edges["b_key"][i].as_py()
        weaker = min((a, b), key=lambda k: next(t.priority for t in type_list if k.startswith(t.name + ":")))
        cause = {"why": "limit", "a": a, "b": b, "type": weaker.split(":", 1)[0]}
        out.setdefault(a, []).append(cause)
        out.setdefault(b, []).append(cause)
    return out


def _type_of(keys: pa.ChunkedArray | pa.Array) -> pa.Array:
    # A key is "type:value" (or "type:scope:value"); the type never contains a colon.
    return pc.list_element(pc.split_pattern(keys, ":", max_splits=1), 0)


def _result(workspace_id: str, n_events: int, done: _Stitched, outcome: Outcome) -> StitchResult:
    kinds = outcome.changes["kind"].to_pylist()
    return StitchResult(
        workspace_id, n_events, done.nodes.num_rows, done.edges.num_rows, done.profiles, done.rejected,
        kinds.count("merge"), kinds.count("split"), outcome.redirects.num_rows, outcome.touched_profiles,
    )  # fmt: skip


def _count(warehouse: Warehouse, events: ibis.Table) -> int:
    return int(warehouse.execute(events.count().as_table()).column(0)[0].as_py())


def _stored_nodes(warehouse: Warehouse, workspace_id: str, touching: pa.ChunkedArray | None) -> pa.Table:
    """Stored nodes of the workspace; with `touching`, only the components those keys are in."""
    nodes = warehouse.table("identity_nodes")
    mine = nodes.filter(nodes.workspace_id == workspace_id)
    if touching is not None:
        if len(touching) == 0:
            return warehouse.execute(mine.limit(0))
        keys = ibis.memtable(pa.table({"key": touching}))
        hit = mine.semi_join(keys, "key").select("component").distinct()
        mine = mine.semi_join(hit, "component")
    return warehouse.execute(mine)


def _decided_edges(warehouse: Warehouse, workspace_id: str) -> pa.Table:
    """Links that no event shows (probabilistic matches, reviewed merges): a rebuild keeps them."""
    edges = warehouse.table("identity_edges")
    mine = edges.filter(edges.workspace_id == workspace_id, edges.kind != "record")
    rows = warehouse.execute(mine.select(*EDGE_ROWS.names))
    return rows.set_column(2, "first_seen", pc.cast(rows["first_seen"], pa.int64()))


def _endpoint_nodes(edges: pa.Table, warehouse: Warehouse, workspace_id: str) -> pa.Table:
    """Stored nodes at the ends of `edges` (their identity and first sighting)."""
    keys = pa.chunked_array([edges["a_key"], edges["b_key"]], pa.string())
    if len(keys) == 0:
        return NODE_ROWS.empty_table()
    nodes = warehouse.table("identity_nodes")
    hit = nodes.filter(nodes.workspace_id == workspace_id).semi_join(
        ibis.memtable(pa.table({"key": keys})), "key"
    )
    rows = warehouse.execute(hit.select("key", "id_type", "value", "scope", "first_seen"))
    return rows.set_column(4, "first_seen", pc.cast(rows["first_seen"], pa.int64()))


def _stored_edges(warehouse: Warehouse, workspace_id: str, keys: pa.ChunkedArray) -> pa.Table:
    edges = warehouse.table("identity_edges")
    if len(keys) == 0:
        return pa.table({n: pa.array([], t) for n, t in zip(EDGE_ROWS.names, EDGE_ROWS.types, strict=True)})
    mine = edges.filter(edges.workspace_id == workspace_id).semi_join(
        ibis.memtable(pa.table({"a_key": keys})), "a_key"
    )
    rows = warehouse.execute(mine.select(*EDGE_ROWS.names))
    return rows.set_column(2, "first_seen", pc.cast(rows["first_seen"], pa.int64()))


def _exclusions(warehouse: Warehouse, workspace_id: str, keys: pa.ChunkedArray | None) -> pa.Table:
    table = warehouse.table("identity_exclusions")
    mine = table.filter(table.workspace_id == workspace_id)
    if keys is not None:
        wanted = ibis.memtable(pa.table({"k": keys}))
        mine = mine.filter(mine.a_key.isin(wanted.k) | mine.b_key.isin(wanted.k))
    return warehouse.execute(mine.select("a_key", "b_key", "actor"))


def _edge_table(workspace_id: str, edges: pa.Table) -> pa.Table:
    return pa.table(
        {"workspace_id": pa.array([workspace_id] * edges.num_rows, pa.string()),
         **{n: edges[n] for n in EDGE_ROWS.names}}
    ).set_column(3, "first_seen", pc.cast(edges["first_seen"], _MICROS))  # fmt: skip


def _event_keys(workspace_id: str, records: pa.Table) -> pa.Table:
    return pa.table(
        {"workspace_id": pa.array([workspace_id] * records.num_rows, pa.string()),
         "message_id": records["message_id"], "key": records["key"],
         "timestamp": pc.cast(records["timestamp"], _MICROS)}
    )  # fmt: skip


def unmerge(
    warehouse: Warehouse, workspace_id: str, pairs: Sequence[tuple[str, str]], actor: str, reason: str,
    types: IdentifierTypes | None = None,
) -> StitchResult:  # fmt: skip
    """Mark links as wrong and restitch the people they joined."""
    now = datetime.now(UTC)
    rows = pa.table(
        {"workspace_id": [workspace_id] * len(pairs), "a_key": [min(p) for p in pairs],
         "b_key": [max(p) for p in pairs], "at": pa.array([now] * len(pairs), _MICROS),
         "actor": [actor] * len(pairs), "reason": [reason] * len(pairs)}
    )  # fmt: skip
    warehouse.write([Append("identity_exclusions", rows)])
    with STITCH_LOCK:
        return restitch_keys(
            warehouse, workspace_id, sorted({k for p in pairs for k in p}), types or IdentifierTypes()
        )


def detach(
    warehouse: Warehouse, workspace_id: str, pid: str, keys: Sequence[str], actor: str, reason: str,
    types: IdentifierTypes | None = None,
) -> StitchResult:  # fmt: skip
    """Unmerge by identifier: "these identifiers are not this person". Every link between them
    and the rest of the profile is marked wrong, and the person is stitched again."""
    nodes = warehouse.table("identity_nodes")
    members = {
        r["key"]
        for r in warehouse.execute(
            nodes.filter(nodes.workspace_id == workspace_id, nodes.profile_id == pid).select("key")
        ).to_pylist()
    }
    strangers = sorted(set(keys) - members)
    if strangers:
        raise InvalidInput(
            f"这些标识不属于该用户 / not identifiers of {pid}: {', '.join(strangers)}",
            code="invalid_identifier",
        )
    cut, rest = set(keys), members - set(keys)
    edges = warehouse.table("identity_edges")
    mine = edges.filter(edges.workspace_id == workspace_id, edges.a_key.isin(list(members)))
    pairs = [
        (r["a_key"], r["b_key"])
        for r in warehouse.execute(mine.select("a_key", "b_key")).to_pylist()
        if (r["a_key"] in cut and r["b_key"] in rest) or (r["b_key"] in cut and r["a_key"] in rest)
    ]
    if not pairs:
        raise InvalidInput("没有可拆分的关联 / nothing links these identifiers to the rest of the profile",
                           code="nothing_to_unmerge")  # fmt: skip
    return unmerge(warehouse, workspace_id, pairs, actor, reason, types)
