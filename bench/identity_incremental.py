"""Incremental identity stitching and profile lookup at scale.

Builds a workspace of PEOPLE people (about 3 events each: a page view with a device, a login
with a user id and often a phone, a track event) straight into the warehouse, resolves it with
a full rebuild, then:

- incremental: stitches batches of 10,000 new events (returning visitors on new devices,
  people who give their phone and merge, brand-new people) with `extend()`, the pipeline's
  identity step; baseline: the full rebuild of the same workspace in the same run;
- lookup: GET /api/v1/profiles/lookup through the ASGI app (in process), for random phones and
  user ids, reporting p50/p99 latency.

    .venv/bin/python bench/identity_incremental.py [--people 1000000] [--batches 3] [--lookups 2000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from dataset import median, write_result
from quanyu.identity.resolve import extend, rebuild
from quanyu.platform import Platform
from quanyu.settings import Settings
from quanyu.warehouse.base import Append
from quanyu.warehouse.schema import EVENTS

_SCHEMA = EVENTS.to_pyarrow()
_T0 = np.datetime64("2026-01-01T00:00:00", "us")


def _strings(prefix: str, numbers: np.ndarray) -> np.ndarray:
    return np.char.add(prefix, numbers.astype(str))


def _events(ws: str, batch: int, message: np.ndarray, anon: np.ndarray, user: np.ndarray | None,
            phone: np.ndarray | None, device: np.ndarray | None, seconds: np.ndarray) -> pa.Table:  # fmt: skip
    n = len(message)
    traits = ["{}"] * n if phone is None else [
        orjson.dumps({"phone": p}).decode() if p else "{}" for p in phone.tolist()
    ]  # fmt: skip
    context = (
        ["{}"] * n
        if device is None
        else [orjson.dumps({"device": {"id": d}}).decode() for d in device.tolist()]
    )
    columns = {
        "workspace_id": pa.array([ws] * n),
        "message_id": pa.array(message),
        "type": pa.array(["track"] * n),
        "user_id": pa.array(user if user is not None else [None] * n, pa.string()),
        "anonymous_id": pa.array(anon),
        "timestamp": pa.array(_T0 + seconds.astype("timedelta64[s]")).cast(pa.timestamp("us", "UTC")),
        "channel": pa.array(["web"] * n),
        "source_type": pa.array(["website"] * n),
        "traits": pa.array(traits),
        "context": pa.array(context),
        "batch_id": pa.array(np.full(n, batch, dtype=np.int64)),
    }
    return pa.table({f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in _SCHEMA}, schema=_SCHEMA)


def populate(platform: Platform, ws: str, people: int, rng: np.random.Generator) -> int:
    pid = np.arange(people)
    anon = _strings("a", pid)
    has_user = rng.random(people) < 0.6
    user = np.where(has_user, _strings("u", pid), None)
    has_phone = rng.random(people) < 0.5
    phone = np.where(has_phone, np.char.add("139", np.char.zfill(pid.astype(str), 8)), "")
    device = _strings("d", np.where(rng.random(people) < 0.05, pid // 3, pid))  # 5% family devices
    seconds = rng.integers(0, 300 * 86400, people)
    parts = [
        _events(ws, 1, _strings("m1-", pid), anon, None, None, device, seconds),
        _events(ws, 1, _strings("m2-", pid), anon, user, phone, None, seconds + 60),
        _events(ws, 1, _strings("m3-", pid), anon, None, None, None, seconds + 120),
    ]
    platform.warehouse.write([Append("events", p) for p in parts])
    return sum(p.num_rows for p in parts)


def new_batch(ws: str, batch: int, people: int, size: int, rng: np.random.Generator) -> pa.Table:
    """Returning visitors on new devices, people leaving their phone (merges), new people."""
    kind = rng.random(size)
    who = rng.integers(0, people, size)
    other = rng.integers(0, people, size)
    fresh = np.arange(size) + people * 10 + batch * size
    anon = np.where(kind < 0.7, _strings("a", who), _strings("a", fresh))
    phone = np.where(
        (kind >= 0.4) & (kind < 0.7), np.char.add("139", np.char.zfill(other.astype(str), 8)), ""
    )
    device = _strings("nd", fresh)
    seconds = 300 * 86400 + rng.integers(0, 86400, size)
    return _events(ws, batch, _strings(f"n{batch}-", np.arange(size)), anon, None, phone, device, seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-events", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    root = Path(tempfile.mkdtemp(prefix="quanyu-bench-identity-"))
    try:
        settings = Settings(data_dir=root, pipeline_enabled=False)
        platform = Platform(settings)
        ws = platform.workspaces.create("bench").id
        token = platform.workspaces.issue_token(ws)
        started = time.perf_counter()
        n_events = populate(platform, ws, args.people, rng)
        print(f"generated {n_events:,} events in {time.perf_counter() - started:.1f}s", flush=True)
        started = time.perf_counter()
        full = rebuild(platform.warehouse, ws)
        rebuild_s = time.perf_counter() - started
        print(
            f"rebuild: {full.profiles:,} profiles, {full.identifiers:,} identifiers in {rebuild_s:.1f}s",
            flush=True,
        )

        times, touched = [], []
        for b in range(args.batches):
            batch_id = 100 + b
            platform.warehouse.write(
                [Append("events", new_batch(ws, batch_id, args.people, args.batch_events, rng))]
            )
            events = platform.warehouse.table("events")
            started = time.perf_counter()
            result = extend(platform.warehouse, ws, events.filter(events.batch_id == batch_id))
            times.append(time.perf_counter() - started)
            touched.append(len(result.touched_profiles))
            print(
                f"batch {b}: {times[-1]:.2f}s, {result.merges} merges, {touched[-1]} profiles touched",
                flush=True,
            )

        latencies = lookup_latencies(platform, settings, ws, token, args.people, args.lookups, rng)
        write_result("identity_incremental", {
            "people": args.people, "events": n_events, "profiles": full.profiles, "identifiers": full.identifiers,
            "batch_events": args.batch_events, "incremental_runs_s": [round(t, 2) for t in times],
            "incremental_median_s": round(median(times), 2), "profiles_touched_per_batch": touched,
            "full_rebuild_s": round(rebuild_s, 1), "ratio_incremental_to_rebuild": round(median(times) / rebuild_s, 3),
            "lookup_p50_ms": round(float(np.percentile(latencies, 50)), 2),
            "lookup_p99_ms": round(float(np.percentile(latencies, 99)), 2), "lookups": len(latencies),
        })  # fmt: skip
        platform.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def lookup_latencies(platform: Platform, settings: Settings, ws: str, token: str, people: int, n: int,
                     rng: np.random.Generator) -> list[float]:  # fmt: skip
    from fastapi.testclient import TestClient

    from quanyu.api.app import create_app

    bearer = {"Authorization": f"Bearer {token}"}
    out = []
    with TestClient(create_app(settings, platform)) as client:
        for i in range(n):
            who = int(rng.integers(0, people))
            params = (
                {"type": "anonymous_id", "value": f"a{who}"}
                if i % 2
                else {"type": "user_id", "value": f"u{who}"}
            )
            started = time.perf_counter()
            resp = client.get("/api/v1/profiles/lookup", params=params, headers=bearer)
            out.append((time.perf_counter() - started) * 1000)
            assert resp.status_code in (200, 404), resp.text
    return out


if __name__ == "__main__":
    main()
