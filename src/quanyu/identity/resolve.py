"""Resolve a workspace's people: events → identifier links → stitched graph → profile ids.

The full rebuild path: every event of the workspace is read (columnar), its identifiers
normalised and linked, the graph stitched, and the workspace's `identity_nodes` rewritten in
one warehouse transaction together with redirects for profile ids that merged away.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ibis
import numpy as np
import pyarrow as pa

from quanyu.errors import InvalidInput, NotFound
from quanyu.identity.extract import candidates, links
from quanyu.identity.identifiers import IdentifierTypes
from quanyu.identity.stitch import build_graph, stitch
from quanyu.warehouse.base import Warehouse
from quanyu.warehouse.events import events_table
from quanyu.warehouse.schema import IDENTITY_NODES, IDENTITY_REDIRECTS

_NODES = IDENTITY_NODES.to_pyarrow()
_REDIRECTS = IDENTITY_REDIRECTS.to_pyarrow()


def profile_id(workspace_id: str, anchor_key: str) -> str:
    """Deterministic: the same anchor identifier always names the same profile."""
    return "prof_" + hashlib.sha256(f"{workspace_id}/{anchor_key}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class RebuildResult:
    workspace_id: str
    events: int
    identifiers: int
    links: int
    profiles: int
    links_dropped: int
    merged_away: int

    def public(self) -> dict[str, Any]:
        return self.__dict__.copy()


def rebuild(warehouse: Warehouse, workspace_id: str, types: IdentifierTypes | None = None) -> RebuildResult:
    types = types or IdentifierTypes()
    type_list = list(types)
    events = events_table()
    mine = events.filter(events.workspace_id == workspace_id)
    n_events = int(warehouse.execute(mine.count().as_table()).column(0)[0].as_py())
    rows = warehouse.execute(candidates(mine))
    found = links(rows, types)
    graph = build_graph(
        found.a_keys, found.a_types, found.b_keys, found.b_types, found.seen,
        found.single_keys, found.single_types, found.single_seen,
    )  # fmt: skip
    result = stitch(graph, type_list)
    keys = graph.keys.to_pylist()
    anchor_keys = [keys[node] for node in result.anchors.tolist()]
    profile_ids = np.array([profile_id(workspace_id, k) for k in anchor_keys], dtype=object)
    node_profiles = profile_ids[result.labels] if len(keys) else np.empty(0, dtype=object)
    is_anchor = np.zeros(len(keys), dtype=bool)
    is_anchor[result.anchors] = True
    parts = [found.identifiers[k] for k in keys]
    nodes = pa.table(
        {
            "workspace_id": pa.array([workspace_id] * len(keys), pa.string()),
            "key": graph.keys.cast(pa.string()),
            "id_type": pa.array([p[0] for p in parts], pa.string()),
            "value": pa.array([p[1] for p in parts], pa.string()),
            "scope": pa.array([p[2] for p in parts], pa.string()),
            "profile_id": pa.array(node_profiles, pa.string()),
            "is_anchor": pa.array(is_anchor),
            "first_seen": pa.array(graph.first_seen, pa.int64()).cast(pa.timestamp("us", "UTC")),
        },
        schema=_NODES,
    )
    redirects = _redirects(warehouse, workspace_id, dict(zip(keys, node_profiles.tolist(), strict=True)))
    warehouse.replace_workspace_rows("identity_nodes", workspace_id, nodes, {"identity_redirects": redirects})
    return RebuildResult(
        workspace_id, n_events, len(keys), len(graph.src), len(anchor_keys), len(result.rejected),
        redirects.num_rows,
    )  # fmt: skip


def _redirects(warehouse: Warehouse, workspace_id: str, new: dict[str, str]) -> pa.Table:
    """Old profile ids that no longer exist, pointed at the profile most of their identifiers
    (their anchor first) now belong to."""
    nodes = warehouse.table("identity_nodes")
    old = warehouse.execute(
        nodes.filter(nodes.workspace_id == workspace_id).select("key", "profile_id", "is_anchor")
    ).to_pylist()
    alive = set(new.values())
    votes: dict[str, Counter[str]] = {}
    anchors: dict[str, str] = {}
    for row in old:
        if row["profile_id"] in alive or row["key"] not in new:
            continue
        votes.setdefault(row["profile_id"], Counter())[new[row["key"]]] += 1
        if row["is_anchor"]:
            anchors[row["profile_id"]] = new[row["key"]]
    now = datetime.now(UTC)
    pairs = [(old_id, anchors.get(old_id) or c.most_common(1)[0][0]) for old_id, c in sorted(votes.items())]
    return pa.table(
        {
            "workspace_id": pa.array([workspace_id] * len(pairs), pa.string()),
            "old_profile_id": pa.array([p[0] for p in pairs], pa.string()),
            "profile_id": pa.array([p[1] for p in pairs], pa.string()),
            "at": pa.array([now] * len(pairs), pa.timestamp("us", "UTC")),
        },
        schema=_REDIRECTS,
    )


def lookup(
    warehouse: Warehouse, workspace_id: str, id_type: str, value: str, scope: str = "",
    types: IdentifierTypes | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The profile an identifier belongs to; NotFound (404) when nobody has it."""
    types = types or IdentifierTypes()
    ident = types.identify(id_type, value, scope)
    if ident is None:
        raise InvalidInput(
            f"无效的标识值 / not a valid {id_type} value: {value!r}", code="invalid_identifier"
        )
    nodes = warehouse.table("identity_nodes")
    hit = warehouse.execute(
        nodes.filter(nodes.workspace_id == workspace_id, nodes.key == ident.key).select("profile_id").limit(1)
    ).to_pylist()
    if not hit:
        raise NotFound(f"未找到该标识的用户 / no profile has {ident.key}", code="profile_not_found")
    return profile(warehouse, workspace_id, hit[0]["profile_id"])


