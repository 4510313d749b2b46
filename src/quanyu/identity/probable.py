"""Probabilistic matching in the identity graph: people without a shared identifier (an event
sign-up with a name and a phone, a POS guest, a marketplace buyer known only by a masked phone
and an address) matched on their traits with Splink (`quanyu.identity.matching`).

Pairs at or above the threshold become `match` links between the two people's anchors and the
people are stitched again, under the same per-type limits as any link (two logged-in accounts
are never merged by a fuzzy match). Pairs between the review threshold and the threshold wait
in the review queue with their match weight; a person merges or rejects them there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ibis
import pyarrow as pa

from quanyu.errors import Conflict, InvalidInput, NotFound
from quanyu.identity.identifiers import IdentifierTypes
from quanyu.identity.matching import match
from quanyu.identity.resolve import STITCH_LOCK, StitchResult, restitch_keys
from quanyu.warehouse.base import Append, Replace, Warehouse
from quanyu.warehouse.functions import json_text
from quanyu.warehouse.schema import IDENTITY_EDGES, IDENTITY_REVIEWS

_EDGES = IDENTITY_EDGES.to_pyarrow()
_REVIEWS = IDENTITY_REVIEWS.to_pyarrow()
DEFAULT_THRESHOLD = 0.95
DEFAULT_REVIEW_THRESHOLD = 0.6

# Person-record role → where it is read from the profile's merged traits.
_TRAIT_PATHS: dict[str, tuple[str, ...]] = {
    "full_name": ("$.name", "$.full_name", "$.receiver_name"),
    "first_name": ("$.first_name", "$.firstName"),
    "last_name": ("$.last_name", "$.lastName"),
    "birth_date": ("$.birthday", "$.birth_date", "$.birthdate"),
    "email": ("$.email",),
    "address": ("$.address", "$.street"),
    "city": ("$.city",),
    "district": ("$.district",),
    "postcode": ("$.postcode", "$.postal_code", "$.zip"),
    "region": ("$.province", "$.region", "$.state"),
}


def person_records(profiles: ibis.Table, workspace_id: str) -> ibis.Table:
    """One record per materialised profile: its traits in matching roles; the phone is the
    full one when known, else the platform-masked one (partial evidence)."""
    mine = profiles.filter(profiles.workspace_id == workspace_id)
    traits = mine.traits
    columns: dict[str, ibis.Value] = {
        role: ibis.coalesce(*[json_text(traits, path) for path in paths])
        for role, paths in _TRAIT_PATHS.items()
    }
    masked = mine.identifiers.filter(lambda i: i.type == "phone_masked").map(lambda i: i.value)[0]
    columns["phone"] = ibis.coalesce(json_text(traits, "$.phone"), masked)
    return mine.select(record_id=mine.profile_id, **columns)


@dataclass(frozen=True)
class MatchRun:
    records: int
    merged_pairs: int
    queued_for_review: int
    stitch: StitchResult | None

    def public(self) -> dict[str, Any]:
        return {"records": self.records, "merged_pairs": self.merged_pairs,
                "queued_for_review": self.queued_for_review,
                "stitch": self.stitch.public() if self.stitch else None}  # fmt: skip


def run_matching(
    warehouse: Warehouse, workspace_id: str, threshold: float = DEFAULT_THRESHOLD,
    review_threshold: float = DEFAULT_REVIEW_THRESHOLD, types: IdentifierTypes | None = None,
    *, auto_merge: bool = True,
) -> MatchRun:  # fmt: skip
    """Match the workspace's people. With `auto_merge=False` nothing merges on its own: every
    pair from `review_threshold` up waits for a person (a cautious first run on new data)."""
    records = warehouse.execute(person_records(warehouse.table("profiles"), workspace_id))
    roles = {
        c: c for c in records.column_names if c != "record_id" and records[c].null_count < records.num_rows
    }
    if records.num_rows < 2 or not roles:
        return MatchRun(records.num_rows, 0, 0, None)
    try:
        found = match(records, roles, threshold, review_threshold, id_column="record_id")
    except InvalidInput as exc:
        if exc.code == "no_matching_columns":
            return MatchRun(records.num_rows, 0, 0, None)
        raise
    anchors = _anchors(warehouse, workspace_id)
    now = datetime.now(UTC)
    merging, queued = found.pairs, found.review
    if not auto_merge:
        merging, queued = found.pairs.slice(0, 0), pa.concat_tables([found.pairs, found.review])
    edges = _match_edges(workspace_id, merging, anchors, now, "match")
    waiting = _new_reviews(warehouse, workspace_id, queued, anchors, now)
    warehouse.write([Append("identity_edges", edges), Append("identity_reviews", waiting)])
    stitched = None
    if edges.num_rows:
        keys = sorted(set(edges["a_key"].to_pylist()) | set(edges["b_key"].to_pylist()))
        with STITCH_LOCK:
            stitched = restitch_keys(warehouse, workspace_id, keys, types or IdentifierTypes())
    return MatchRun(records.num_rows, edges.num_rows, waiting.num_rows, stitched)


def reviews(
    warehouse: Warehouse, workspace_id: str, status: str = "pending", limit: int = 100
) -> dict[str, Any]:
    if status not in ("pending", "merged", "rejected", "all"):
        raise InvalidInput("status 只能是 pending/merged/rejected/all", code="invalid_status")
    queue = warehouse.table("identity_reviews")
    mine = queue.filter(queue.workspace_id == workspace_id)
    if status != "all":
        mine = mine.filter(mine.status == status)
    rows = warehouse.execute(
        mine.order_by([ibis.desc("match_probability"), "review_id"]).limit(limit)
    ).to_pylist()
    return {"items": [_review_item(r) for r in rows]}


def decide(
    warehouse: Warehouse, workspace_id: str, review_id: str, decision: str, actor: str,
    types: IdentifierTypes | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Merge or reject a queued pair. Merging adds a `review` link and stitches again."""
    if decision not in ("merge", "reject"):
        raise InvalidInput(
            "decision 只能是 merge 或 reject / decision must be merge or reject", code="invalid_decision"
        )
    queue = warehouse.table("identity_reviews")
    rows = warehouse.execute(
        queue.filter(queue.workspace_id == workspace_id, queue.review_id == review_id)
    ).to_pylist()
    if not rows:
        raise NotFound(f"待审核匹配不存在 / review {review_id} not found", code="review_not_found")
    row = rows[0]
    if row["status"] != "pending":
        raise Conflict(f"已处理 / review {review_id} is already {row['status']}", code="review_decided")
    now = datetime.now(UTC)
    row.update(status="merged" if decision == "merge" else "rejected", decided_at=now, actor=actor)
    ops: list[Append | Replace] = [
        Replace("identity_reviews", workspace_id, pa.Table.from_pylist([row], schema=_REVIEWS), "review_id", [review_id])
    ]  # fmt: skip
    if decision == "merge":
        pair = pa.table({"left_id": [row["a_profile_id"]], "right_id": [row["b_profile_id"]],
                         "match_probability": [row["match_probability"]]})  # fmt: skip
        ops.append(Append("identity_edges", _match_edges(
            workspace_id, pair, {row["a_profile_id"]: row["a_key"], row["b_profile_id"]: row["b_key"]}, now, "review"
        )))  # fmt: skip
    warehouse.write(ops)
    result = None
    if decision == "merge":
        with STITCH_LOCK:
            result = restitch_keys(
                warehouse, workspace_id, [row["a_key"], row["b_key"]], types or IdentifierTypes()
            )
    return {"review": _review_item(row), "stitch": result.public() if result else None,
            "profiles": result.touched_profiles if result else []}  # fmt: skip


