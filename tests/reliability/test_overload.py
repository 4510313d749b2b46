"""RELIABILITY 4 and 5: back-pressure. Past the backlog bounds the collector answers 429 with a
numeric Retry-After, loses nothing it acknowledged, recovers once the pipeline drained, and one
flooding workspace does not block another (per-workspace quota)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from reliability_support import assert_error_shape, basic, bearer, running, track, warehouse_counts

from quanyu.platform import Platform
from quanyu.settings import Settings
from testkit import Tenant, make_settings, new_tenant, run_cli

GLOBAL_BOUND = 100
WORKSPACE_BOUND = 60


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Overrides the shared fixture: small bounds, no background pipeline."""
    return make_settings(
        tmp_path / "data",
        pipeline_enabled=False,
        max_backlog_events=GLOBAL_BOUND,
        max_workspace_backlog_events=WORKSPACE_BOUND,
    )


def _batch(prefix: str, n: int = 20) -> dict[str, Any]:
    return {"batch": [track(f"{prefix}-{i}") for i in range(n)]}


def _retry_after(resp: httpx.Response) -> int:
    assert_error_shape(resp, 429, "backlog_full")
    value = resp.headers.get("retry-after")
    assert value is not None and value.isdigit(), resp.headers
    seconds = int(value)
    assert 1 <= seconds <= 60
    return seconds


def _rows(platform: Platform, tenant: Tenant) -> Counter[str]:
    t = platform.warehouse.table("events")
    rows = platform.warehouse.execute(t.filter(t.workspace_id == tenant.workspace_id).select("message_id"))
    return Counter(rows.column("message_id").to_pylist())


def _send_until_refused(client: TestClient, tenant: Tenant, prefix: str) -> tuple[set[str], httpx.Response]:
    """Send 20-event batches until a 429; return the acknowledged messageIds and the 429."""
    acked: set[str] = set()
    for n in range(20):
        body = _batch(f"{prefix}{n}")
        resp = client.post("/v1/batch", json=body, headers=basic(tenant.write_key))
        if resp.status_code == 429:
            return acked, resp
        assert resp.status_code == 200, resp.text
        acked.update(m["messageId"] for m in body["batch"])
    raise AssertionError("never answered 429")


def test_past_the_workspace_bound_429_then_recovers_after_drain(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    acked, refused = _send_until_refused(client, tenant, "a")
    assert len(acked) == WORKSPACE_BOUND  # 3 batches of 20 accepted, the 4th refused
    wait = _retry_after(refused)
    # Every entry point of the workspace is refused, and a refused request stores nothing.
    single = client.post("/v1/track", json=track("single"), headers=basic(tenant.write_key))
    assert _retry_after(single) >= 1
    status = client.get("/api/v1/pipeline/status", headers=tenant.bearer).json()
    assert status["queued"] == WORKSPACE_BOUND

    platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter(dict.fromkeys(acked, 1))  # nothing acknowledged lost

    # A client that honours Retry-After gets through once the pipeline has drained.
    deadline = time.monotonic() + wait + 1.0
    retry = _batch("a3")  # the batch that was refused, sent again
    while True:
        resp = client.post("/v1/batch", json=retry, headers=basic(tenant.write_key))
        if resp.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert resp.status_code == 200, resp.text
    platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter(dict.fromkeys(acked | {f"a3-{i}" for i in range(20)}, 1))


def test_one_workspace_past_its_quota_does_not_block_another(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    other = new_tenant(platform, name="别的品牌 Other")
    flooded, refused = _send_until_refused(client, tenant, "flood")
    _retry_after(refused)

    # The other workspace is under its own quota and the total is under the global bound.
    accepted: set[str] = set()
    for n in range(2):
        body = _batch(f"calm{n}")
        resp = client.post("/v1/batch", json=body, headers=basic(other.write_key))
        assert resp.status_code == 200, resp.text
        accepted.update(m["messageId"] for m in body["batch"])
    # Now 60 + 40 = the global bound: everyone waits.
    resp = client.post("/v1/batch", json=_batch("calm2"), headers=basic(other.write_key))
    _retry_after(resp)
    resp = client.post("/v1/batch", json=_batch("flood-more"), headers=basic(tenant.write_key))
    _retry_after(resp)

    platform.pipeline.drain()
    assert _rows(platform, tenant) == Counter(dict.fromkeys(flooded, 1))
    assert _rows(platform, other) == Counter(dict.fromkeys(accepted, 1))


def test_live_server_bounds_from_environment(tmp_path: Path) -> None:
    """The same through `quanyu serve --no-pipeline` configured by QUANYU_* variables."""
    data_dir = tmp_path / "live"
    creds = json.loads(run_cli("init", "--data-dir", str(data_dir), "--json").stdout)
    env = {"QUANYU_MAX_BACKLOG_EVENTS": "50", "QUANYU_MAX_WORKSPACE_BACKLOG_EVENTS": "1000"}
    acked: set[str] = set()
    with running(data_dir, "--no-pipeline", env=env) as server:
        auth = basic(creds["write_key"])
        refused: httpx.Response | None = None
        for n in range(10):
            body = _batch(f"live{n}", 25)
            resp = httpx.post(f"{server.url}/v1/batch", json=body, headers=auth, timeout=10)
            if resp.status_code == 429:
                refused = resp
                break
            assert resp.status_code == 200, resp.text
            acked.update(m["messageId"] for m in body["batch"])
        assert refused is not None and len(acked) == 50
        wait = _retry_after(refused)
        status = httpx.get(f"{server.url}/api/v1/pipeline/status", headers=bearer(creds["api_token"])).json()
        assert status["queued"] == 50 and status["processed"] == 0

        run = httpx.post(f"{server.url}/api/v1/pipeline/run", headers=bearer(creds["api_token"]), timeout=30)
        assert run.status_code == 200 and run.json()["inserted"] == 50, run.text
        time.sleep(wait)
        body = _batch("after", 10)
        resp = httpx.post(f"{server.url}/v1/batch", json=body, headers=auth, timeout=10)
        assert resp.status_code == 200, resp.text
        acked.update(m["messageId"] for m in body["batch"])
        httpx.post(f"{server.url}/api/v1/pipeline/run", headers=bearer(creds["api_token"]), timeout=30)
    assert warehouse_counts(data_dir) == Counter(dict.fromkeys(acked, 1))
