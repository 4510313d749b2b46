"""Tags: manual ones set through the API, rule-based ones computed by refresh.

Every change is a row of the append-only `profile_tags` log (who, when, add or remove), so a
profile's tags are derived: the latest change per (profile, tag, source) that is an `add`.
Adding and removing only append, so they never race a refresh that rewrites profile rows.
Manual tags of a person who merges into another move to the survivor on the next refresh.

Rule tags are compiled into the refresh query: rules with the same tag are OR-ed, and a
profile carries the tag when its group matches (see `profiles.conditions`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa

from quanyu.errors import Conflict, NotFound
from quanyu.profiles.compile import compile_match
from quanyu.profiles.conditions import TagRule, tag_name
from quanyu.profiles.scope import owned
from quanyu.profiles.survivors import alive, survivors
from quanyu.warehouse.base import Append, Warehouse
from quanyu.warehouse.schema import PROFILE_TAGS

MANUAL, RULE = "manual", "rule"
_ROWS = PROFILE_TAGS.to_pyarrow()


def tag_state(
    log: ibis.Table, workspace_id: str, profile_ids: Sequence[str] | None = None, source: str | None = None
) -> ibis.Table:
    """The tags profiles hold now: (profile_id, tag, source, at, actor) of each latest `add`."""
    mine = owned(log, workspace_id, profile_ids)
    if source is not None:
        mine = mine.filter(mine.source == source)
    latest = ibis.row_number().over(
        group_by=[mine.profile_id, mine.tag, mine.source], order_by=[mine.at.desc(), mine["op"].desc()]
    )
    ranked = mine.mutate(rank=latest)
    return ranked.filter(ranked.rank == 0, ranked["op"] == "add").select(
        "profile_id", "tag", "source", "at", "actor"
    )


def tag_lists(state: ibis.Table) -> ibis.Table:
    """(profile_id, tags): each profile's tags, sorted and distinct."""
    return state.group_by("profile_id").aggregate(tags=state.tag.collect(distinct=True).sort())


def log_rows(workspace_id: str, changes: Sequence[tuple[str, str, str, str, str]], at: datetime) -> pa.Table:
    """Log rows from (profile_id, tag, source, op, actor) tuples."""
    cols = list(zip(*changes, strict=True)) if changes else [(), (), (), (), ()]
    return pa.table(
        {
            "workspace_id": pa.array([workspace_id] * len(changes), pa.string()),
            "profile_id": pa.array(cols[0], pa.string()),
            "tag": pa.array(cols[1], pa.string()),
            "source": pa.array(cols[2], pa.string()),
            "op": pa.array(cols[3], pa.string()),
            "at": pa.array([at] * len(changes), pa.timestamp("us", "UTC")),
            "actor": pa.array(cols[4], pa.string()),
        },
        schema=_ROWS,
    )


def rule_log_rows(
    workspace_id: str, owners: pa.Array, tags: pa.Array, op: str, actor: str, at: datetime
) -> pa.Table:
    """Log rows for rule tags, column-wise: `tags[i]` of `owners[i]`."""
    n = len(owners)
    return pa.table(
        [pa.repeat(workspace_id, n), owners.cast(pa.string()), tags.cast(pa.string()), pa.repeat(RULE, n),
         pa.repeat(op, n), pa.repeat(pa.scalar(at, pa.timestamp("us", "UTC")), n), pa.repeat(actor, n)],
        schema=_ROWS,
    )  # fmt: skip


def rule_tags(rules: Sequence[TagRule], table: ibis.Table, now: datetime) -> ibis.ArrayValue:
    """The rule tags each row of `table` (profiles-shaped) earns, sorted."""
    by_tag: dict[str, list[TagRule]] = {}
    for rule in rules:
        by_tag.setdefault(rule.tag, []).append(rule)
    if not by_tag:
        return ibis.literal([], type=dt.Array(dt.string))
    earned = [
        ibis.ifelse(ibis.or_(*[compile_match(r, table, now) for r in group]), tag, ibis.null(dt.string))
        for tag, group in sorted(by_tag.items())
    ]
    return ibis.array(earned).filter(lambda tag: tag.notnull())


