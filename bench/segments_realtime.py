"""Real-time segment entry: from an incoming event to its `segment_entered` signal, under load.

Per run: a real `quanyu serve` (pipeline on, scheduled refresh off) on a fresh data directory,
PRELOAD events of history sent through /v1/batch and processed first, and a realtime segment
(people who redeemed a coupon worth 50 or more). Then, for DURATION seconds, a paced sender
posts RATE events/s through /v1/batch (batches every 0.1 s: the benchmark data set's mix, with
2% coupon redemptions of 10-100 of which about half qualify) and, in every other batch, one
probe: a new person's qualifying redemption. A watcher polls `GET /api/v1/segments/signals`
every 20 ms; a probe's latency is from just before the POST carrying it to the poll that first
shows its `segment_entered`. Prints p50/p95/max per run, the medians, and writes
bench/out/segments_realtime.json.

`--stages` runs the same load in process instead (the platform's pipeline drained in a loop as
`serve` does, events handed to the collector's intake) and prints where each drain's time
goes: warehouse append, identity stitch, profile refresh, realtime segments.

    .venv/bin/python bench/segments_realtime.py [--runs 3] [--rate 5000] [--duration 30] [--preload 200000]
    .venv/bin/python bench/segments_realtime.py --stages [--rate 5000] [--duration 15] [--preload 200000]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from dataset import median, messages, write_result
from ingest import QUANYU, free_port, wait_healthy

SEGMENT = {
    "conditions": [{"event": "Coupon Redeemed", "where": [{"property": "amount", "op": "gte", "value": 50}]}]
}
TICK = 0.1  # seconds between batches
POLL = 0.02  # seconds between signal polls


class Server:
    def __init__(self, root: Path) -> None:
        self.creds = json.loads(subprocess.check_output([QUANYU, "init", "--data-dir", str(root), "--json"]))
        self.port = free_port()
        env = {**os.environ, "QUANYU_SEGMENT_REFRESH_SECONDS": "0"}  # entries come from the pipeline only
        self.process = subprocess.Popen(
            [QUANYU, "serve", "--data-dir", str(root), "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            env=env,
        )
        wait_healthy(self.port)
        self.api = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Authorization": f"Bearer {self.creds['api_token']}"},
            timeout=60,
        )
        self.write_auth = "Basic " + base64.b64encode(f"{self.creds['write_key']}:".encode()).decode()

    def post_batch(self, conn: http.client.HTTPConnection, batch: list[dict[str, Any]]) -> None:
        body = orjson.dumps({"batch": batch})
        conn.request(
            "POST",
            "/v1/batch",
            body=body,
            headers={"Authorization": self.write_auth, "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{resp.status}: {payload[:200]!r}")

    def wait_processed(self, total: int, limit: float = 600) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            status = self.api.get("/api/v1/pipeline/status").json()
            if status["queued"] == 0 and status["processed"] + status["duplicates"] >= total:
                return
            time.sleep(0.5)
        raise RuntimeError("the pipeline did not catch up")

    def profile_of(self, user: str, limit: float = 600) -> str:
        """The profile id of `user` once the pipeline has stitched and refreshed them."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            found = self.api.get("/api/v1/profiles/lookup", params={"type": "user_id", "value": user})
            if found.status_code == 200:
                return str(found.json()["profile_id"])
            time.sleep(0.2)
        raise RuntimeError(f"{user} never got a profile")

    def stop(self) -> None:
        self.api.close()
        self.process.terminate()
        self.process.wait()


def with_coupons(msgs: list[dict[str, Any]], rnd: random.Random) -> list[dict[str, Any]]:
    """2% of track events become coupon redemptions of 10-100 (about half of them qualify)."""
    for m in msgs:
        if m["type"] == "track" and rnd.random() < 0.02:
            m["event"] = "Coupon Redeemed"
            m["properties"] = {"coupon": "NEWTEA20", "amount": round(rnd.uniform(10, 100), 2)}
    return msgs