def _anchors(warehouse: Warehouse, workspace_id: str) -> dict[str, str]:
    nodes = warehouse.table("identity_nodes")
    rows = warehouse.execute(
        nodes.filter(nodes.workspace_id == workspace_id, nodes.is_anchor).select("profile_id", "key")
    )
    return dict(zip(rows["profile_id"].to_pylist(), rows["key"].to_pylist(), strict=True))


def _match_edges(
    workspace_id: str, pairs: pa.Table, anchors: dict[str, str], now: datetime, kind: str
) -> pa.Table:
    rows = []
    for left, right, probability in zip(
        pairs["left_id"].to_pylist(),
        pairs["right_id"].to_pylist(),
        pairs["match_probability"].to_pylist(),
        strict=True,
    ):
        a, b = anchors.get(left), anchors.get(right)
        if a is None or b is None or a == b:
            continue
        rows.append({"workspace_id": workspace_id, "a_key": min(a, b), "b_key": max(a, b), "first_seen": now,
                     "message_id": f"{kind}:{probability:.4f}", "channel": "probabilistic",
                     "source_type": "splink", "kind": kind})  # fmt: skip
    return pa.Table.from_pylist(rows, schema=_EDGES)


def _new_reviews(
    warehouse: Warehouse, workspace_id: str, pairs: pa.Table, anchors: dict[str, str], now: datetime
) -> pa.Table:
    queue = warehouse.table("identity_reviews")
    known = set(warehouse.execute(queue.filter(queue.workspace_id == workspace_id).select("review_id"))
                .column(0).to_pylist())  # fmt: skip
    rows = []
    for r in pairs.to_pylist():
        a, b = anchors.get(r["left_id"]), anchors.get(r["right_id"])
        if a is None or b is None:
            continue
        review_id = (
            "rev_" + hashlib.sha256(f"{workspace_id}/{min(a, b)}/{max(a, b)}".encode()).hexdigest()[:20]
        )
        if review_id in known:
            continue  # queued before (and perhaps rejected): never asked twice
        known.add(review_id)
        rows.append({"workspace_id": workspace_id, "review_id": review_id, "a_profile_id": r["left_id"],
                     "b_profile_id": r["right_id"], "a_key": a, "b_key": b,
                     "match_probability": float(r["match_probability"]), "match_weight": float(r["match_weight"]),
                     "status": "pending", "created_at": now, "decided_at": None, "actor": None})  # fmt: skip
    return pa.Table.from_pylist(rows, schema=_REVIEWS)


def _review_item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "review_id": row["review_id"], "status": row["status"],
        "profiles": [row["a_profile_id"], row["b_profile_id"]], "identifiers": [row["a_key"], row["b_key"]],
        "match_probability": round(row["match_probability"], 4), "match_weight": round(row["match_weight"], 3),
        "created_at": row["created_at"].isoformat(),
        "decided_at": row["decided_at"].isoformat() if row["decided_at"] else None, "actor": row["actor"],
    }  # fmt: skip
