"""Previewing a definition before saving it: how many people, a sample, who they are by channel,
first-touch source and domain (公域/私域), and the SQL it compiles to.

Two queries, each under the segment time limit: the breakdown counts (one group-by over every
combination of the dimensions, folded per dimension here) and the sample.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import ibis

from quanyu.errors import InvalidInput
from quanyu.segments.compiler import members
from quanyu.segments.evaluation import DEFAULT_TIMEOUT, run
from quanyu.segments.membership import key_fields
from quanyu.segments.saved import SavedSegments
from quanyu.warehouse.base import Warehouse

MAX_SAMPLE = 100
DIMENSIONS = ("preferred_channel", "first_touch_channel", "first_touch_source")


def preview(
    warehouse: Warehouse,
    store: SavedSegments,
    workspace_id: str,
    data: Mapping[str, Any],
    *,
    sample: int = 20,
    now: datetime | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    if not 0 <= sample <= MAX_SAMPLE:
        raise InvalidInput(
            f"sample 需在 0–{MAX_SAMPLE} / sample must be 0–{MAX_SAMPLE}", code="invalid_sample"
        )
    started = time.perf_counter()
    definition = store.validate(workspace_id, dict(data))
    ctx = store.context(warehouse, workspace_id, now)
    rows = members(definition, ctx)
    # One evaluation of the segment: counts per combination of the dimensions, each with its
    # lowest profile ids, from which the sample is the lowest overall. The sample's fields then
    # come from a point lookup of those few ids.
    by_combo = rows.group_by([*DIMENSIONS, "in_private_domain", "in_public_domain"]).aggregate(
        n=rows.count(), ids=rows.profile_id.collect(order_by=rows.profile_id)[: max(sample, 1)]
    )
    combos = run(warehouse, by_combo, timeout).to_pylist()
    ids = sorted(pid for c in combos for pid in c["ids"] or [])[:sample]
    people = None
    if ids:
        profiles = ctx.profiles
        chosen = profiles.filter(profiles.workspace_id == ctx.workspace_id, profiles.profile_id.isin(ids))
        people = run(
            warehouse, chosen.order_by("profile_id").select("profile_id", **key_fields(chosen)), timeout
        )
    return {
        "count": sum(c["n"] for c in combos),
        "sample": [_plain(r) for r in people.to_pylist()] if people is not None else [],
        "breakdown": {
            **{d: _fold(combos, lambda c, d=d: c[d]) for d in DIMENSIONS},
            "domain": _fold(combos, _domain),
        },
        "sql": str(ibis.to_sql(rows.select("profile_id"), dialect="duckdb")),  # = compile_segment
        "evaluated_at": ctx.now.isoformat(),
        "elapsed_ms": int((time.perf_counter() - started) * 1000),
    }


def _fold(combos: list[dict[str, Any]], key: Any) -> list[dict[str, Any]]:
    """Counts per value of one dimension, largest first."""
    counts: Counter[Any] = Counter()
    for combo in combos:
        counts[key(combo)] += combo["n"]
    return [{"value": v, "count": n} for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))]


def _domain(combo: dict[str, Any]) -> str:
    """私域 private only, 公域 public only, both, or neither."""
    private, public = bool(combo["in_private_domain"]), bool(combo["in_public_domain"])
    return {(True, True): "both", (True, False): "private_only", (False, True): "public_only"}.get(
        (private, public), "neither"
    )


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