class Watcher(threading.Thread):
    """Polls the signal stream; remembers when each profile's first `segment_entered` showed."""

    def __init__(self, server: Server, segment_id: str) -> None:
        super().__init__(daemon=True)
        self.server, self.segment_id = server, segment_id
        self.seen: dict[str, float] = {}
        self.modes: dict[str, int] = {}
        self.stop = threading.Event()
        self.cursor: str | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            params = {
                "limit": 1000,
                "segment_id": self.segment_id,
                **({"after": self.cursor} if self.cursor else {}),
            }
            page = self.server.api.get("/api/v1/segments/signals", params=params).json()
            now = time.perf_counter()
            for s in page["items"]:
                if s["signal"] == "segment_entered":
                    self.seen.setdefault(s["profile_id"], now)
                    self.modes[s["mode"]] = self.modes.get(s["mode"], 0) + 1
            self.cursor = page["next_cursor"]
            if len(page["items"]) < 1000:
                self.stop.wait(POLL)


def one_run(args: argparse.Namespace, run: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="quanyu-bench-rt-"))
    try:
        server = Server(root)
        try:
            return measure(server, args, run)
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(server: Server, args: argparse.Namespace, run: int) -> dict[str, Any]:
    rnd = random.Random(run)
    per_tick = int(args.rate * TICK)
    ticks = int(args.duration / TICK)
    everything = with_coupons(messages(args.preload + per_tick * ticks, seed=run + 1), rnd)
    history, load = everything[: args.preload], everything[args.preload :]
    if args.probes == "known":
        # Customers the brand already knows (they signed up before the measurement).
        history = history + [{"type": "identify", "userId": f"probe-{run}-{tick}", "traits": {"city": "上海"}}
                             for tick in range(0, ticks, 2)]  # fmt: skip

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    started = time.perf_counter()
    for i in range(0, len(history), 500):
        server.post_batch(conn, history[i : i + 500])
    server.post_batch(conn, [{"type": "track", "userId": "preload-marker", "event": "Bench Marker"}])
    server.wait_processed(len(history) + 1)
    server.profile_of("preload-marker")  # the identity stage and profiles caught up too
    preload_s = time.perf_counter() - started
    conn.close()  # idle past the server's keep-alive while the pipeline caught up
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

    made = server.api.post("/api/v1/segments", json={"name": "领券50+ Redeemed 50+", "definition": SEGMENT})
    made.raise_for_status()
    segment = made.json()
    assert segment["mode"] == "realtime", segment

    watcher = Watcher(server, segment["id"])
    watcher.start()
    sent: dict[str, float] = {}
    begin = time.perf_counter()
    for tick in range(ticks):
        due = begin + tick * TICK
        time.sleep(max(0.0, due - time.perf_counter()))
        batch = load[tick * per_tick : (tick + 1) * per_tick]
        probe = None
        if tick % 2 == 0:
            probe = f"probe-{run}-{tick}"
            batch = [*batch[:-1], {"type": "track", "userId": probe, "event": "Coupon Redeemed",
                                   "properties": {"coupon": "NEWTEA20", "amount": 88.0}}]  # fmt: skip
        at = time.perf_counter()
        server.post_batch(conn, batch)
        if probe is not None:
            sent[probe] = at
    send_s = time.perf_counter() - begin
    conn.close()

    probes = {user: server.profile_of(user) for user in sent}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(p in watcher.seen for p in probes.values()):
        time.sleep(0.1)
    watcher.stop.set()
    watcher.join()

    latencies = sorted(watcher.seen[pid] - sent[user] for user, pid in probes.items() if pid in watcher.seen)
    missing = len(sent) - len(latencies)
    return {
        "preload_events": len(history),
        "preload_seconds": round(preload_s, 1),
        "events_sent": per_tick * ticks,
        "send_rate": round(per_tick * ticks / send_s),
        "probes": len(sent),
        "missing": missing,
        "entered_total": len(watcher.seen),
        "entered_by_mode": watcher.modes,
        "p50_s": round(_pct(latencies, 0.50), 3),
        "p95_s": round(_pct(latencies, 0.95), 3),
        "max_s": round(latencies[-1], 3) if latencies else None,
    }


