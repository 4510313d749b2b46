"""Profile materialisation: a full refresh of a workspace, and incremental refreshes of 1,000 people.

Builds a workspace of PEOPLE people straight into a warehouse file (about 10 events each across
the brand's channels: views, identify calls with traits from the CRM, web and mini-program,
orders on marketplaces and in stores, some refunds, UTM on ad traffic), with their identity
rows (a user id each, a phone for half, every event attributed to the user id), then times:

- full: `refresh(warehouse, ws)`, every profile, with three tag rules, median of FULL_RUNS;
- incremental: new events for 1,000 random people, then `refresh(warehouse, ws, their ids)`
  (RFM against the stored distribution), median of RUNS;
- baseline: one plain group-by over the same events → identity join (count, first/last seen,
  order count, revenue per person), the floor any materialisation pays.

    .venv/bin/python bench/profiles.py [--people 200000] [--runs 5] [--full-runs 3] [--changed 1000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import ibis
import numpy as np
import orjson
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from dataset import median, write_result
from quanyu.collect.source_types import SOURCE_TYPES
from quanyu.identity.membership import profile_events
from quanyu.profiles import refresh
from quanyu.warehouse.base import Append, Warehouse
from quanyu.warehouse.duckdb import DuckDBWarehouse
from quanyu.warehouse.schema import EVENTS, IDENTITY_EVENT_KEYS, IDENTITY_NODES

WS = "ws_bench"
_T0 = np.datetime64("2025-09-01T00:00:00", "us")
_SOURCES = np.array(["website", "mini_program", "wechat_oa", "wecom", "tmall", "jd", "douyin", "youzan", "pos",
                     "crm", "app", "ads"])  # fmt: skip
_WEIGHTS = np.array([20, 18, 12, 5, 12, 6, 8, 4, 8, 2, 3, 2], dtype=float)
_CITIES = ["上海", "杭州", "北京", "深圳", "成都", "广州"]
_LEVELS = ["普通", "银卡", "金卡"]
RULES = [
    {"tag": "高价值", "all": [{"field": "net_revenue", "op": ">=", "value": 1500}]},
    {"tag": "全渠道", "all": [{"field": "in_public_domain", "op": "=", "value": True},
                            {"field": "in_private_domain", "op": "=", "value": True}]},
    {"tag": "沉睡", "all": [{"field": "last_seen", "op": "<", "value": {"days_ago": 180}},
                          {"field": "order_count", "op": ">", "value": 0}]},
]  # fmt: skip


def _column(values: np.ndarray, table: dict[str, str]) -> pa.Array:
    return pa.array(np.vectorize(table.__getitem__, otypes=[object])(values), pa.string())


def events(people: np.ndarray, rng: np.random.Generator, first_id: int, days: int = 365) -> pa.Table:
    """One table of events for `people` (person numbers, one entry per event)."""
    n = len(people)
    source = rng.choice(_SOURCES, n, p=_WEIGHTS / _WEIGHTS.sum())
    kind = rng.random(n)
    identify = kind < 0.12
    order = (kind >= 0.12) & (kind < 0.27)
    refund = (kind >= 0.27) & (kind < 0.28)
    name = np.where(order, "Order Completed", np.where(refund, "Order Refunded", "Product Viewed"))
    amount = np.where(order | refund, np.round(rng.gamma(2.0, 120.0, n), 2), np.nan)
    order_id = np.where(order | refund, np.char.add("o", rng.integers(0, 10 * n, n).astype(str)), None)
    utm = np.where((source == "ads") | (rng.random(n) < 0.05), "spring_tea", None)
    traits = [
        orjson.dumps({"city": _CITIES[i % 6], "level": _LEVELS[i % 3], "name": f"顾客{p}"}).decode() if ident else None
        for i, (p, ident) in enumerate(zip(people.tolist(), identify.tolist(), strict=True))
    ]  # fmt: skip
    seconds = rng.integers(0, days * 86400, n)
    cols = {
        "workspace_id": pa.array([WS] * n),
        "message_id": pa.array(np.char.add("m", np.arange(first_id, first_id + n).astype(str))),
        "type": pa.array(np.where(identify, "identify", "track")),
        "event": pa.array(np.where(identify, None, name), pa.string()),
        "user_id": pa.array(np.char.add("u", people.astype(str))),
        "timestamp": pa.array(_T0 + seconds.astype("timedelta64[s]")).cast(pa.timestamp("us", "UTC")),
        "received_at": pa.array(_T0 + seconds.astype("timedelta64[s]")).cast(pa.timestamp("us", "UTC")),
        "source_id": pa.array(np.char.add("src_", source)),
        "source_type": pa.array(source),
        "channel": _column(source, {k: t.channel for k, t in SOURCE_TYPES.items()}),
        "domain": _column(source, {k: t.domain for k, t in SOURCE_TYPES.items()}),
        "presence": _column(source, {k: t.presence for k, t in SOURCE_TYPES.items()}),
        "utm_source": pa.array(np.where(utm == None, None, "douyin"), pa.string()),  # noqa: E711
        "utm_campaign": pa.array(utm, pa.string()),
        "order_id": pa.array(order_id, pa.string()),
        "amount": pa.array(amount, pa.float64(), from_pandas=True),
        "traits": pa.array(traits, pa.string()),
        "batch_id": pa.array(np.zeros(n, dtype=np.int64)),
    }
    schema = EVENTS.to_pyarrow()
    return pa.table({f.name: cols.get(f.name, pa.nulls(n, f.type)) for f in schema}, schema=schema)


def event_keys(rows: pa.Table) -> pa.Table:
    schema = IDENTITY_EVENT_KEYS.to_pyarrow()
    keys = pa.compute.binary_join_element_wise("user_id", rows["user_id"], ":")
    return pa.table([rows["workspace_id"], rows["message_id"], keys, rows["timestamp"]], schema=schema)


def nodes(people: int, rng: np.random.Generator) -> pa.Table:
    pid = np.arange(people)
    profile = np.char.add("prof_", pid.astype(str))
    phone = rng.random(people) < 0.5
    keys = np.concatenate([np.char.add("user_id:u", pid.astype(str)),
                           np.char.add("phone:139", np.char.zfill(pid[phone].astype(str), 8))])  # fmt: skip
    n = len(keys)
    cols = {
        "workspace_id": pa.array([WS] * n),
        "key": pa.array(keys),
        "id_type": pa.array(["user_id"] * people + ["phone"] * int(phone.sum())),
        "value": pa.array([k.split(":", 1)[1] for k in keys.tolist()]),
        "scope": pa.array([""] * n),
        "profile_id": pa.array(np.concatenate([profile, profile[phone]])),
        "is_anchor": pa.array(np.r_[np.ones(people, bool), np.zeros(int(phone.sum()), bool)]),
        "first_seen": pa.array(np.full(n, _T0)).cast(pa.timestamp("us", "UTC")),
        "component": pa.array(np.concatenate([profile, profile[phone]])),
    }
    return pa.table(cols, schema=IDENTITY_NODES.to_pyarrow())


def populate(warehouse: Warehouse, people: int, rng: np.random.Generator) -> int:
    per_person = rng.poisson(9, people) + 1
    owners = np.repeat(np.arange(people), per_person)
    total = 0
    for start in range(0, len(owners), 1_000_000):
        chunk = events(owners[start : start + 1_000_000], rng, start)
        warehouse.write([Append("events", chunk), Append("identity_event_keys", event_keys(chunk))])
        total += chunk.num_rows
    warehouse.write([Append("identity_nodes", nodes(people, rng))])
    return total


def baseline(warehouse: Warehouse) -> float:
    t = {name: warehouse.table(name) for name in ("events", "identity_event_keys", "identity_nodes")}
    ev = profile_events(t["events"], t["identity_event_keys"], t["identity_nodes"], WS)
    order = ev.event == "Order Completed"
    plain = ev.group_by("profile_id").aggregate(
        events=ev.count(), first_seen=ev.timestamp.min(), last_seen=ev.timestamp.max(),
        orders=order.sum(), revenue=ibis.ifelse(order, ev.amount, 0.0).sum(),
    )  # fmt: skip
    started = time.perf_counter()
    warehouse.execute(plain.count().as_table())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--full-runs", type=int, default=3)
    parser.add_argument("--changed", type=int, default=1_000)
    args = parser.parse_args()
    rng = np.random.default_rng(17)
    root = Path(tempfile.mkdtemp(prefix="quanyu-bench-profiles-"))
    try:
        warehouse = DuckDBWarehouse(str(root / "warehouse.duckdb"))
        n_events = populate(warehouse, args.people, rng)
        print(f"{args.people:,} people, {n_events:,} events")
        base = baseline(warehouse)
        fulls = []
        for run in range(args.full_runs):
            fulls.append(refresh(warehouse, WS, rules=RULES))
            print(f"full refresh {run + 1}: {fulls[-1].seconds:.2f}s ({fulls[-1].profiles:,} profiles: "
                  f"query {fulls[-1].query_seconds:.2f}s, write {fulls[-1].write_seconds:.2f}s)")  # fmt: skip
        print(f"plain group-by {base:.2f}s")
        incs = []
        next_id = n_events
        for run in range(args.runs):
            chosen = rng.choice(args.people, args.changed, replace=False)
            fresh = events(np.repeat(chosen, 3), rng, next_id, days=400)
            next_id += fresh.num_rows
            warehouse.write([Append("events", fresh), Append("identity_event_keys", event_keys(fresh))])
            incs.append(refresh(warehouse, WS, [f"prof_{p}" for p in chosen.tolist()], rules=RULES))
            assert incs[-1].profiles == args.changed, incs[-1]
            print(f"run {run + 1}: incremental refresh of {args.changed:,} profiles {incs[-1].seconds:.2f}s "
                  f"(query {incs[-1].query_seconds:.2f}s, write {incs[-1].write_seconds:.2f}s)")  # fmt: skip
        warehouse.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    full = median([r.seconds for r in fulls])
    write_result("profiles", {
        "people": args.people,
        "events": n_events,
        "full_refresh_seconds_median": round(full, 2),
        "full_query_seconds_median": round(median([r.query_seconds for r in fulls]), 2),
        "full_write_seconds_median": round(median([r.write_seconds for r in fulls]), 2),
        "full_runs": [round(r.seconds, 2) for r in fulls],
        "full_profiles_per_s": round(args.people / full),
        "plain_group_by_seconds": round(base, 2),
        "ratio_full_to_group_by": round(full / base, 1),
        "changed_profiles": args.changed,
        "incremental_seconds_median": round(median([r.seconds for r in incs]), 2),
        "incremental_query_seconds_median": round(median([r.query_seconds for r in incs]), 2),
        "incremental_runs": [round(r.seconds, 2) for r in incs],
    })  # fmt: skip


if __name__ == "__main__":
    main()
