"""RELIABILITY 1 (and 2): a `quanyu serve` process killed with SIGKILL under load loses no
acknowledged event and stores none twice; resending acknowledged events changes nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from reliability_support import basic, launch, track, wait_drained, warehouse_counts

from quanyu.collect.messages import Envelope
from quanyu.pipeline.status import pipeline_status
from quanyu.platform import Platform
from testkit import free_port, make_settings, new_tenant, run_cli

KILLS = 4
CLIENTS = 4
BATCH = 25
SEED = int(os.environ.get("QUANYU_CRASH_SEED", "20240618"))


@dataclass
class Ledger:
    """What the clients sent and what the server acknowledged (200), shared by the client threads."""

    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    acked_bodies: list[tuple[list[str], bytes]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    transport_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(url: str, write_key: str, tid: int, stop: threading.Event, ledger: Ledger) -> None:
    rng = random.Random(SEED + tid)
    headers = {**basic(write_key), "Content-Type": "application/json"}
    seq = 0
    with httpx.Client(timeout=10) as http:
        while not stop.is_set():
            if ledger.acked_bodies and rng.random() < 0.1:
                # A client resending something already acknowledged (e.g. after a timeout).
                with ledger.lock:
                    ids, body = rng.choice(ledger.acked_bodies)
            else:
                seq += 1
                ids = [f"c{tid}-{seq:05d}-{i:02d}" for i in range(BATCH)]
                batch = [track(m, user_id=f"user-{tid}", event="Crash Load", properties={"seq": seq, "i": i})
                         for i, m in enumerate(ids)]  # fmt: skip
                body = orjson.dumps({"batch": batch, "sentAt": "2026-01-01T00:00:00Z"})
                with ledger.lock:
                    ledger.sent.update(ids)
            # Retry the same body until it is acknowledged (what the SDKs do), or the test stops.
            while not stop.is_set():
                try:
                    resp = http.post(f"{url}/v1/batch", content=body, headers=headers)
                except httpx.TransportError:
                    with ledger.lock:
                        ledger.transport_errors += 1
                    time.sleep(0.05)
                    continue
                if resp.status_code == 200:
                    with ledger.lock:
                        ledger.acked.update(ids)
                        ledger.acked_bodies.append((ids, body))
                    break
                if resp.status_code in (429, 503):
                    time.sleep(0.1)
                    continue
                with ledger.lock:
                    ledger.unexpected.append(f"{resp.status_code} {resp.text[:200]}")
                break


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sigkill_under_load_loses_no_acknowledged_event_and_stores_none_twice(tmp_path: Path) -> None:
    data_dir = tmp_path / "crash"
    creds = json.loads(run_cli("init", "--data-dir", str(data_dir), "--json").stdout)
    token, write_key = creds["api_token"], creds["write_key"]
    # Small, frequent micro-batches: more warehouse commits for the kills to land in.
    env = {"QUANYU_PIPELINE_INTERVAL_SECONDS": "0.1", "QUANYU_PIPELINE_BATCH_EVENTS": "200"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    rng = random.Random(SEED)
    ledger = Ledger()
    stop = threading.Event()
    server, stderr = launch(data_dir, env=env, port=port)
    threads = [
        threading.Thread(target=_client, args=(url, write_key, t, stop, ledger)) for t in range(CLIENTS)
    ]
    acked_per_run: list[int] = []
    try:
        for t in threads:
            t.start()
        for _ in range(KILLS):
            before = len(ledger.acked)
            time.sleep(rng.uniform(0.3, 1.5))
            os.kill(server.process.pid, signal.SIGKILL)
            assert server.process.wait(timeout=10) == -signal.SIGKILL
            acked_per_run.append(len(ledger.acked) - before)
            server, stderr = launch(data_dir, env=env, port=port)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        assert not ledger.unexpected, ledger.unexpected[:5]
        # The load really ran through the kills (requests were cut off and retried).
        assert len(ledger.acked) >= 1000, (len(ledger.acked), acked_per_run)
        assert ledger.transport_errors > 0
        print(
            f"acked {len(ledger.acked)} (per run {acked_per_run}), transport errors {ledger.transport_errors}"
        )

        first = wait_drained(url, token, timeout=60, settle=0.5)

        # RELIABILITY 2 after the crashes: resend a sample of acknowledged batches, all of them 200.
        sample = random.Random(SEED).sample(ledger.acked_bodies, 8)
        for _, body in sample:
            resp = httpx.post(f"{url}/v1/batch", content=body, headers=basic(write_key), timeout=10)
            assert resp.status_code == 200, resp.text
        resent = sum(len(ids) for ids, _ in sample)
        second = wait_drained(url, token, timeout=60, settle=0.5)
        assert second["processed"] == first["processed"], (first, second)
        assert second["duplicates"] == first["duplicates"] + resent, (first, second)
    finally:
        stop.set()
        server.stop()
    # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is a clean exit here.
    assert server.process.returncode in (0, -signal.SIGTERM), stderr.text()

    counts = warehouse_counts(data_dir)
    stored_twice = {m: n for m, n in counts.items() if n > 1}
    assert not stored_twice, (
        f"{len(stored_twice)} messageIds stored more than once, e.g. {list(stored_twice)[:5]}"
    )
    lost = ledger.acked - set(counts)
    assert not lost, f"{len(lost)} acknowledged messageIds missing, e.g. {sorted(lost)[:5]}"
    assert set(counts) <= ledger.sent, "the warehouse holds messageIds nobody sent"
    # Unacknowledged in-flight requests may or may not have been stored: nothing else to check.


def _accept(platform: Platform, workspace_id: str, source_id: str, messages: list[dict[str, Any]]) -> None:
    source = platform.sources.get(workspace_id, source_id)
    future, receipt = platform.intake.accept(source, messages, None, Envelope())
    future.result()
    assert not receipt.quarantined


def test_crash_between_warehouse_commit_and_queue_cleanup_keeps_counts_right(tmp_path: Path) -> None:
    """The window exactly-once is about: the warehouse committed, the process died before the
    queue rows were deleted. After a restart the events are stored once and the status still
    counts them as processed."""
    settings = make_settings(tmp_path / "data", pipeline_enabled=False)
    platform = Platform(settings)
    tenant = new_tenant(platform)
    _accept(platform, tenant.workspace_id, tenant.source_id, [track(f"w-{i}") for i in range(10)])

    def die(*_: object, **__: object) -> None:
        raise SystemExit("killed after the warehouse commit")

    platform.queue.complete = die  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        platform.pipeline.drain()
    platform.close()

    restarted = Platform(settings)
    try:
        result = restarted.pipeline.drain()
        assert result.recovered_batches == 1 and result.inserted == 0
        _accept(restarted, tenant.workspace_id, tenant.source_id, [track(f"w-{i}") for i in range(10)])
        restarted.pipeline.drain()
        rows = restarted.warehouse.execute(restarted.warehouse.table("events")).to_pylist()
        assert sorted(r["message_id"] for r in rows) == sorted(f"w-{i}" for i in range(10))
        status = _status(restarted, tenant.workspace_id)
        assert status["queued"] == 0
        assert status["processed"] == 10, status
        assert status["duplicates"] == 10, status
    finally:
        restarted.close()


def _status(platform: Platform, workspace_id: str) -> dict[str, Any]:
    """What GET /api/v1/pipeline/status answers for the workspace."""
    return pipeline_status(platform.queue, platform.quarantine, workspace_id)
