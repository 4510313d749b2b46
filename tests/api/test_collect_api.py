"""The Segment-compatible tracking API, as a client sees it."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from quanyu.platform import Platform
from testkit import Tenant, new_tenant


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def events(client: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    resp = client.get("/api/v1/events", params=params, headers=tenant.bearer)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["identify", "track", "page", "screen", "group", "alias"])
def test_each_endpoint_accepts_a_valid_message(
    client: TestClient, tenant: Tenant, platform: Platform, kind: str
) -> None:
    body = {"userId": "u1", "event": "Signed Up", "groupId": "g1", "previousId": "anon-1", "name": "首页"}
    resp = client.post(f"/v1/{kind}", json=body, headers=basic(tenant.write_key))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"success": True, "accepted": 1, "quarantined": []}
    platform.pipeline.drain()
    [item] = events(client, tenant)
    assert item["type"] == kind and item["user_id"] == "u1" and item["channel"] == "website"


def test_write_key_in_body_works_without_header(client: TestClient, tenant: Tenant) -> None:
    resp = client.post("/v1/track", json={"writeKey": tenant.write_key, "userId": "u", "event": "E"})
    assert resp.status_code == 200


def test_body_key_of_another_workspace_is_refused(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    other = new_tenant(platform, name="别的品牌 Other")
    resp = client.post(
        "/v1/batch",
        json={"writeKey": other.write_key, "batch": [{"type": "track", "userId": "u", "event": "E"}]},
        headers=basic(tenant.write_key),
    )
    assert resp.status_code == 401
    assert resp.json()["code"] == "write_key_mismatch"
    platform.pipeline.drain()
    assert events(client, other) == [] and events(client, tenant) == []


@pytest.mark.parametrize("headers", [{}, basic("wk_nope"), {"Authorization": "Basic !!!"}])
def test_missing_or_bad_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    resp = client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=headers)
    assert resp.status_code == 401
    assert set(resp.json()) >= {"code", "message"}


def test_batch_with_invalid_items_accepts_the_valid_ones(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    batch = [
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "ok-1"},
        {"type": "track", "userId": "u1"},
        {"type": "identify", "traits": {"phone": "138"}},
        {"type": "page", "anonymousId": "a1", "messageId": "ok-2"},
    ]
    resp = client.post("/v1/batch", json={"batch": batch}, headers=basic(tenant.write_key))
    assert resp.status_code == 200
    body = resp.json()
    assert body["accepted"] == 2
    assert [(q["index"], q["code"]) for q in body["quarantined"]] == [
        (1, "missing_field"),
        (2, "missing_identity"),
    ]
    platform.pipeline.drain()
    assert sorted(i["message_id"] for i in events(client, tenant)) == ["ok-1", "ok-2"]
    listed = client.get("/api/v1/quarantine", headers=tenant.bearer).json()["items"]
    assert sorted(e["code"] for e in listed) == ["missing_field", "missing_identity"]


def test_all_invalid_single_event_is_400_and_quarantined(client: TestClient, tenant: Tenant) -> None:
    resp = client.post("/v1/track", json={"userId": "u"}, headers=basic(tenant.write_key))
    assert resp.status_code == 400
    assert resp.json()["code"] == "missing_field"
    assert len(client.get("/api/v1/quarantine", headers=tenant.bearer).json()["items"]) == 1


def test_quarantined_message_can_be_corrected_and_replayed(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    client.post("/v1/track", json={"userId": "u9", "messageId": "fix-me"}, headers=basic(tenant.write_key))
    [entry] = client.get("/api/v1/quarantine", headers=tenant.bearer).json()["items"]
    fixed = {**orjson.loads(entry["payload"]), "event": "Coupon Applied"}
    resp = client.post(
        "/api/v1/quarantine/replay", json={"ids": [entry["id"]], "payload": fixed}, headers=tenant.bearer
    )
    assert resp.json() == {"replayed": [entry["id"]], "failed": []}
    platform.pipeline.drain()
    assert [i["event"] for i in events(client, tenant)] == ["Coupon Applied"]
    assert client.get("/api/v1/quarantine", headers=tenant.bearer).json()["items"] == []


def test_gzip_batch_is_accepted(client: TestClient, tenant: Tenant) -> None:
    body = gzip.compress(orjson.dumps({"batch": [{"type": "identify", "userId": "u"}]}))
    headers = {**basic(tenant.write_key), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert client.post("/v1/batch", content=body, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/track", b"{not json", 400, "invalid_json"),
        ("/v1/track", b"[1,2]", 400, "invalid_json"),
        ("/v1/batch", b'{"batch": "x"}', 400, "invalid_batch"),
        ("/v1/batch", b'{"batch": []}', 400, "invalid_batch"),
        ("/v1/batch", orjson.dumps({"batch": [{"type": "identify", "userId": "u"}] * 2501}), 413, "batch_too_large"),
        ("/v1/batch", orjson.dumps({"batch": [{"type": "identify", "userId": "u", "traits": {"x": "y" * 30000}}] * 20}),
         413, "request_too_large"),
        ("/v1/track", orjson.dumps({"userId": "u", "event": "E", "properties": {"x": "y" * 40000}}), 413,
         "request_too_large"),
    ],
)  # fmt: skip
def test_bad_requests_get_the_error_shape(
    client: TestClient, tenant: Tenant, path: str, body: bytes, status: int, code: str
) -> None:
    headers = {**basic(tenant.write_key), "Content-Type": "application/json"}
    resp = client.post(path, content=body, headers=headers)
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == code and resp.json()["message"]


def test_backlog_bound_answers_429_with_retry_after(tmp_path: Any) -> None:
    from quanyu.api import create_app
    from testkit import make_settings

    settings = make_settings(tmp_path / "d", pipeline_enabled=False, max_backlog_events=3)
    platform = Platform(settings)
    tenant = new_tenant(platform)
    batch = {"batch": [{"type": "identify", "userId": f"u{i}"} for i in range(3)]}
    with TestClient(create_app(settings, platform)) as client:
        assert client.post("/v1/batch", json=batch, headers=basic(tenant.write_key)).status_code == 200
        platform.backlog._refreshed = 0  # the gauge re-reads the queue at most twice a second
        resp = client.post("/v1/batch", json=batch, headers=basic(tenant.write_key))
        assert resp.status_code == 429
        assert int(resp.headers["Retry-After"]) >= 1
        assert resp.json()["code"] == "backlog_full"
        platform.pipeline.drain()
        platform.backlog._refreshed = 0
        assert client.post("/v1/batch", json=batch, headers=basic(tenant.write_key)).status_code == 200


def test_storage_failure_answers_503_and_stores_nothing(client: TestClient, tenant: Tenant, platform: Platform,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from sqlalchemy.exc import OperationalError

    def broken(*_: Any) -> None:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(platform.queue, "append_in", broken)
    resp = client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=basic(tenant.write_key))
    assert resp.status_code == 503
    assert resp.json()["code"] == "storage_unavailable"
    monkeypatch.undo()
    assert platform.queue.backlog() == {}