# ----------------------------------------------------------------------------------------------
# Manual tags


def profile_tags(warehouse: Warehouse, workspace_id: str, profile_id: str) -> list[dict[str, Any]]:
    """The tags a profile holds now, live from the log: tag, source, since, actor."""
    state = tag_state(warehouse.table("profile_tags"), workspace_id, [profile_id])
    rows = warehouse.execute(state.order_by(["tag", "source"])).to_pylist()
    return [
        {"tag": r["tag"], "source": r["source"], "since": r["at"].isoformat(), "actor": r["actor"]}
        for r in rows
    ]


def _live_profile(warehouse: Warehouse, workspace_id: str, profile_id: str) -> str:
    if alive(warehouse, workspace_id, [profile_id]):
        return profile_id
    moved = survivors(warehouse, workspace_id, [profile_id]).get(profile_id)
    if moved is None:
        raise NotFound(f"用户不存在 / profile {profile_id} not found", code="profile_not_found")
    return moved


def add_tag(
    warehouse: Warehouse, workspace_id: str, profile_id: str, tag: str, actor: str
) -> list[dict[str, Any]]:
    """Tag a profile by hand (a merged-away id tags its survivor); adding a held tag is a no-op.

    Returns the profile's tags. `profiles.tags` follows on the profile's next refresh.
    """
    tag = tag_name(tag)
    pid = _live_profile(warehouse, workspace_id, profile_id)
    held = {(t["tag"], t["source"]) for t in profile_tags(warehouse, workspace_id, pid)}
    if (tag, MANUAL) not in held:
        rows = log_rows(workspace_id, [(pid, tag, MANUAL, "add", actor)], datetime.now(UTC))
        warehouse.write([Append("profile_tags", rows)])
    return profile_tags(warehouse, workspace_id, pid)


def remove_tag(
    warehouse: Warehouse, workspace_id: str, profile_id: str, tag: str, actor: str
) -> list[dict[str, Any]]:
    """Remove a manual tag; NotFound when the profile does not hold it, Conflict when only a
    rule gives it (change the rule instead)."""
    tag = tag_name(tag)
    pid = _live_profile(warehouse, workspace_id, profile_id)
    held = {(t["tag"], t["source"]) for t in profile_tags(warehouse, workspace_id, pid)}
    if (tag, MANUAL) not in held:
        if (tag, RULE) in held:
            raise Conflict(
                f"标签由规则生成，请修改规则 / tag {tag!r} comes from a rule; change the rule instead",
                code="rule_tag",
            )
        raise NotFound(f"该用户没有此标签 / profile has no tag {tag!r}", code="tag_not_found")
    rows = log_rows(workspace_id, [(pid, tag, MANUAL, "remove", actor)], datetime.now(UTC))
    warehouse.write([Append("profile_tags", rows)])
    return profile_tags(warehouse, workspace_id, pid)


def moved_tags(warehouse: Warehouse, workspace_id: str, heirs: Mapping[str, str], at: datetime) -> pa.Table:
    """Log rows moving the manual tags of merged-away profiles to their survivors (`heirs`:
    old id → surviving id)."""
    if not heirs:
        return log_rows(workspace_id, [], at)
    state = tag_state(warehouse.table("profile_tags"), workspace_id, sorted(heirs), MANUAL)
    held = warehouse.execute(state.select("profile_id", "tag")).to_pylist()
    changes: list[tuple[str, str, str, str, str]] = []
    for row in held:
        old, tag = row["profile_id"], row["tag"]
        actor = f"merge:{old}"
        changes += [(old, tag, MANUAL, "remove", actor), (heirs[old], tag, MANUAL, "add", actor)]
    return log_rows(workspace_id, changes, at)
