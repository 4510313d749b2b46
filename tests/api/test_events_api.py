"""The event browser: filters and opaque cursors."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from quanyu.platform import Platform
from testkit import Tenant


def seed(client: TestClient, tenant: Tenant, platform: Platform) -> None:
    batch = [
        {"type": "track", "userId": f"u{i % 3}", "event": "Order Completed" if i % 2 else "Product Viewed",
         "messageId": f"m{i:02d}", "timestamp": f"2026-05-01T10:{i:02d}:00Z"}
        for i in range(25)
    ] + [{"type": "page", "anonymousId": "anon-1", "messageId": "p1", "timestamp": "2026-05-02T00:00:00Z"}]  # fmt: skip
    resp = client.post("/v1/batch", json={"batch": batch, "writeKey": tenant.write_key})
    assert resp.status_code == 200
    platform.pipeline.drain()


def page(client: TestClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    resp = client.get("/api/v1/events", params=params, headers=tenant.bearer)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_cursor_walks_every_event_once_newest_first(
    client: TestClient, tenant: Tenant, platform: Platform
) -> None:
    seed(client, tenant, platform)
    seen: list[str] = []
    cursor = None
    while True:
        body = page(client, tenant, limit=7, **({"cursor": cursor} if cursor else {}))
        seen += [i["message_id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["p1"] + [f"m{i:02d}" for i in reversed(range(25))]


def test_filters_narrow_the_result(client: TestClient, tenant: Tenant, platform: Platform) -> None:
    seed(client, tenant, platform)
    assert {i["user_id"] for i in page(client, tenant, user_id="u1")["items"]} == {"u1"}
    assert len(page(client, tenant, event="Order Completed")["items"]) == 12
    assert [i["message_id"] for i in page(client, tenant, anonymous_id="anon-1")["items"]] == ["p1"]
    assert [i["message_id"] for i in page(client, tenant, type="page")["items"]] == ["p1"]
    window = page(client, tenant, since="2026-05-01T10:05:00Z", until="2026-05-01T10:08:00Z")["items"]
    assert [i["message_id"] for i in window] == ["m07", "m06", "m05"]
    assert page(client, tenant, source_id="src_none")["items"] == []
    item = page(client, tenant, limit=1)["items"][0]
    assert set(item) >= {"message_id", "type", "event", "user_id", "anonymous_id", "timestamp", "received_at",
                         "source_id", "channel", "properties", "traits", "context"}  # fmt: skip


def test_bad_filters_get_400(client: TestClient, tenant: Tenant) -> None:
    for params in (
        {"limit": 0},
        {"limit": 5000},
        {"type": "purchase"},
        {"since": "yesterday"},
        {"cursor": "@@"},
    ):
        resp = client.get("/api/v1/events", params=params, headers=tenant.bearer)
        assert resp.status_code == 400, params
        assert set(resp.json()) >= {"code", "message"}


def test_stats_per_channel(client: TestClient, tenant: Tenant, platform: Platform) -> None:
    seed(client, tenant, platform)
    body = client.get("/api/v1/events/stats", headers=tenant.bearer).json()
    assert body["totals"]["events"] == 26
    assert body["channels"][0]["channel"] == "website"
