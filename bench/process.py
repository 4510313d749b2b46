"""Processing benchmark: dedupe + normalise + warehouse append, queue → DuckDB.

Fills the ingestion queue of a fresh data directory with completed messages (5% of them
resends of earlier messageIds, as SDK retries produce), then times `pipeline.drain()`.
Medians over several runs, with the raw bulk-Arrow-insert ceiling measured in the same run.

    .venv/bin/python bench/process.py [--events 500000] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from dataset import median, messages, raw_ceiling, write_result
from quanyu.collect.messages import Envelope, complete
from quanyu.collect.queue import QueuedBatch
from quanyu.platform import Platform
from quanyu.settings import Settings


def fill_queue(platform: Platform, msgs: list[dict], batch: int) -> tuple[int, int]:
    ws = platform.workspaces.create("bench")
    source = platform.sources.create(ws.id, "小程序 Mini-program", "mini_program").source
    now = datetime.now(UTC)
    rnd = random.Random(3)
    resent = [dict(m) for m in rnd.sample(msgs, len(msgs) // 20)]
    stream = msgs + resent
    rnd.shuffle(stream)
    batches = []
    for i in range(0, len(stream), batch):
        # As the collector does: one copy of a messageId per queued batch.
        chunk = list({m["messageId"]: m for m in reversed(stream[i : i + batch])}.values())[::-1]
        parts = [complete(dict(m), None, Envelope(), now) for m in chunk]
        batches.append(QueuedBatch(ws.id, source.id, now, len(parts), b"[" + b",".join(parts) + b"]"))
    platform.queue.append(batches)
    return sum(b.event_count for b in batches), len(msgs)


def one_run(msgs: list[dict], batch: int) -> tuple[float, int]:
    root = Path(tempfile.mkdtemp(prefix="quanyu-bench-"))
    try:
        platform = Platform(Settings(data_dir=root, pipeline_enabled=False))
        total, unique = fill_queue(platform, msgs, batch)
        # Events only, as recorded since issue 2; identity stitching has its own benchmark.
        platform.pipeline.config.resolve_identities = False
        started = time.perf_counter()
        result = platform.pipeline.drain()
        elapsed = time.perf_counter() - started
        assert (result.events, result.inserted, result.duplicates) == (total, unique, total - unique), result
        platform.close()
        return elapsed, total
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    msgs = messages(args.events, seed=2)
    rates, raw = [], []
    for run in range(args.runs):
        elapsed, total = one_run(msgs, args.batch)
        rates.append(total / elapsed)
        with tempfile.TemporaryDirectory() as tmp:
            raw.append(args.events / raw_ceiling(msgs, f"{tmp}/raw.duckdb"))
        print(f"run {run + 1}: pipeline {rates[-1]:,.0f} events/s, raw DuckDB insert {raw[-1]:,.0f} events/s")
    result = {
        "events_unique": args.events,
        "events_with_resends": round(args.events * 1.05),
        "runs": args.runs,
        "pipeline_events_per_s_median": round(median(rates)),
        "raw_duckdb_insert_events_per_s_median": round(median(raw)),
        "ratio_pipeline_to_raw": round(median(rates) / median(raw), 3),
        "pipeline_runs": [round(x) for x in rates],
        "raw_runs": [round(x) for x in raw],
    }
    write_result("process", result)


if __name__ == "__main__":
    main()