def profile(warehouse: Warehouse, workspace_id: str, pid: str) -> dict[str, Any]:
    """A profile with its identifiers; an id that merged away answers with its survivor."""
    rows, resolved = _identifiers(warehouse, workspace_id, pid), pid
    if not rows:
        resolved = _follow(warehouse, workspace_id, pid)
        rows = _identifiers(warehouse, workspace_id, resolved) if resolved != pid else []
    if not rows:
        raise NotFound(f"用户不存在 / profile {pid} not found", code="profile_not_found")
    return {
        "profile_id": resolved,
        "redirected_from": pid if resolved != pid else None,
        "first_seen": rows[0]["first_seen"].isoformat(),
        "identifiers": [
            {"type": r["id_type"], "value": r["value"], **({"scope": r["scope"]} if r["scope"] else {}),
             "first_seen": r["first_seen"].isoformat()}
            for r in rows
        ],
    }  # fmt: skip


def _identifiers(warehouse: Warehouse, workspace_id: str, pid: str) -> list[dict[str, Any]]:
    nodes = warehouse.table("identity_nodes")
    return warehouse.execute(
        nodes.filter(nodes.workspace_id == workspace_id, nodes.profile_id == pid)
        .select("id_type", "value", "scope", "first_seen")
        .order_by(["first_seen", "id_type", "value"])
    ).to_pylist()


def _follow(warehouse: Warehouse, workspace_id: str, pid: str) -> str:
    redirects = warehouse.table("identity_redirects")
    seen = {pid}
    for _ in range(32):  # chains are short; the bound only guards against a cycle
        hit = warehouse.execute(
            redirects.filter(redirects.workspace_id == workspace_id, redirects.old_profile_id == pid)
            .order_by(ibis.desc("at"))
            .select("profile_id")
            .limit(1)
        ).to_pylist()
        if not hit or hit[0]["profile_id"] in seen:
            return pid
        pid = hit[0]["profile_id"]
        seen.add(pid)
    return pid
