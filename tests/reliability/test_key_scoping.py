"""RELIABILITY 14: write keys only write, management tokens only manage, a key never reaches
another workspace, and neither keys, tokens nor connector secrets are stored or echoed in clear."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from reliability_support import (
    assert_error_shape,
    basic,
    bearer,
    scan_files,
    track,
    warehouse_rows_containing,
)

from quanyu.platform import Platform
from quanyu.settings import Settings
from testkit import Tenant, new_tenant, run_cli

MANAGEMENT = [
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/events/stats"),
    ("GET", "/api/v1/pipeline/status"),
    ("POST", "/api/v1/pipeline/run"),
    ("GET", "/api/v1/sources"),
    ("POST", "/api/v1/sources"),
    ("GET", "/api/v1/quarantine"),
    ("POST", "/api/v1/quarantine/replay"),
]


def _status(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    resp = client.get("/api/v1/pipeline/status", headers=tenant.bearer)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _events(client: TestClient, tenant: Tenant) -> list[dict[str, Any]]:
    resp = client.get("/api/v1/events", params={"limit": 1000}, headers=tenant.bearer)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("method", "path"), MANAGEMENT)
def test_write_key_cannot_call_the_management_api(
    client: TestClient, tenant: Tenant, method: str, path: str
) -> None:
    body = {"name": "x", "type": "website"} if path == "/api/v1/sources" else {"ids": [1]}
    for headers in (basic(tenant.write_key), bearer(tenant.write_key), {}):
        resp = client.request(method, path, headers=headers, json=body if method == "POST" else None)
        assert_error_shape(resp, 401)


@pytest.mark.parametrize("kind", ["batch", "track", "identify"])
def test_management_token_cannot_write_events(
    client: TestClient, tenant: Tenant, platform: Platform, kind: str
) -> None:
    message = track("by-token")
    body: dict[str, Any] = {"batch": [message]} if kind == "batch" else dict(message)
    assert_error_shape(client.post(f"/v1/{kind}", json=body, headers=tenant.bearer), 401, "missing_write_key")
    assert_error_shape(
        client.post(f"/v1/{kind}", json=body, headers=basic(tenant.token)), 401, "invalid_write_key"
    )
    assert_error_shape(
        client.post(f"/v1/{kind}", json={**body, "writeKey": tenant.token}), 401, "invalid_write_key"
    )
    platform.pipeline.drain()
    status = _status(client, tenant)
    assert (status["queued"], status["processed"], status["quarantined"]) == (0, 0, 0)


@pytest.mark.parametrize("kind", ["batch", "track"])
def test_body_key_of_another_workspace_is_refused_and_nothing_is_stored(
    client: TestClient, tenant: Tenant, platform: Platform, kind: str
) -> None:
    other = new_tenant(platform, name="别的品牌 Other")
    message = track("cross")
    body: dict[str, Any] = {"batch": [message]} if kind == "batch" else dict(message)
    resp = client.post(
        f"/v1/{kind}", json={**body, "writeKey": other.write_key}, headers=basic(tenant.write_key)
    )
    assert_error_shape(resp, 401, "write_key_mismatch")
    platform.pipeline.drain()
    for t in (tenant, other):
        status = _status(client, t)
        assert (status["queued"], status["processed"], status["quarantined"]) == (0, 0, 0)
        assert _events(client, t) == []


def test_body_key_alone_works_and_lands_in_its_own_workspace(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    other = new_tenant(platform, name="别的品牌 Other")
    resp = client.post("/v1/batch", json={"writeKey": other.write_key, "batch": [track("b-1")]})
    assert resp.status_code == 200, resp.text
    resp = client.post("/v1/track", json={**track("b-2"), "writeKey": other.write_key})
    assert resp.status_code == 200, resp.text
    platform.pipeline.drain()
    assert sorted((e["message_id"], e["source_id"]) for e in _events(client, other)) == [
        ("b-1", other.source_id),
        ("b-2", other.source_id),
    ]
    assert _events(client, tenant) == []


def test_header_key_wins_over_a_body_key_of_the_same_workspace(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    second = platform.sources.create(tenant.workspace_id, "门店 POS", "pos")
    resp = client.post(
        "/v1/batch",
        json={"writeKey": second.write_key, "batch": [track("h-1")]},
        headers=basic(tenant.write_key),
    )
    assert resp.status_code == 200, resp.text
    platform.pipeline.drain()
    [event] = _events(client, tenant)
    assert event["source_id"] == tenant.source_id


@pytest.mark.parametrize(
    ("headers", "body_key", "code"),
    [
        (basic("wk_not_a_key"), None, "invalid_write_key"),
        ({}, "wk_not_a_key", "invalid_write_key"),
        ({"Authorization": "Basic %%%"}, None, "invalid_write_key"),
        ({}, None, "missing_write_key"),
        ({}, "", "missing_write_key"),
        (basic(""), None, "missing_write_key"),
    ],
)
def test_wrong_or_missing_key_is_401(
    client: TestClient,
    platform: Platform,
    tenant: Tenant,
    headers: dict[str, str],
    body_key: str | None,
    code: str,
) -> None:
    body: dict[str, Any] = {"batch": [track("nope")]}
    if body_key is not None:
        body["writeKey"] = body_key
    assert_error_shape(client.post("/v1/batch", json=body, headers=headers), 401, code)
    platform.pipeline.drain()
    assert _status(client, tenant)["processed"] == 0


def test_a_token_sees_and_replays_only_its_own_workspace(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    other = new_tenant(platform, name="别的品牌 Other")
    client.post("/v1/batch", json={"batch": [track("mine")]}, headers=basic(tenant.write_key))
    client.post(
        "/v1/batch", json={"batch": [track("theirs"), {"type": "track"}]}, headers=basic(other.write_key)
    )
    platform.pipeline.drain()
    assert [e["message_id"] for e in _events(client, tenant)] == ["mine"]
    assert client.get("/api/v1/quarantine", headers=tenant.bearer).json()["items"] == []
    [theirs] = client.get("/api/v1/quarantine", headers=other.bearer).json()["items"]
    resp = client.post(
        "/api/v1/quarantine/replay",
        json={"ids": [theirs["id"]], "payload": track("hijack")},
        headers=tenant.bearer,
    )
    assert_error_shape(resp, 404)
    platform.pipeline.drain()
    assert [e["message_id"] for e in _events(client, tenant)] == ["mine"]
    assert [e["message_id"] for e in _events(client, other)] == ["theirs"]
    listed = client.get("/api/v1/sources", headers=tenant.bearer).json()
    assert {s["workspace_id"] for s in listed} == {tenant.workspace_id}


def test_keys_and_tokens_are_not_stored_in_plaintext(
    client: TestClient, tenant: Tenant, platform: Platform, settings: Settings
) -> None:
    other = new_tenant(platform, name="别的品牌 Other")
    # Use every credential, including keys carried in bodies of accepted and quarantined messages.
    client.post("/v1/track", json={**track("k-1"), "writeKey": tenant.write_key})
    client.post("/v1/track", json={"writeKey": tenant.write_key, "userId": "u"})  # quarantined: no event
    client.post(
        "/v1/batch",
        json={"writeKey": other.write_key, "batch": [track("k-2"), {"writeKey": other.write_key}]},
    )
    client.get("/api/v1/events", headers=tenant.bearer)
    client.get("/api/v1/events", headers=other.bearer)
    platform.pipeline.drain()
    assert _status(client, tenant)["quarantined"] == 1
    assert _status(client, other)["quarantined"] == 1
    assert {e["message_id"] for e in _events(client, tenant)} == {"k-1"}
    platform.close()  # flush everything to the files
    needles = {
        "write key A": tenant.write_key,
        "write key B": other.write_key,
        "token A": tenant.token,
        "token B": other.token,
    }
    files = sorted(p.name for p in settings.data_dir.rglob("*") if p.is_file())
    assert "quanyu.db" in files and "warehouse.duckdb" in files
    assert scan_files(settings.data_dir, needles) == {}
    for needle in needles.values():
        assert warehouse_rows_containing(settings.data_dir, needle) == 0
    # Controls: the scans do see what is stored.
    assert scan_files(settings.data_dir, {"name": "别的品牌 Other"}) == {"name": ["quanyu.db"]}
    assert warehouse_rows_containing(settings.data_dir, "k-1") == 1


def test_init_stores_no_plaintext_credentials(tmp_path: Path) -> None:
    data_dir = tmp_path / "init"
    creds = json.loads(run_cli("init", "--data-dir", str(data_dir), "--json").stdout)
    assert scan_files(data_dir, {"token": creds["api_token"], "write key": creds["write_key"]}) == {}


def test_sources_never_return_write_keys_or_secret_settings(
    client: TestClient, tenant: Tenant, platform: Platform, settings: Settings
) -> None:
    resp = client.post(
        "/api/v1/sources",
        json={
            "name": "公众号 Official account",
            "type": "wechat_oa",
            "settings": {"token": "s3cret", "app_id": "wx1"},
        },
        headers=tenant.bearer,
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    write_key = created["write_key"]  # shown once, at creation
    assert created["settings"] == {"app_id": "wx1"}
    assert created["secret_settings"] == ["token"]
    assert "s3cret" not in resp.text

    # The new key works.
    assert client.post("/v1/track", json=track("oa-1"), headers=basic(write_key)).status_code == 200

    listed = client.get("/api/v1/sources", headers=tenant.bearer)
    assert listed.status_code == 200, listed.text
    for source in listed.json():
        assert "write_key" not in source
        assert source["write_key_hint"]
    for secret in ("s3cret", write_key, tenant.write_key):
        assert secret not in listed.text
    [oa] = [s for s in listed.json() if s["id"] == created["id"]]
    assert oa["settings"] == {"app_id": "wx1"} and oa["secret_settings"] == ["token"]
    assert write_key.endswith(oa["write_key_hint"].rsplit("…", 1)[-1])

    # Kept, encrypted: the server can still read it back, the files do not show it.
    assert platform.sources.secret_settings(tenant.workspace_id, created["id"]) == {"token": "s3cret"}
    platform.pipeline.drain()
    platform.close()
    assert scan_files(settings.data_dir, {"secret": "s3cret", "write key": write_key}) == {}
    assert scan_files(settings.data_dir, {"plain setting": "wx1"}) == {"plain setting": ["quanyu.db"]}