def stages(args: argparse.Namespace) -> None:
    """The load in process, timing each stage of every drain."""
    from quanyu.collect.messages import Envelope
    from quanyu.identity import stage
    from quanyu.platform import Platform
    from quanyu.profiles import materialise
    from quanyu.segments.saved import SegmentCreate
    from quanyu.settings import Settings

    root = Path(tempfile.mkdtemp(prefix="quanyu-bench-rt-"))
    platform = Platform(Settings(data_dir=root, pipeline_enabled=False, segment_refresh_seconds=0))
    try:
        ws = platform.workspaces.create("品牌 Brand")
        source = platform.sources.create(ws.id, "网站 web", "website").source
        per_tick, ticks = int(args.rate * TICK), int(args.duration / TICK)
        msgs = with_coupons(messages(args.preload + per_tick * ticks, seed=1), random.Random(0))

        def accept(batch: list[dict[str, Any]]) -> None:
            future, _ = platform.intake.accept(source, batch, None, Envelope())
            future.result()

        platform.committer.start()
        for i in range(0, args.preload, 500):
            accept(msgs[i : min(i + 500, args.preload)])
        platform.pipeline.drain()
        platform.segments.create(ws.id, SegmentCreate(name="领券50+", definition=SEGMENT), "bench")

        spent: dict[str, float] = {}

        def timed(key: str, fn: Any) -> Any:
            def run(*a: Any, **k: Any) -> Any:
                started = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    spent[key] = spent.get(key, 0.0) + time.perf_counter() - started

            return run

        pipeline = platform.pipeline
        pipeline._apply = timed("append", pipeline._apply)  # type: ignore[method-assign]
        stage.extend = timed("stitch", stage.extend)  # type: ignore[assignment]
        materialise.refresh = timed("profiles", materialise.refresh)  # type: ignore[assignment]
        platform.realtime.on_profiles = timed("realtime", platform.realtime.on_profiles)  # type: ignore[method-assign]
        done = threading.Event()

        def send() -> None:
            load, begin = msgs[args.preload :], time.perf_counter()
            for tick in range(ticks):
                time.sleep(max(0.0, begin + tick * TICK - time.perf_counter()))
                accept(load[tick * per_tick : (tick + 1) * per_tick])
            done.set()

        sender = threading.Thread(target=send)
        sender.start()
        drains = []
        while not done.is_set() or platform.queue.backlog():
            spent.clear()
            started = time.perf_counter()
            result = pipeline.drain()
            if not result.events:
                time.sleep(0.05)
                continue
            drains.append({"seconds": time.perf_counter() - started, "events": result.events,
                           "touched": result.people.get("touched_profiles", 0), **spent})  # fmt: skip
            d = drains[-1]
            print(f"drain {d['seconds']:.2f} s: {d['events']:,} events, {d['touched']:,} people; "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in spent.items()))  # fmt: skip
        sender.join()
        keys = ("seconds", "append", "stitch", "profiles", "realtime")
        totals = {k: sum(d.get(k, 0.0) for d in drains) for k in keys}
        result = {
            "rate": args.rate, "duration_s": args.duration, "preload_events": args.preload, "drains": len(drains),
            "events": sum(d["events"] for d in drains),
            "events_per_drain_median": median([d["events"] for d in drains]),
            "drain_seconds_median": round(median([d["seconds"] for d in drains]), 3),
            "share_of_drain_time": {k: round(totals[k] / totals["seconds"], 3) for k in keys[1:]},
            "realtime_seconds_median": round(median([d.get("realtime", 0.0) for d in drains]), 3),
        }  # fmt: skip
        write_result("segments_realtime_stages", result)
    finally:
        platform.close()
        shutil.rmtree(root, ignore_errors=True)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=5000, help="events/s sent during the measurement")
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--preload", type=int, default=200_000, help="events of history processed first")
    parser.add_argument("--stages", action="store_true", help="in process: where each drain's time goes")
    parser.add_argument(
        "--probes", choices=("known", "new"), default="known",
        help="probe redemptions by customers already known (the fast path) or by new people (after the stitch)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.stages:
        stages(args)
        return

    runs = []
    for run in range(args.runs):
        runs.append(one_run(args, run))
        r = runs[-1]
        print(f"run {run + 1}: sent {r['send_rate']:,} events/s, {r['probes']} probes ({r['missing']} missing), "
              f"p50 {r['p50_s']} s, p95 {r['p95_s']} s, max {r['max_s']} s")  # fmt: skip
    result = {
        "rate_target": args.rate,
        "probes": args.probes,
        "duration_s": args.duration,
        "preload_events": args.preload,
        "runs": args.runs,
        "send_rate_median": round(median([r["send_rate"] for r in runs])),
        "p50_s_median": median([r["p50_s"] for r in runs]),
        "p95_s_median": median([r["p95_s"] for r in runs]),
        "max_s_median": median([r["max_s"] or float("nan") for r in runs]),
        "missing_total": sum(r["missing"] for r in runs),
        "per_run": runs,
    }
    write_result("segments_realtime", result)


if __name__ == "__main__":
    main()
