"""A brand declares its own identifier type and people are stitched on it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from quanyu.platform import Platform
from testkit import Tenant


def test_declared_type_links_people_and_is_looked_up(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    resp = client.put("/api/v1/identity/types/franchise_crm", headers=tenant.bearer,
                      json={"priority": 75, "max_per_profile": 1, "label": "加盟店CRM号 Franchise CRM",
                            "blocklist": ["NONE"]})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"name": "franchise_crm", "priority": 75, "max_per_profile": 1,
                           "label": "加盟店CRM号 Franchise CRM", "blocklist": ["none"], "builtin": False}  # fmt: skip
    listed = client.get("/api/v1/identity/types", headers=tenant.bearer).json()["items"]
    assert {"franchise_crm", "user_id", "phone"} <= {t["name"] for t in listed}

    crm = {"externalIds": [{"type": "franchise_crm", "id": "FC-0042"}]}
    junk = {"externalIds": [{"type": "franchise_crm", "id": "none"}]}
    batch = [
        {"type": "page", "anonymousId": "shop-cookie", "context": crm},
        {"type": "identify", "userId": "u-77", "context": crm},
        {"type": "page", "anonymousId": "stranger-1", "context": junk},
        {"type": "page", "anonymousId": "stranger-2", "context": junk},
    ]
    assert client.post("/v1/batch", json={"batch": batch, "writeKey": tenant.write_key}).status_code == 200
    platform.pipeline.drain()
    found = client.get("/api/v1/profiles/lookup", params={"type": "franchise_crm", "value": "FC-0042"},
                       headers=tenant.bearer)  # fmt: skip
    assert found.status_code == 200, found.text
    assert {i["type"] for i in found.json()["identifiers"]} == {"franchise_crm", "anonymous_id", "user_id"}
    one = client.get("/api/v1/profiles/lookup", params={"type": "anonymous_id", "value": "stranger-1"},
                     headers=tenant.bearer).json()  # fmt: skip
    two = client.get("/api/v1/profiles/lookup", params={"type": "anonymous_id", "value": "stranger-2"},
                     headers=tenant.bearer).json()  # fmt: skip
    assert one["profile_id"] != two["profile_id"]  # a blocklisted value links nobody


def test_bad_declarations_are_clear_errors(client: TestClient, tenant: Tenant) -> None:
    put = lambda name, body: client.put(f"/api/v1/identity/types/{name}", json=body, headers=tenant.bearer)  # noqa: E731
    resp = put("phone", {"priority": 50, "max_per_profile": 2})
    assert resp.status_code == 409 and resp.json()["code"] == "builtin_identifier_type"
    resp = put("Bad-Name", {"priority": 50, "max_per_profile": 2})
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_identifier_type"
    assert put("ok_name", {"priority": 500, "max_per_profile": 2}).status_code == 400
    assert put("ok_name", {"priority": 50, "max_per_profile": 0}).status_code == 400
