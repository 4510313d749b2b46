"""HTTP ingestion benchmark: /v1/batch with durable acknowledgement, several concurrent clients.

Starts a real `quanyu serve --no-pipeline` per run on a fresh data directory, sends pre-built
batches from concurrent keep-alive clients, and counts only 200 answers (each one is a committed
queue write). In the same run it measures the raw ceiling: a bulk Arrow insert of the same
events into DuckDB. Prints medians and writes bench/out/ingest.json.

    .venv/bin/python bench/ingest.py [--events 500000] [--runs 3] [--clients 8]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from dataset import median, messages, raw_ceiling, write_result

QUANYU = str(Path(sys.executable).with_name("quanyu"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_run(bodies: list[bytes], total: int, clients: int) -> float:
    root = Path(tempfile.mkdtemp(prefix="quanyu-bench-"))
    try:
        creds = json.loads(subprocess.check_output([QUANYU, "init", "--data-dir", str(root), "--json"]))
        port = free_port()
        server = subprocess.Popen(
            [QUANYU, "serve", "--data-dir", str(root), "--port", str(port), "--no-pipeline"],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_healthy(port)
            auth = "Basic " + base64.b64encode(f"{creds['write_key']}:".encode()).decode()
            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                accepted = sum(
                    pool.map(
                        lambda part: send(port, auth, part), [bodies[i::clients] for i in range(clients)]
                    )
                )
            elapsed = time.perf_counter() - started
            status = httpx.get(f"http://127.0.0.1:{port}/api/v1/pipeline/status",
                               headers={"Authorization": f"Bearer {creds['api_token']}"}).json()  # fmt: skip
            assert accepted == total == status["queued"], (accepted, total, status)
            return elapsed
        finally:
            server.terminate()
            server.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def wait_healthy(port: int) -> None:
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def send(port: int, auth: str, bodies: list[bytes]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    accepted = 0
    for body in bodies:
        conn.request(
            "POST",
            "/v1/batch",
            body=body,
            headers={"Authorization": auth, "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{resp.status}: {payload[:200]!r}")
        accepted += orjson.loads(payload)["accepted"]
    conn.close()
    return accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    msgs = messages(args.events)
    bodies = [orjson.dumps({"batch": msgs[i : i + args.batch]}) for i in range(0, len(msgs), args.batch)]
    http_runs, raw_runs = [], []
    for run in range(args.runs):
        http_runs.append(args.events / one_run(bodies, args.events, args.clients))
        with tempfile.TemporaryDirectory() as tmp:
            raw_runs.append(args.events / raw_ceiling(msgs, f"{tmp}/raw.duckdb"))
        print(
            f"run {run + 1}: http {http_runs[-1]:,.0f} events/s, raw DuckDB insert {raw_runs[-1]:,.0f} events/s"
        )
    result = {
        "events": args.events,
        "batch_size": args.batch,
        "avg_body_bytes": round(sum(map(len, bodies)) / len(bodies)),
        "clients": args.clients,
        "runs": args.runs,
        "http_events_per_s_median": round(median(http_runs)),
        "raw_duckdb_insert_events_per_s_median": round(median(raw_runs)),
        "ratio_http_to_raw": round(median(http_runs) / median(raw_runs), 3),
        "http_runs": [round(x) for x in http_runs],
        "raw_runs": [round(x) for x in raw_runs],
    }
    write_result("ingest", result)


if __name__ == "__main__":
    main()
