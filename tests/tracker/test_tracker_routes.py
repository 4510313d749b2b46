"""The tracker's routes: the script, the Segment-style settings, CORS on the public routes only."""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient

from quanyu.platform import Platform
from quanyu.tracker import script
from testkit import Tenant

ORIGIN = {"Origin": "https://shop.example.com"}


def test_script_is_javascript_cached_and_revalidated(client: TestClient) -> None:
    resp = client.get("/js/quanyu.js")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/javascript; charset=utf-8"
    assert resp.headers["cache-control"] == "public, max-age=3600"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.content == script().body and b"quanyu.js" in resp.content
    etag = resp.headers["etag"]
    again = client.get("/js/quanyu.js", headers={"If-None-Match": f'W/"other", {etag}'})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get("/js/quanyu.js", headers={"If-None-Match": '"stale"'}).status_code == 200


def test_segment_snippet_path_serves_the_same_script_for_known_keys(
    client: TestClient, tenant: Tenant
) -> None:
    resp = client.get(f"/analytics.js/v1/{tenant.write_key}/analytics.min.js")
    assert resp.status_code == 200 and resp.content == script().body
    missing = client.get("/analytics.js/v1/wk_nope/analytics.min.js")
    assert missing.status_code == 404
    assert missing.json() == {"code": "write_key_not_found", "message": "写入密钥不存在 / unknown write key"}


def test_settings_name_the_api_host(client: TestClient, tenant: Tenant) -> None:
    resp = client.get(f"/v1/projects/{tenant.write_key}/settings")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    quanyu = body["integrations"]["Quanyu"]
    assert quanyu["apiKey"] == tenant.write_key
    assert quanyu["apiHost"] == "testserver/v1" and quanyu["protocol"] == "http"
    assert quanyu["scriptUrl"] == "http://testserver/js/quanyu.js"
    assert quanyu["library"] == {"name": "quanyu.js", "version": script().version}
    assert body["plan"]["track"]["__default"]["enabled"] is True
    # Nothing about the workspace or source leaks through a public, key-addressed route.
    assert tenant.workspace_id not in resp.text and tenant.source_id not in resp.text


def test_settings_use_the_public_url_when_set(client: TestClient, tenant: Tenant, platform: Platform) -> None:
    platform.settings.public_url = "https://cdp.example.com/quanyu/"
    quanyu = client.get(f"/v1/projects/{tenant.write_key}/settings").json()["integrations"]["Quanyu"]
    assert quanyu["apiHost"] == "cdp.example.com/quanyu/v1" and quanyu["protocol"] == "https"
    assert quanyu["scriptUrl"] == "https://cdp.example.com/quanyu/js/quanyu.js"


def test_unknown_write_key_settings_are_a_404_in_the_error_shape(client: TestClient) -> None:
    resp = client.get("/v1/projects/wk_unknown/settings", headers=ORIGIN)
    assert resp.status_code == 404
    assert resp.json() == {"code": "write_key_not_found", "message": "写入密钥不存在 / unknown write key"}
    # Readable by the page that asked.
    assert resp.headers["access-control-allow-origin"] == "*"


def test_preflight_for_collection_allows_any_origin_without_credentials(client: TestClient) -> None:
    resp = client.options(
        "/v1/batch",
        headers={**ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"},
    )  # fmt: skip
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == "*"
    assert "POST" in resp.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in resp.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "content-encoding"} <= allowed
    assert "access-control-allow-credentials" not in resp.headers


def test_beacon_style_body_is_accepted_cross_origin(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    """What sendBeacon sends: text/plain, the write key in the body, no Authorization header."""
    body = {"writeKey": tenant.write_key, "sentAt": "2026-11-30T08:00:00Z",
            "batch": [{"type": "track", "event": "Beacon Sent", "anonymousId": "anon-b"}]}  # fmt: skip
    resp = client.post(
        "/v1/batch",
        content=orjson.dumps(body),
        headers={**ORIGIN, "Content-Type": "text/plain;charset=UTF-8"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 1
    assert resp.headers["access-control-allow-origin"] == "*"
    # Errors are readable cross-origin too, so the tracker can tell a refusal from a network failure.
    refused = client.post("/v1/batch", content=b"{}", headers={**ORIGIN, "Content-Type": "text/plain"})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "*"
    platform.pipeline.drain()
    items = client.get("/api/v1/events", params={"anonymous_id": "anon-b"}, headers=tenant.bearer).json()[
        "items"
    ]
    assert [i["event"] for i in items] == ["Beacon Sent"]


def test_management_api_gets_no_cors(client: TestClient, tenant: Tenant) -> None:
    resp = client.get("/api/v1/events", headers={**ORIGIN, **tenant.bearer})
    assert resp.status_code == 200 and "access-control-allow-origin" not in resp.headers
    preflight = client.options("/api/v1/events", headers={**ORIGIN, "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers
