"""Segment members out to a webhook: signed batches a local receiver verifies, retries on 5xx
and 429 with the same Idempotency-Key, a refused batch stops the export, private addresses refused."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from profiles.profilekit import Brand, day
from quanyu.platform import Platform
from quanyu.segments import membership, webhook_export
from quanyu.segments.saved import SegmentCreate
from testkit import Tenant

SECRET = "export-secret-山茶"
LOCAL = ["127.0.0.0/8"]


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    script: list[tuple[int, dict[str, str]]]  # answers to give first, then 200
    received: list[dict[str, Any]]
    lock: threading.Lock


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        timestamp = self.headers.get("X-Quanyu-Timestamp", "")
        expected = (
            "v1=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        )
        valid = hmac.compare_digest(self.headers.get("X-Quanyu-Signature", ""), expected)
        with self.server.lock:
            self.server.received.append({"valid": valid, "key": self.headers.get("Idempotency-Key"),
                                         "body": orjson.loads(body)})  # fmt: skip
            status, headers = self.server.script.pop(0) if self.server.script else (200, {})
        if not valid:
            status, headers = 401, {}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@contextmanager
def receiver(*script: tuple[int, dict[str, str]]) -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), Handler)
    server.script, server.received, server.lock = list(script), [], threading.Lock()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url(server: Receiver, path: str = "/members") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


@pytest.fixture
def segment(platform: Platform, tenant: Tenant) -> str:
    brand = Brand(platform, tenant.workspace_id)
    brand.send("website", *[{"type": "track", "userId": f"u{i}", "event": "Signed Up", "timestamp": day(0.1 * i),
                             "context": {"traits": {"phone": f"1380013800{i}"}}} for i in range(5)])  # fmt: skip
    made = platform.segments.create(tenant.workspace_id, SegmentCreate(name="报名用户", definition={
        "conditions": [{"event": "Signed Up"}]}), "test", warehouse=platform.warehouse)  # fmt: skip
    membership.refresh_membership(platform.warehouse, platform.segments, tenant.workspace_id, made["id"])
    return str(made["id"])


def _export(platform: Platform, tenant: Tenant, segment: str, target: str, **kw: Any) -> dict[str, Any]:
    waits: list[float] = kw.pop("waits", [])
    return webhook_export.export_to_webhook(platform.warehouse, tenant.workspace_id, segment, target, SECRET,
                                            allow=LOCAL, sleep=waits.append, **kw)  # fmt: skip


def test_members_arrive_in_signed_batches(platform: Platform, tenant: Tenant, segment: str) -> None:
    with receiver() as srv:
        report = _export(platform, tenant, segment, url(srv), batch_size=2)
    assert report["status"] == "sent"
    assert (report["batches"], report["batches_sent"], report["members"], report["members_sent"]) == (
        3,
        3,
        5,
        5,
    )
    assert all(r["valid"] for r in srv.received)
    bodies = [r["body"] for r in srv.received]
    assert [b["batch"] for b in bodies] == [1, 2, 3] and {b["total"] for b in bodies} == {5}
    assert sum(len(b["members"]) for b in bodies) == 5
    assert len({m["profile_id"] for b in bodies for m in b["members"]}) == 5
    assert [r["key"] for r in srv.received] == [f"{report['export_id']}:{n}" for n in (1, 2, 3)]


def test_5xx_and_429_are_retried_with_backoff(platform: Platform, tenant: Tenant, segment: str) -> None:
    waits: list[float] = []
    with receiver((503, {}), (429, {"Retry-After": "3"}), (502, {})) as srv:
        report = _export(platform, tenant, segment, url(srv), batch_size=5, waits=waits)
    assert report["status"] == "sent" and report["members_sent"] == 5 and report["attempts"] == 4
    assert waits == [1.0, 3.0, 4.0]  # backoff, Retry-After, backoff
    assert len({r["key"] for r in srv.received}) == 1  # one batch, the same key on every attempt


def test_a_refused_batch_stops_the_export(platform: Platform, tenant: Tenant, segment: str) -> None:
    with receiver((200, {}), (400, {})) as srv:
        report = _export(platform, tenant, segment, url(srv), batch_size=2)
    assert report["status"] == "failed" and report["failed_batch"] == 2
    assert (report["batches_sent"], report["members_sent"]) == (1, 2)
    assert report["error"].startswith("HTTP 400") and len(srv.received) == 2


def test_gives_up_after_the_last_attempt(platform: Platform, tenant: Tenant, segment: str) -> None:
    with receiver(*[(500, {})] * webhook_export.MAX_ATTEMPTS) as srv:
        report = _export(platform, tenant, segment, url(srv))
    assert report["status"] == "failed" and report["attempts"] == webhook_export.MAX_ATTEMPTS
    assert report["members_sent"] == 0 and len(srv.received) == webhook_export.MAX_ATTEMPTS


def test_through_the_api_private_addresses_are_refused(
    client: TestClient, tenant: Tenant, segment: str
) -> None:
    with receiver() as srv:
        body = {"url": url(srv), "secret": SECRET, "format": "json", "batch_size": 3}
        resp = client.post(f"/api/v1/segments/{segment}/export/webhook", json=body, headers=tenant.bearer)
        assert resp.status_code == 400 and resp.json()["code"] == "private_address"
        assert srv.received == []
        resp = client.post(f"/api/v1/segments/{segment}/export/webhook", json={**body, "allow": LOCAL},
                           headers=tenant.bearer)  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json()["batches_sent"] == 2 and resp.json()["members_sent"] == 5
    assert all(r["valid"] for r in srv.received)
    for target in ("http://169.254.169.254/latest", "file:///etc/passwd", "http://10.0.0.1/"):
        resp = client.post(f"/api/v1/segments/{segment}/export/webhook", json={**body, "url": target},
                           headers=tenant.bearer)  # fmt: skip
        assert resp.status_code == 400 and resp.json()["code"] == "private_address", target
    missing = client.post("/api/v1/segments/seg_nope/export/webhook", json=body, headers=tenant.bearer)
    assert missing.status_code == 404


def test_cli_export_webhook_locally(tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from cli.test_segments_cli import BUYERS, shop_dir
    from quanyu.cli.main import app

    runner = CliRunner()
    d = shop_dir(tmp_path)
    definition = tmp_path / "buyers.json"
    definition.write_text(json.dumps(BUYERS))
    made = json.loads(runner.invoke(app, ["segments", "create", str(definition), "--name", "买家", "--data-dir", d,
                                          "--json"]).stdout)  # fmt: skip
    runner.invoke(app, ["segments", "refresh", made["id"], "--data-dir", d])
    with receiver() as srv:
        args = ["segments", "export-webhook", made["id"], "--url", url(srv), "--batch-size", "2",
                "--allow", "127.0.0.0/8", "--data-dir", d]  # fmt: skip
        done = runner.invoke(app, [*args, "--json"], env={"QUANYU_EXPORT_SECRET": SECRET})
        assert done.exit_code == 0, done.output
        report = json.loads(done.stdout)
        assert (report["members_sent"], report["batches_sent"]) == (3, 2) and all(
            r["valid"] for r in srv.received
        )
        refused = runner.invoke(app, [*args[:-4], "--secret", SECRET, "--data-dir", d])
    assert refused.exit_code == 1 and "private" in refused.output
