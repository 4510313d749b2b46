"""Where a profile id lives now: itself while it has identifiers, else where merges took it.

Merges leave `identity_redirects` rows (old → new). Following them in bulk, a hop per query,
gives each merged-away id its surviving profile; an id that is alive again (after a split)
stays itself, as `identity.resolve.profile` does for one id.
"""

from __future__ import annotations

from collections.abc import Collection

import ibis

from quanyu.profiles.scope import among
from quanyu.warehouse.base import Warehouse

_MAX_HOPS = 32  # chains are short; the bound only guards against a cycle


def alive(warehouse: Warehouse, workspace_id: str, ids: Collection[str]) -> set[str]:
    """Those of `ids` that hold at least one identifier."""
    if not ids:
        return set()
    nodes = warehouse.table("identity_nodes")
    found = warehouse.execute(
        nodes.filter(nodes.workspace_id == workspace_id, among(nodes.profile_id, sorted(ids)))
        .select("profile_id")
        .distinct()
    )
    return set(found.column("profile_id").to_pylist())


def survivors(warehouse: Warehouse, workspace_id: str, ids: Collection[str]) -> dict[str, str]:
    """For each of `ids` that is not alive, the live profile it merged into (ids whose chain
    ends nowhere are left out)."""
    redirects = warehouse.table("identity_redirects")
    current = {i: i for i in set(ids) - alive(warehouse, workspace_id, ids)}
    found: dict[str, str] = {}
    for _ in range(_MAX_HOPS):
        if not current:
            break
        frontier = sorted(set(current.values()))
        latest = ibis.row_number().over(group_by=redirects.old_profile_id, order_by=ibis.desc(redirects.at))
        hops = warehouse.execute(
            redirects.filter(
                redirects.workspace_id == workspace_id, among(redirects.old_profile_id, frontier)
            )
            .mutate(rank=latest)
            .filter(ibis._.rank == 0)
            .select("old_profile_id", "profile_id")
        ).to_pylist()
        step = {h["old_profile_id"]: h["profile_id"] for h in hops}
        living = alive(warehouse, workspace_id, set(step.values()))
        following: dict[str, str] = {}
        for origin, at in current.items():
            nxt = step.get(at)
            if nxt is None or nxt == origin:
                continue
            if nxt in living:
                found[origin] = nxt
            else:
                following[origin] = nxt
        current = following
    return found
