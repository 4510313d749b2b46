"""Deterministic stitching benchmark: Quanyu's constrained components vs scipy's plain ones.

Generates an identity graph like a large brand's: people with user ids, anonymous ids, phones,
devices and per-app openids, linked by the records they appear on; some devices shared by a
family, and a few hub devices (a store's tablet) shared by thousands. Times, on the same links
and including the string→integer mapping in both:

- baseline: pandas factorize of the identifier keys + scipy connected_components;
- Quanyu: `build_graph` + `stitch` (components under per-type limits, anchors for profile ids).

    .venv/bin/python bench/stitch.py [--people 2000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

sys.path.insert(0, str(Path(__file__).parent))
from dataset import median, write_result
from quanyu.identity.identifiers import BUILTIN_TYPES
from quanyu.identity.stitch import build_graph, stitch

TYPES = list(BUILTIN_TYPES.values())
T = {t.name: i for i, t in enumerate(TYPES)}


def generate(people: int, seed: int = 11) -> dict[str, object]:
    """Links as (a_key, a_type, b_key, b_type, seen) columns, star-shaped per person."""
    rng = np.random.default_rng(seed)
    pid = np.arange(people)
    a_keys, a_types, b_keys, b_types = [], [], [], []

    def add(mask: np.ndarray, hub_key: np.ndarray, hub_type: str, keys: np.ndarray, type_name: str) -> None:
        a_keys.append(hub_key[mask])
        a_types.append(np.full(mask.sum(), T[hub_type], dtype=np.int16))
        b_keys.append(keys[mask])
        b_types.append(np.full(mask.sum(), T[type_name], dtype=np.int16))

    anon = np.char.add("anonymous_id:a", pid.astype(str))
    every = np.ones(people, dtype=bool)
    add(rng.random(people) < 0.6, anon, "anonymous_id", np.char.add("user_id:u", pid.astype(str)), "user_id")
    add(
        rng.random(people) < 0.5,
        anon,
        "anonymous_id",
        np.char.add("phone:139", np.char.zfill(pid.astype(str), 8)),
        "phone",
    )
    # Devices: mostly personal, 5% shared by a family of about 3, and 20 hub devices.
    device = pid.copy()
    family = rng.random(people) < 0.05
    device[family] = (pid[family] // 3) * 3
    hubs = rng.random(people) < 0.002
    device[hubs] = people + rng.integers(0, 20, hubs.sum())
    add(every, anon, "anonymous_id", np.char.add("device_id:d", device.astype(str)), "device_id")
    add(rng.random(people) < 0.45, anon, "anonymous_id",
        np.char.add("mini_program_openid:wxapp:o", pid.astype(str)), "mini_program_openid")  # fmt: skip
    n = sum(len(k) for k in a_keys)
    return {
        "a_keys": pa.chunked_array([pa.array(np.concatenate(a_keys))]),
        "a_types": np.concatenate(a_types),
        "b_keys": pa.chunked_array([pa.array(np.concatenate(b_keys))]),
        "b_types": np.concatenate(b_types),
        "seen": rng.integers(1_700_000_000_000_000, 1_730_000_000_000_000, n),
    }


def baseline(links: dict[str, object]) -> tuple[float, int]:
    started = time.perf_counter()
    chunks = [c for part in (links["a_keys"], links["b_keys"]) for c in part.chunks]
    keys = pa.chunked_array([c.cast(pa.large_string()) for c in chunks], type=pa.large_string())
    codes, uniques = pd.factorize(pd.array(keys, dtype="string[pyarrow]"))
    n_links = len(links["a_keys"])
    n = len(uniques)
    matrix = coo_matrix((np.ones(n_links, dtype=np.int8), (codes[:n_links], codes[n_links:])), shape=(n, n))
    count, _ = connected_components(matrix, directed=False)
    return time.perf_counter() - started, count


def quanyu(links: dict[str, object]) -> tuple[float, int, int, int]:
    started = time.perf_counter()
    graph = build_graph(links["a_keys"], links["a_types"], links["b_keys"], links["b_types"], links["seen"])
    result = stitch(graph, TYPES)
    elapsed = time.perf_counter() - started
    return elapsed, len(result.anchors), len(result.rejected), result.restitched_components


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    links = generate(args.people)
    n_links = len(links["a_keys"])
    all_keys = pa.chunked_array([c for part in (links["a_keys"], links["b_keys"]) for c in part.chunks])
    ids = len(pd.unique(pd.array(all_keys, dtype="string[pyarrow]")))
    print(f"{args.people:,} people, {n_links:,} links, {ids:,} identifiers")
    # Load the compiled re-stitch walk once, as a server does on its first stitch (numba
    # compiles it on first use and caches it on disk); the timed runs measure stitching only.
    quanyu(generate(2_000))
    base_runs, ours_runs = [], []
    for run in range(args.runs):
        base, plain = baseline(links)
        ours, people, rejected, restitched = quanyu(links)
        base_runs.append(base)
        ours_runs.append(ours)
        print(f"run {run + 1}: ratio {ours / base:.2f}, scipy {base:.2f}s ({plain:,} components), "
              f"quanyu {ours:.2f}s ({people:,} people, {rejected:,} links dropped, {restitched} re-stitched)")  # fmt: skip
    result = {
        "people": args.people,
        "links": n_links,
        "identifiers": ids,
        "runs": args.runs,
        "scipy_seconds_median": round(median(base_runs), 2),
        "quanyu_seconds_median": round(median(ours_runs), 2),
        "ratio_quanyu_to_scipy": round(median(ours_runs) / median(base_runs), 2),
        # Each run times both back to back, so a paired ratio cancels most of the machine's noise.
        "ratio_paired_median": round(median([o / b for o, b in zip(ours_runs, base_runs, strict=True)]), 2),
        "people_found": people,
        "links_dropped": rejected,
    }
    write_result("stitch", result)


if __name__ == "__main__":
    main()
