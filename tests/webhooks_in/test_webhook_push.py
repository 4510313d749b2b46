"""Generic inbound webhooks: signatures (good, bad, replayed, stale), mapping errors located by
JSON path, items quarantined with their reason, retries stored once, the mapping routes."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from quanyu.connectors.webhook_in import sign
from quanyu.platform import Platform
from testkit import Tenant

SECRET = "whsec-山茶记-2026"
MAPPING: dict[str, Any] = {
    "items": "$.data.orders[*]",
    "type": "track",
    "event": "Order Completed",
    "userId": "$.member_id",
    "anonymousId": "$.buyer.openid",
    "timestamp": "$.paid_at",
    "properties": {"order_id": "$.order_no", "total": "$.amount", "currency": {"const": "CNY"},
                   "store_id": "$['store']['code']"},
    "traits": {"city": "$.buyer.city"},
    "externalIds": [{"type": "phone", "path": "$.buyer.phone"}],
}  # fmt: skip


def _order(no: str, **over: Any) -> dict[str, Any]:
    order = {"order_no": no, "member_id": f"m-{no}", "amount": 268, "paid_at": 1764480000123,
             "store": {"code": "HZ01"}, "buyer": {"openid": "o-1", "phone": "138-0000-0000", "city": "杭州"}}  # fmt: skip
    order.update(over)
    return order


@pytest.fixture
def source_id(platform: Platform, tenant: Tenant) -> str:
    created = platform.sources.create(
        tenant.workspace_id, "订单系统 OMS", "webhook", {"secret": SECRET, "mapping": MAPPING}
    )
    return created.source.id


def _push(client: TestClient, source_id: str, payload: Any, *, secret: str = SECRET,
          timestamp: str | None = "now", signature: str | None = None) -> Any:  # fmt: skip
    body = orjson.dumps(payload)
    ts = str(int(time.time())) if timestamp == "now" else timestamp
    headers = {"Content-Type": "application/json",
               "X-Quanyu-Signature": signature if signature is not None else sign(secret, body, ts)}  # fmt: skip
    if ts is not None:
        headers["X-Quanyu-Timestamp"] = ts
    return client.post(f"/connect/webhook/{source_id}", content=body, headers=headers)


def _events(platform: Platform, tenant: Tenant) -> list[dict[str, Any]]:
    platform.pipeline.drain()
    t = platform.warehouse.table("events")
    return platform.warehouse.execute(t.filter(t.workspace_id == tenant.workspace_id)).to_pylist()  # type: ignore[no-any-return]


def _props(row: dict[str, Any]) -> dict[str, Any]:
    value = row["properties"]
    return orjson.loads(value) if isinstance(value, str | bytes) else dict(value)  # type: ignore[no-any-return]


# -- signatures ------------------------------------------------------------------------------------


def test_signed_push_is_mapped_and_stored(client: TestClient, platform: Platform, tenant: Tenant,
                                          source_id: str) -> None:  # fmt: skip
    resp = _push(client, source_id, {"data": {"orders": [_order("T1"), _order("T2", amount=99.5)]}})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"success": True, "items": 2, "accepted": 2, "quarantined": []}
    rows = sorted(_events(platform, tenant), key=lambda r: r["user_id"])
    assert [r["event"] for r in rows] == ["Order Completed", "Order Completed"]
    assert [r["user_id"] for r in rows] == ["m-T1", "m-T2"]
    props = _props(rows[0])
    assert props["order_id"] == "T1" and props["total"] == 268 and props["currency"] == "CNY"
    assert props["store_id"] == "HZ01"
    # epoch milliseconds became the event time
    assert rows[0]["timestamp"].isoformat().startswith("2025-11-30T05:20:00.123")
    assert rows[0]["channel"] == "webhook"


def test_unsigned_body_without_timestamp_also_works(client: TestClient, source_id: str) -> None:
    resp = _push(client, source_id, {"data": {"orders": [_order("T1")]}}, timestamp=None)
    assert resp.status_code == 200 and resp.json()["accepted"] == 1


@pytest.mark.parametrize("signature", ["", "sha256=00", "v1=abc", "sha256=" + "0" * 64])
def test_bad_or_missing_signature_is_403(client: TestClient, source_id: str, signature: str) -> None:
    resp = _push(client, source_id, {"data": {"orders": [_order("T1")]}}, signature=signature)
    assert resp.status_code == 403
    assert resp.json()["code"] == "invalid_signature"


def test_wrong_secret_is_403(client: TestClient, source_id: str) -> None:
    resp = _push(client, source_id, {"data": {"orders": [_order("T1")]}}, secret="other")
    assert resp.status_code == 403 and resp.json()["code"] == "invalid_signature"


def test_stale_timestamp_is_403_with_its_own_code(client: TestClient, source_id: str) -> None:
    resp = _push(
        client, source_id, {"data": {"orders": [_order("T1")]}}, timestamp=str(int(time.time()) - 600)
    )
    assert resp.status_code == 403 and resp.json()["code"] == "stale_timestamp"
    future = _push(
        client, source_id, {"data": {"orders": [_order("T1")]}}, timestamp=str(int(time.time()) + 600)
    )
    assert future.status_code == 403 and future.json()["code"] == "stale_timestamp"


def test_replay_with_the_timestamp_changed_or_dropped_is_refused(client: TestClient, source_id: str) -> None:
    body = orjson.dumps({"data": {"orders": [_order("T1")]}})
    old = str(int(time.time()) - 3600)
    captured = sign(SECRET, body, old)
    # Moving the timestamp forward breaks the signature, which covers it.
    fresh = {"X-Quanyu-Signature": captured, "X-Quanyu-Timestamp": str(int(time.time()))}
    resp = client.post(f"/connect/webhook/{source_id}", content=body, headers=fresh)
    assert resp.status_code == 403 and resp.json()["code"] == "invalid_signature"
    # Dropping it does too (the signed string was `{timestamp}.{body}`).
    resp = client.post(
        f"/connect/webhook/{source_id}", content=body, headers={"X-Quanyu-Signature": captured}
    )
    assert resp.status_code == 403 and resp.json()["code"] == "invalid_signature"


def test_require_timestamp_setting(client: TestClient, platform: Platform, tenant: Tenant) -> None:
    src = platform.sources.create(tenant.workspace_id, "strict", "webhook",
                                  {"secret": SECRET, "mapping": MAPPING, "require_timestamp": True}).source.id  # fmt: skip
    resp = _push(client, src, {"data": {"orders": [_order("T1")]}}, timestamp=None)
    assert resp.status_code == 403 and resp.json()["code"] == "missing_timestamp"


def test_unknown_source_and_unconfigured_source(
    client: TestClient, platform: Platform, tenant: Tenant
) -> None:
    assert _push(client, "src_nope", {}).status_code == 404
    # a website source without a mapping is not a webhook source
    assert _push(client, tenant.source_id, {}).status_code == 404
    bare = platform.sources.create(
        tenant.workspace_id, "no secret", "webhook", {"mapping": MAPPING}
    ).source.id
    resp = _push(client, bare, {"data": {"orders": []}})
    assert resp.status_code == 403 and resp.json()["code"] == "webhook_not_configured"


# -- mapping ---------------------------------------------------------------------------------------


def test_retries_are_stored_once(
    client: TestClient, platform: Platform, tenant: Tenant, source_id: str
) -> None:
    payload = {"data": {"orders": [_order("T1"), _order("T2")]}}
    assert _push(client, source_id, payload).json()["accepted"] == 2
    assert _push(client, source_id, payload).json()["accepted"] == 2  # the sender retried
    assert _push(client, source_id, {"data": {"orders": [_order("T2")]}}).json()["accepted"] == 1
    rows = _events(platform, tenant)
    assert sorted(r["user_id"] for r in rows) == ["m-T1", "m-T2"]


def test_bad_items_are_quarantined_with_their_path(client: TestClient, platform: Platform, tenant: Tenant,
                                                   source_id: str) -> None:  # fmt: skip
    orders = [
        _order("T1"),
        _order("T2", paid_at="yesterday"),
        _order("T3", member_id=None, buyer={"city": "杭州"}),
        _order("T4", member_id={"nested": 1}),
        "not an object",
    ]
    resp = _push(client, source_id, {"data": {"orders": orders}})
    body = resp.json()
    assert resp.status_code == 200 and body["accepted"] == 1 and body["items"] == 5
    got = {q["index"]: (q["code"], q["path"]) for q in body["quarantined"]}
    assert got == {
        1: ("invalid_timestamp", "$.data.orders[1].paid_at"),
        2: ("missing_identity", "$.data.orders[2].member_id"),
        3: ("invalid_value", "$.data.orders[3].member_id"),
        4: ("invalid_item", "$.data.orders[4]"),
    }
    entries = platform.quarantine.list(tenant.workspace_id)
    assert sorted(e.code for e in entries) == ["invalid_item", "invalid_timestamp", "invalid_value",
                                               "missing_identity"]  # fmt: skip
    stale = next(e for e in entries if e.code == "invalid_timestamp")
    assert "$.data.orders[1].paid_at" in stale.reason and orjson.loads(stale.payload)["order_no"] == "T2"
    assert len(_events(platform, tenant)) == 1


def test_items_path_reaching_nothing_is_400(client: TestClient, source_id: str) -> None:
    resp = _push(client, source_id, {"orders": [_order("T1")]})
    assert resp.status_code == 400 and resp.json()["code"] == "no_items"
    empty = _push(client, source_id, {"data": {"orders": []}})
    assert empty.status_code == 200 and empty.json()["items"] == 0


def test_not_json_is_400(client: TestClient, source_id: str) -> None:
    body = b"<xml/>"
    resp = client.post(f"/connect/webhook/{source_id}", content=body,
                       headers={"X-Quanyu-Signature": sign(SECRET, body)})  # fmt: skip
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_json"


def test_put_mapping_validates_with_json_paths(client: TestClient, tenant: Tenant, source_id: str) -> None:
    bad = {"type": "track", "items": "$.data[", "properties": {"total": "amount", "ok": "$.a"},
           "externalIds": [{"type": "Phone!", "path": "$.p"}], "colour": 1, "timestamp": "$.x[*]"}  # fmt: skip
    resp = client.put(f"/api/v1/sources/{source_id}/mapping", json=bad, headers=tenant.bearer)
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == "invalid_mapping"
    paths = {e["path"] for e in body["details"]["errors"]}
    assert paths == {"$.colour", "$.items", "$.event", "$", "$.properties.total", "$.externalIds[0].type",
                     "$.timestamp"}  # fmt: skip
    good = {"type": "identify", "userId": "$.id", "traits": {"name": "$.name", "城市": "$['地址']['城市']"}}
    resp = client.put(f"/api/v1/sources/{source_id}/mapping", json=good, headers=tenant.bearer)
    assert resp.status_code == 200
    shown = client.get("/api/v1/sources", headers=tenant.bearer).json()
    assert next(s for s in shown if s["id"] == source_id)["settings"]["mapping"] == good


def test_mapping_on_an_existing_type_and_identify(
    client: TestClient, platform: Platform, tenant: Tenant
) -> None:
    crm = platform.sources.create(tenant.workspace_id, "CRM", "crm", {"secret": SECRET}).source.id
    # without a mapping a crm source is no webhook source; once one is saved, it is
    mapping = {"type": "identify", "userId": "$.id", "traits": {"name": "$.name", "city": "$['地址']['城市']"},
               "externalIds": [{"type": "phone", "path": "$.mobile"}]}  # fmt: skip
    assert (
        client.put(f"/api/v1/sources/{crm}/mapping", json=mapping, headers=tenant.bearer).status_code == 200
    )
    resp = _push(
        client, crm, [{"id": "c1", "name": "林晓", "mobile": "13800000001", "地址": {"城市": "苏州"}}]
    )
    assert resp.status_code == 200 and resp.json()["accepted"] == 1
    rows = _events(platform, tenant)
    assert [(r["type"], r["user_id"]) for r in rows] == [("identify", "c1")]


def test_preview_shows_messages_and_errors(client: TestClient, tenant: Tenant, source_id: str) -> None:
    payload = {"data": {"orders": [_order("T1"), _order("T2", paid_at=[1])]}}
    resp = client.post(f"/api/v1/sources/{source_id}/mapping/preview", json={"payload": payload},
                       headers=tenant.bearer)  # fmt: skip
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [m["path"] for m in body["messages"]] == ["$.data.orders[0]"]
    message = body["messages"][0]["message"]
    assert message["userId"] == "m-T1" and message["event"] == "Order Completed"
    assert message["context"]["externalIds"][0] == {"id": "138-0000-0000", "type": "phone",
                                                    "collection": "users", "encoding": "none"}  # fmt: skip
    assert message["context"]["traits"] == {"city": "杭州"}
    assert body["errors"] == [{"index": 1, "path": "$.data.orders[1].paid_at", "code": "invalid_timestamp",
                               "message": body["errors"][0]["message"]}]  # fmt: skip
    # another mapping can be tried before saving it; a bad one is located the same way
    other = {"event": "$.kind", "userId": "$.member_id", "items": "$.data.orders[*]"}
    resp = client.post(f"/api/v1/sources/{source_id}/mapping/preview", json={"payload": payload, "mapping": other},
                       headers=tenant.bearer)  # fmt: skip
    assert [e["path"] for e in resp.json()["errors"]] == ["$.data.orders[0].kind", "$.data.orders[1].kind"]
    resp = client.post(f"/api/v1/sources/{source_id}/mapping/preview",
                       json={"payload": payload, "mapping": {"event": "$.a[", "userId": "$.b"}},
                       headers=tenant.bearer)  # fmt: skip
    assert resp.status_code == 400 and resp.json()["details"]["errors"][0]["path"] == "$.event"


def test_mapping_routes_need_a_token_and_the_workspace(client: TestClient, platform: Platform,
                                                       source_id: str) -> None:  # fmt: skip
    assert client.put(f"/api/v1/sources/{source_id}/mapping", json=MAPPING).status_code == 401
    other = platform.workspaces.create("other")
    token = platform.workspaces.issue_token(other.id)
    resp = client.put(f"/api/v1/sources/{source_id}/mapping", json=MAPPING,
                      headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert resp.status_code == 404


def test_a_bad_mapping_or_form_is_refused_when_the_source_is_created(
    client: TestClient, tenant: Tenant
) -> None:
    body = {"name": "OMS", "type": "webhook", "settings": {"secret": SECRET, "mapping": {"event": "$.a["}}}
    resp = client.post("/api/v1/sources", json=body, headers=tenant.bearer)
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_mapping"
    assert {e["path"] for e in resp.json()["details"]["errors"]} == {"$.event", "$"}
    form = {"name": "报名", "type": "form", "settings": {"title": "报名", "fields": [{"name": "Bad Name"}]}}
    resp = client.post("/api/v1/sources", json=form, headers=tenant.bearer)
    assert resp.status_code == 400 and resp.json()["code"] == "form_not_configured"
    assert "fields[0]" in resp.json()["details"]["problems"][0]
