"""The profile APIs as a console or a script uses them: find a shopper, read their journey
across channels, see why identifiers were joined, and split a wrong merge."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from quanyu.platform import Platform
from testkit import Tenant

JOURNEY = [
    # The seed's shopper: an ad on Douyin, a Youzan coupon, a Tmall order, then WeChat.
    {"type": "track", "event": "Ad Clicked", "anonymousId": "dy-anon-1", "timestamp": "2026-04-01T09:00:00Z",
     "context": {"externalIds": [{"type": "douyin_id", "id": "dy_778"}]}},
    {"type": "track", "event": "Coupon Received", "anonymousId": "dy-anon-1", "timestamp": "2026-04-02T09:00:00Z",
     "properties": {"coupon": "SPRING20"}, "context": {"traits": {"phone": "13800005678"}}},
    {"type": "track", "event": "Order Completed", "anonymousId": "tm-session-1", "timestamp": "2026-04-03T09:00:00Z",
     "context": {"traits": {"phone": "138 0000 5678"}, "externalIds": [{"type": "tmall_buyer_id", "id": "tb_55"}]},
     "properties": {"order_id": "T-1", "total": 268.0, "currency": "CNY", "coupon": "SPRING20",
                    "products": [{"sku": "LJ-250", "name": "龙井 Longjing 250g", "price": 268.0, "quantity": 1}]}},
    {"type": "identify", "anonymousId": "wx-session-1", "timestamp": "2026-04-04T09:00:00Z",
     "traits": {"phone": "13800005678"},
     "context": {"externalIds": [{"type": "wechat_openid", "id": "oWX-9", "app_id": "wx_tea"}]}},
    {"type": "track", "event": "Page Viewed", "userId": "someone-else", "timestamp": "2026-04-05T09:00:00Z"},
]  # fmt: skip


def seed(client: TestClient, tenant: Tenant, platform: Platform, batch: list[dict[str, Any]]) -> None:
    resp = client.post("/v1/batch", json={"batch": batch, "writeKey": tenant.write_key})
    assert resp.status_code == 200, resp.text
    assert not resp.json().get("quarantined"), resp.text
    platform.pipeline.drain()


def get(client: TestClient, tenant: Tenant, path: str, status: int = 200, **params: Any) -> Any:
    resp = client.get(path, params=params, headers=tenant.bearer)
    assert resp.status_code == status, resp.text
    return resp.json()


def test_lookup_profile_and_cross_channel_timeline(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    seed(client, tenant, platform, JOURNEY)
    person = get(client, tenant, "/api/v1/profiles/lookup", type="phone", value="+86 138-0000-5678")
    types = {i["type"] for i in person["identifiers"]}
    assert {"douyin_id", "tmall_buyer_id", "wechat_openid", "phone", "anonymous_id"} <= types
    assert (
        get(client, tenant, "/api/v1/profiles/lookup", type="wechat_openid", value="oWX-9", scope="wx_tea")
        == person
    )
    detail = get(client, tenant, f"/api/v1/profiles/{person['profile_id']}")
    assert {k: detail[k] for k in person} == person

    pages, cursor = [], None
    while True:
        body = get(client, tenant, f"/api/v1/profiles/{person['profile_id']}/timeline", limit=2, order="asc",
                   **({"cursor": cursor} if cursor else {}))  # fmt: skip
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    events = [e for p in pages for e in p]
    assert [e["event"] or e["type"] for e in events] == [
        "Ad Clicked",
        "Coupon Received",
        "Order Completed",
        "identify",
    ]
    order = events[2]
    assert (
        order["amount"] == 268.0 and order["coupon"] == "SPRING20" and order["products"][0]["sku"] == "LJ-250"
    )


def test_unknown_identifier_is_a_404_in_the_error_shape(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    seed(client, tenant, platform, JOURNEY)
    body = get(client, tenant, "/api/v1/profiles/lookup", 404, type="phone", value="13900000000")
    assert body["code"] == "profile_not_found" and "message" in body
    assert get(client, tenant, "/api/v1/profiles/prof_nobody", 404)["code"] == "profile_not_found"
    assert (
        get(client, tenant, "/api/v1/profiles/lookup", 400, type="phone", value="null")["code"]
        == "invalid_identifier"
    )
    assert (
        get(client, tenant, "/api/v1/profiles/lookup", 400, type="fax", value="1")["code"]
        == "invalid_identifier"
    )
    assert get(client, tenant, "/api/v1/profiles/lookup", 400, type="wechat_openid", value="o1")["code"] == (
        "invalid_identifier"  # an openid means nothing without its app id
    )


def test_link_review_and_unmerge(client: TestClient, tenant: Tenant, platform: Platform) -> None:
    seed(client, tenant, platform, [
        {"type": "identify", "userId": "alice", "timestamp": "2026-04-01T09:00:00Z",
         "context": {"device": {"id": "family-ipad"}}},
        {"type": "page", "anonymousId": "bob-cookie", "timestamp": "2026-04-02T09:00:00Z",
         "context": {"device": {"id": "family-ipad"}}},
    ])  # fmt: skip
    alice = get(client, tenant, "/api/v1/profiles/lookup", type="user_id", value="alice")
    links = get(client, tenant, f"/api/v1/profiles/{alice['profile_id']}/links")["items"]
    assert {(i["a"], i["b"], i["status"]) for i in links} == {
        ("device_id:family-ipad", "user_id:alice", "active"),
        ("anonymous_id:bob-cookie", "device_id:family-ipad", "active"),
    }
    resp = client.post(
        f"/api/v1/profiles/{alice['profile_id']}/unmerge", headers=tenant.bearer,
        json={"identifiers": [{"type": "anonymous_id", "value": "bob-cookie"}], "reason": "两个人 two people"},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["splits"] == 1
    bob = get(client, tenant, "/api/v1/profiles/lookup", type="anonymous_id", value="bob-cookie")
    assert bob["profile_id"] != alice["profile_id"]
    history = get(client, tenant, f"/api/v1/profiles/{alice['profile_id']}/history")["items"]
    assert history[0]["kind"] == "split" and "两个人" not in history[0]["explanation"]
    # Unmerging something that is not part of the person is a clear 400.
    resp = client.post(f"/api/v1/profiles/{alice['profile_id']}/unmerge", headers=tenant.bearer,
                       json={"identifiers": [{"type": "user_id", "value": "carol"}]})  # fmt: skip
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_identifier"
    resp = client.post(f"/api/v1/profiles/{alice['profile_id']}/unmerge", headers=tenant.bearer, json={})
    assert resp.status_code == 400 and resp.json()["code"] == "nothing_to_unmerge"


def test_rebuild_agrees_with_the_pipeline(client: TestClient, tenant: Tenant, platform: Platform) -> None:
    seed(client, tenant, platform, JOURNEY)
    before = get(client, tenant, "/api/v1/profiles/lookup", type="tmall_buyer_id", value="tb_55")
    resp = client.post("/api/v1/identity/rebuild", headers=tenant.bearer)
    assert resp.status_code == 200 and resp.json()["profiles"] == 2 and resp.json()["merges"] == 0
    assert get(client, tenant, "/api/v1/profiles/lookup", type="tmall_buyer_id", value="tb_55") == before


def test_profile_detail_tags_and_search(client: TestClient, tenant: Tenant, platform: Platform) -> None:
    seed(client, tenant, platform, JOURNEY)
    pid = get(client, tenant, "/api/v1/profiles/lookup", type="tmall_buyer_id", value="tb_55")["profile_id"]
    person = get(client, tenant, f"/api/v1/profiles/{pid}")
    assert person["traits"]["phone"] == "13800005678"
    assert person["computed"]["order_count"] == 1 and person["computed"]["revenue"] == 268.0
    assert {"sms", "wechat_oa"} <= set(person["reachable_channels"])

    resp = client.post(f"/api/v1/profiles/{pid}/tags", json={"tag": "茶友 tea-lover"}, headers=tenant.bearer)
    assert resp.status_code == 200, resp.text
    assert [t["tag"] for t in resp.json()["tags"]] == ["茶友 tea-lover"]
    platform.pipeline.identity.on_change(tenant.workspace_id, [pid])  # what the next stitch does
    found = client.post("/api/v1/profiles/search", headers=tenant.bearer,
                        json={"filters": {"all": [{"field": "revenue", "op": ">=", "value": 100}]}})  # fmt: skip
    assert found.status_code == 200, found.text
    assert [p["profile_id"] for p in found.json()["profiles"]] == [pid]
    bad = client.post("/api/v1/profiles/search", headers=tenant.bearer,
                      json={"filters": {"all": [{"field": "password; drop", "op": "=", "value": 1}]}})  # fmt: skip
    assert bad.status_code == 400 and "code" in bad.json()
    resp = client.delete(f"/api/v1/profiles/{pid}/tags/茶友 tea-lover", headers=tenant.bearer)
    assert resp.status_code == 200 and resp.json()["tags"] == []
    assert client.delete(f"/api/v1/profiles/{pid}/tags/nope", headers=tenant.bearer).status_code == 404


def test_match_and_review_queue_routes(client: TestClient, tenant: Tenant, platform: Platform) -> None:
    seed(client, tenant, platform, JOURNEY)
    resp = client.post(
        "/api/v1/identity/match", headers=tenant.bearer, json={"threshold": 0.9, "review_threshold": 0.95}
    )
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_threshold"
    resp = client.post("/api/v1/identity/match", headers=tenant.bearer, json={})
    assert resp.status_code == 200 and resp.json()["records"] == 2
    listed = client.get("/api/v1/identity/reviews", params={"status": "all"}, headers=tenant.bearer)
    assert listed.status_code == 200 and listed.json()["items"] == []
    resp = client.post("/api/v1/identity/reviews/rev_nope", headers=tenant.bearer, json={"decision": "merge"})
    assert resp.status_code == 404 and resp.json()["code"] == "review_not_found"
    resp = client.post("/api/v1/identity/reviews/rev_nope", headers=tenant.bearer, json={"decision": "maybe"})
    assert resp.status_code == 400
