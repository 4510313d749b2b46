"""Merges and splits, explained: the append-only log a stitch leaves behind.

After every stitch the old and new owners of the recomputed identifiers are compared. A new
profile holding identifiers of two or more old profiles is a *merge*; an old profile whose
identifiers now live in two or more profiles is a *split*. Each record names its evidence: the
links (and the records they came from) that joined the people, or the operator's unmerge / the
per-type limit that parted them. Old profile ids that no longer exist redirect to the profile
holding most of their identifiers (their anchor first).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from quanyu.warehouse.schema import IDENTITY_CHANGES, IDENTITY_REDIRECTS

_CHANGES = IDENTITY_CHANGES.to_pyarrow()
_REDIRECTS = IDENTITY_REDIRECTS.to_pyarrow()
_EVIDENCE_SHOWN = 3


@dataclass(frozen=True)
class Outcome:
    """What a stitch did to the people it recomputed."""

    changes: pa.Table
    redirects: pa.Table
    touched_profiles: list[str]  # new, changed and vanished profile ids (for refreshing profiles)


def compare(
    workspace_id: str,
    old: pa.Table,
    new: pa.Table,
    edges: pa.Table,
    parted_by: dict[str, list[dict[str, Any]]],
    now: datetime | None = None,
) -> Outcome:
    """`old`/`new`: key, profile_id (and is_anchor in old). `edges`: the recomputed links.
    `parted_by`: key → why links at that identifier were refused (unmerges, limits)."""
    now = now or datetime.now(UTC)
    before = dict(zip(old["key"].to_pylist(), old["profile_id"].to_pylist(), strict=True))
    after = dict(zip(new["key"].to_pylist(), new["profile_id"].to_pylist(), strict=True))
    old_anchor = {
        pid: key
        for key, pid, anchor in zip(
            old["key"].to_pylist(), old["profile_id"].to_pylist(), old["is_anchor"].to_pylist(), strict=True
        )
        if anchor
    }
    sources: dict[str, set[str]] = defaultdict(set)  # new profile → old profiles in it
    targets: dict[str, Counter[str]] = defaultdict(Counter)  # old profile → new profiles
    for key, pid in after.items():
        if key in before:
            sources[pid].add(before[key])
            targets[before[key]][pid] += 1
    rows: list[dict[str, Any]] = []
    merged = {p for p, olds in sources.items() if len(olds) > 1}
    bridges = _bridges(merged, before, after, edges) if merged else {}
    for pid in sorted(merged):
        rows.append(_merge(workspace_id, pid, sorted(sources[pid] - {pid}), bridges.get(pid, []), now))
    split = {o for o, news in targets.items() if len(news) > 1}
    members: dict[str, list[str]] = defaultdict(list)
    for key, pid in before.items():
        if pid in split:
            members[pid].append(key)
    for old_pid in sorted(split):
        rows.append(_split(workspace_id, old_pid, targets[old_pid], members[old_pid], parted_by, now))
    redirects = []
    alive = set(after.values())
    for old_pid, news in sorted(targets.items()):
        if old_pid not in alive:
            anchor = old_anchor.get(old_pid)
            survivor = after.get(anchor) if anchor else None
            redirects.append((old_pid, survivor or news.most_common(1)[0][0]))
    touched = sorted(set(after.values()) | set(targets))
    return Outcome(_change_table(rows), _redirect_table(workspace_id, redirects, now), touched)


def _bridges(
    merged: set[str], before: dict[str, str], after: dict[str, str], edges: pa.Table
) -> dict[str, list[dict[str, Any]]]:
    """Per merged profile, the links inside it whose ends belonged to different people (or to
    nobody yet), newest first: what joined the people."""
    out: dict[str, list[int]] = defaultdict(list)
    a_keys, b_keys = edges["a_key"].to_pylist(), edges["b_key"].to_pylist()
    for i, (a, b) in enumerate(zip(a_keys, b_keys, strict=True)):
        pid = after.get(a)
        if pid in merged and after.get(b) == pid and before.get(a) != before.get(b):
            out[pid].append(i)
    everything = [i for idx in out.values() for i in idx]
    found = edges.take(pa.array(everything, pa.int64())).to_pylist() if everything else []
    rows: dict[str, list[dict[str, Any]]] = {}
    start = 0
    for pid, idx in out.items():
        mine = sorted(
            found[start : start + len(idx)], key=lambda r: (-r["first_seen"], r["a_key"], r["b_key"])
        )
        rows[pid] = mine[:_EVIDENCE_SHOWN]
        start += len(idx)
    return rows


def _merge(
    workspace_id: str, pid: str, others: list[str], bridges: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    shown = [_evidence(r) for r in bridges]
    text = "; ".join(
        f"{e['a']} 与 {e['b']} 出现在同一条{e['channel'] or ''}记录 / seen together on a "
        f"{e['channel'] or 'unknown'} record ({e['message_id']}, {e['seen'][:10]})"
        for e in shown
    )
    reason = {"links": shown, "merged": [pid, *others]}
    return _row(workspace_id, "merge", pid, others, reason, f"合并 / merged: {text}", now)


def _split(
    workspace_id: str, old_pid: str, news: Counter[str], keys: list[str],
    parted_by: dict[str, list[dict[str, Any]]], now: datetime,
) -> dict[str, Any]:  # fmt: skip
    causes = [c for key in keys for c in parted_by.get(key, [])]
    unique = list({orjson.dumps(c, option=orjson.OPT_SORT_KEYS): c for c in causes}.values())
    unique.sort(key=lambda c: (c["why"] != "unmerge", c.get("a", ""), c.get("b", "")))
    shown = unique[:_EVIDENCE_SHOWN]
    text = (
        "; ".join(
            f"{c['a']} ↔ {c['b']}: 操作员标记为错误 / marked wrong by {c.get('actor') or 'an operator'}"
            if c["why"] == "unmerge"
            else f"{c['a']} ↔ {c['b']}: 超出每人{c['type']}上限 / would exceed the per-person limit of {c['type']}"
            for c in shown
        )
        or "关联已改变 / links changed"
    )
    parts = sorted(news)
    reason = {"causes": shown, "into": parts}
    return _row(workspace_id, "split", old_pid, [p for p in parts if p != old_pid], reason,
                f"拆分 / split: {text}", now)  # fmt: skip


def _evidence(row: dict[str, Any]) -> dict[str, Any]:
    seen = datetime.fromtimestamp(row["first_seen"] / 1e6, UTC).isoformat()
    return {"a": row["a_key"], "b": row["b_key"], "channel": row["channel"], "source_type": row["source_type"],
            "message_id": row["message_id"], "seen": seen, "kind": row["kind"]}  # fmt: skip


def _row(
    workspace_id: str,
    kind: str,
    pid: str,
    others: list[str],
    reason: dict[str, Any],
    text: str,
    now: datetime,
) -> dict[str, Any]:
    digest = hashlib.sha256(orjson.dumps([workspace_id, kind, pid, others, now.isoformat()])).hexdigest()
    return {"workspace_id": workspace_id, "change_id": "chg_" + digest[:20], "at": now, "kind": kind,
            "profile_id": pid, "other_profile_ids": others, "reason": orjson.dumps(reason).decode(),
            "explanation": text}  # fmt: skip


def _change_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=_CHANGES)  # JSON travels as text


def _redirect_table(workspace_id: str, pairs: list[tuple[str, str]], now: datetime) -> pa.Table:
    return pa.table(
        {"workspace_id": [workspace_id] * len(pairs), "old_profile_id": [p[0] for p in pairs],
         "profile_id": [p[1] for p in pairs], "at": pa.array([now] * len(pairs), pa.timestamp("us", "UTC"))},
        schema=_REDIRECTS,
    )  # fmt: skip
