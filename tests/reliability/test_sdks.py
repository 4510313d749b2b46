"""The official SDKs, unchanged, against a live `quanyu serve`: segment-analytics-python and
rudder-sdk-python deliver every call type with its fields, and report no error."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import segment.analytics as analytics
from reliability_support import bearer, launch, running, wait_drained
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from testkit import LiveServer, run_cli

Errors = list[tuple[str, Any]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """One live server (pipeline on) shared by the SDK tests; each test uses its own user ids."""
    data_dir = tmp_path_factory.mktemp("sdk") / "data"
    creds = json.loads(run_cli("init", "--data-dir", str(data_dir), "--json").stdout)
    live, _ = launch(data_dir, env={"QUANYU_PIPELINE_INTERVAL_SECONDS": "0.1"})
    try:
        yield live, creds
    finally:
        live.stop()


def _collector(errors: Errors) -> Callable[[Exception, Any], None]:
    def on_error(error: Exception, batch: Any) -> None:
        errors.append((repr(error), batch))

    return on_error


def _send_all(sdk: Any, prefix: str) -> None:
    """Every Segment call type, with explicit messageIds so each can be looked up."""
    user = f"{prefix}-user"
    sdk.identify(user, {"name": "张三", "plan": "gold"}, message_id=f"{prefix}-identify")
    sdk.track(
        user,
        "Order Completed",
        {"order_id": "o-1", "total": 99.5, "商品": "龙井"},
        message_id=f"{prefix}-track",
    )
    sdk.page(user, "Docs", "首页", {"url": "https://example.cn/"}, message_id=f"{prefix}-page")
    sdk.screen(user, "Home", "主屏", {"tab": "feed"}, message_id=f"{prefix}-screen")
    sdk.group(user, f"{prefix}-group", {"company": "全域"}, message_id=f"{prefix}-group")
    sdk.alias(f"{prefix}-anon", user, message_id=f"{prefix}-alias")


def _wait_events(
    server: LiveServer, token: str, user_id: str, count: int, timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        wait_drained(server.url, token, timeout=timeout)
        resp = httpx.get(
            f"{server.url}/api/v1/events", params={"user_id": user_id, "limit": 100}, headers=bearer(token)
        )
        assert resp.status_code == 200, resp.text
        items = resp.json()["items"]
        if len(items) >= count:
            break
        time.sleep(0.1)
    return {e["message_id"]: e for e in items}


def _check(server: LiveServer, token: str, prefix: str, *, traits_in_context: bool = False) -> None:
    user = f"{prefix}-user"
    events = _wait_events(server, token, user, 6)
    assert sorted(events) == sorted(
        f"{prefix}-{k}" for k in ("identify", "track", "page", "screen", "group", "alias")
    ), events
    now = datetime.now(UTC)
    for kind in ("identify", "track", "page", "screen", "group", "alias"):
        e = events[f"{prefix}-{kind}"]
        assert e["type"] == kind and e["user_id"] == user, e
        assert e["context"]["library"]["name"] == "analytics-python", e["context"]
        assert e["timestamp_flag"] is None
        assert abs(datetime.fromisoformat(e["timestamp"]) - now) < timedelta(minutes=5), e["timestamp"]
    track = events[f"{prefix}-track"]
    assert track["event"] == "Order Completed"
    assert track["properties"] == {"order_id": "o-1", "total": 99.5, "商品": "龙井"}
    assert (track["order_id"], track["amount"], track["currency"]) == ("o-1", 99.5, "CNY")
    assert events[f"{prefix}-page"]["name"] == "首页"
    assert events[f"{prefix}-page"]["properties"] == {"url": "https://example.cn/"}
    assert events[f"{prefix}-screen"]["name"] == "主屏"
    assert events[f"{prefix}-screen"]["properties"] == {"tab": "feed"}
    assert events[f"{prefix}-identify"]["traits"] == {"name": "张三", "plan": "gold"}
    if traits_in_context:  # rudder-sdk-python sends identify traits as context.traits
        assert events[f"{prefix}-identify"]["context"]["traits"] == {"name": "张三", "plan": "gold"}
    assert events[f"{prefix}-group"]["traits"] == {"company": "全域"}


def _group_and_alias_ids(server: LiveServer, prefix: str) -> tuple[str | None, str | None]:
    """groupId / previousId are not in the events API items: read them back from the warehouse copy."""
    copy = server.data_dir.parent / f"{prefix}-warehouse.duckdb"
    for suffix in ("", ".wal"):  # the pipeline is idle (drained): the files are stable
        original = server.data_dir / f"warehouse.duckdb{suffix}"
        if original.exists():
            Path(f"{copy}{suffix}").write_bytes(original.read_bytes())
    con = duckdb.connect(str(copy), read_only=True)
    try:
        group = con.execute(
            "select group_id from events where message_id = ?", [f"{prefix}-group"]
        ).fetchone()
        alias = con.execute(
            "select previous_id from events where message_id = ?", [f"{prefix}-alias"]
        ).fetchone()
    finally:
        con.close()
    return (group[0] if group else None), (alias[0] if alias else None)


def test_segment_module_level_api(
    server: tuple[LiveServer, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    live, creds = server
    errors: Errors = []
    monkeypatch.setattr(analytics, "write_key", creds["write_key"])
    monkeypatch.setattr(analytics, "host", live.url)
    monkeypatch.setattr(analytics, "on_error", _collector(errors))
    monkeypatch.setattr(analytics, "default_client", None)
    try:
        _send_all(analytics, "seg")
        analytics.flush()
    finally:
        analytics.shutdown()
    assert errors == []
    _check(live, creds["api_token"], "seg")


def test_segment_client_with_gzip(server: tuple[LiveServer, dict[str, str]]) -> None:
    live, creds = server
    errors: Errors = []
    client = SegmentClient(creds["write_key"], host=live.url, gzip=True, on_error=_collector(errors))
    try:
        _send_all(client, "segz")
        client.flush()
    finally:
        client.shutdown()
    assert errors == []
    _check(live, creds["api_token"], "segz")


def test_segment_client_sync_mode(server: tuple[LiveServer, dict[str, str]]) -> None:
    """sync_mode posts each call at once and raises on any error."""
    live, creds = server
    client = SegmentClient(creds["write_key"], host=live.url, sync_mode=True)
    _send_all(client, "segsync")
    _check(live, creds["api_token"], "segsync")


def test_rudderstack_client(server: tuple[LiveServer, dict[str, str]]) -> None:
    live, creds = server
    errors: Errors = []
    client = RudderClient(creds["write_key"], host=live.url, on_error=_collector(errors))  # gzip by default
    assert client.gzip is True
    try:
        _send_all(client, "rud")
        client.flush()
    finally:
        client.shutdown()
    assert errors == []
    _check(live, creds["api_token"], "rud", traits_in_context=True)


def test_group_and_alias_ids_are_stored(server: tuple[LiveServer, dict[str, str]]) -> None:
    live, creds = server
    client = SegmentClient(creds["write_key"], host=live.url, sync_mode=True)
    _send_all(client, "ids")
    _check(live, creds["api_token"], "ids")
    assert _group_and_alias_ids(live, "ids") == ("ids-group", "ids-anon")


def test_segment_sdk_rides_out_backpressure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Past the backlog bound the SDK gets 429 + Retry-After, waits, and delivers everything once
    the pipeline catches up: no error reported, nothing lost, nothing doubled."""
    data_dir = tmp_path / "bp"
    creds = json.loads(run_cli("init", "--data-dir", str(data_dir), "--json").stdout)
    env = {"QUANYU_MAX_BACKLOG_EVENTS": "10"}
    caplog.set_level(logging.DEBUG, logger="segment")
    with running(data_dir, "--no-pipeline", env=env) as live:
        errors: Errors = []
        statuses: list[int] = []
        client = SegmentClient(
            creds["write_key"],
            host=live.url,
            on_error=_collector(errors),
            upload_size=10,
            upload_interval=0.05,
        )
        done = threading.Event()

        def pipeline() -> None:  # a slow pipeline: drains every 0.7 s
            while not done.wait(0.7):
                resp = httpx.post(
                    f"{live.url}/api/v1/pipeline/run", headers=bearer(creds["api_token"]), timeout=30
                )
                statuses.append(resp.status_code)

        worker = threading.Thread(target=pipeline)
        worker.start()
        try:
            for i in range(40):
                client.track("bp-user", "Tick", {"i": i}, message_id=f"bp-{i}")
            client.flush()
        finally:
            client.shutdown()
            done.set()
            worker.join()
        httpx.post(f"{live.url}/api/v1/pipeline/run", headers=bearer(creds["api_token"]), timeout=30)
        status = httpx.get(f"{live.url}/api/v1/pipeline/status", headers=bearer(creds["api_token"])).json()
        assert errors == []
        rate_limited = [r for r in caplog.records if "Rate-limited (status 429)" in r.getMessage()]
        assert rate_limited, "the SDK never saw a 429"
        assert statuses and set(statuses) == {200}
        assert (status["queued"], status["processed"]) == (0, 40), status
        resp = httpx.get(
            f"{live.url}/api/v1/events",
            params={"user_id": "bp-user", "limit": 100},
            headers=bearer(creds["api_token"]),
        )
        assert sorted(e["message_id"] for e in resp.json()["items"]) == sorted(f"bp-{i}" for i in range(40))
