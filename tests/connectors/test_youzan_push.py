"""Youzan Cloud message push at /connect/youzan/{source_id}: Event-Sign and body sign, trade and
refund messages, retries and import overlap stored once."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from quanyu.connectors.imports import catalog
from quanyu.connectors.imports.importer import run_import
from testkit import new_tenant

CLIENT_ID, SECRET = "b8fca94e508ac942de", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "imports"


def _md5(data: bytes) -> Any:
    # Youzan signs with MD5: the protocol's choice, not ours.
    return hashlib.md5(data, usedforsecurity=False)


def _source(platform: Any) -> Any:
    ws = platform.workspaces.create("有赞品牌")
    created = platform.sources.create(
        ws.id, "有赞", "youzan", {"client_id": CLIENT_ID, "client_secret": SECRET}
    )
    return created.source


def _trade(tid: str, status: str = "TRADE_PAID") -> dict[str, Any]:
    return {"full_order_info": {
        "order_info": {"tid": tid, "status": status, "created": "2026-11-11 10:00:00", "pay_time": "2026-11-11 10:00:30"},
        "buyer_info": {"buyer_phone": "13812341234", "yz_open_id": "yz_8H2kLm9P", "fans_nickname": "茶友"},
        "pay_info": {"payment": "268.00", "post_fee": "0.00", "total_fee": "268.00"},
        "orders": [{"oid": "1", "title": "山茶记 明前龙井", "num": 1, "price": "268.00", "outer_sku_id": "LJ-250",
                    "item_id": 99}],
        "address_info": {"receiver_name": "张三", "receiver_tel": "13812341234", "delivery_province": "浙江省",
                         "delivery_city": "杭州市"},
    }}  # fmt: skip


def _push(type_: str, msg: dict[str, Any], tid: str, sign_in_body: bool = True) -> dict[str, Any]:
    encoded = quote(orjson.dumps(msg).decode())
    body = {"client_id": CLIENT_ID, "id": tid, "kdt_id": 63077, "kdt_name": "山茶记有赞微商城", "mode": 1,
            "msg": encoded, "msg_id": f"msg-{tid}-{type_}", "sendCount": 0, "status": "TRADE_PAID", "test": False,
            "type": type_, "version": 1516245348962}  # fmt: skip
    if sign_in_body:
        body["sign"] = _md5((CLIENT_ID + encoded + SECRET).encode()).hexdigest()
    return body


def _event_sign(raw: bytes, secret: str = SECRET) -> str:
    return _md5(CLIENT_ID.encode() + raw + secret.encode()).hexdigest()


def _post(client: Any, source_id: str, body: dict[str, Any], sign: str | None = None) -> Any:
    raw = orjson.dumps(body)
    headers = {"Content-Type": "application/json", "Event-Type": body.get("type", ""), "Client-Id": CLIENT_ID}
    if sign is not None:
        headers["Event-Sign"] = sign
    return client.post(f"/connect/youzan/{source_id}", content=raw, headers=headers)


def _stored(platform: Any, source_id: str) -> list[dict[str, Any]]:
    events = platform.warehouse.table("events")
    return platform.warehouse.execute(
        events.filter(events.source_id == source_id).select("event", "order_id", "amount", "anonymous_id")
    ).to_pylist()


def test_paid_then_refund_with_both_signature_styles_and_retries(client: Any, platform: Any) -> None:
    source = _source(platform)
    paid = _push("trade_TradeBuyerPay", _trade("E20261111100012345678"), "E20261111100012345678")
    resp = _post(client, source.id, paid, _event_sign(orjson.dumps(paid)))
    assert resp.status_code == 200 and resp.json() == {"code": 0, "msg": "success"}
    assert _post(client, source.id, {**paid, "sendCount": 1}).json()["code"] == 0  # a retry, body sign only
    success = _push(
        "trade_TradeSuccess", _trade("E20261111100012345678", "TRADE_SUCCESS"), "E20261111100012345678"
    )
    assert _post(client, source.id, success).status_code == 200
    refund = _push("trade_refund_RefundSuccess", {"tid": "E20261111100012345678", "refund_id": "201911",
                                                  "refunded_fee": "58.00", "update_time": "2026-11-13 09:00:00"},
                   "E20261111100012345678")  # fmt: skip
    platform.pipeline.drain()
    assert _post(client, source.id, refund).status_code == 200
    platform.pipeline.drain()
    rows = {(r["event"], r["order_id"]): r for r in _stored(platform, source.id)}
    assert len(_stored(platform, source.id)) == 2
    assert rows[("Order Completed", "E20261111100012345678")]["amount"] == 268.0
    # The refund message names the order only; it goes to the buyer of the order.
    assert rows[("Order Refunded", "E20261111100012345678")]["anonymous_id"] == "yz_8H2kLm9P"


def test_push_and_export_of_the_same_order_are_stored_once(client: Any, platform: Any) -> None:
    source = _source(platform)
    paid = _push("trade_TradePaid", _trade("E20261111100012345678"), "E20261111100012345678")
    assert _post(client, source.id, paid).status_code == 200
    platform.pipeline.drain()
    report = run_import(platform, source, catalog.find("orders", "youzan"),
                        (EXAMPLES / "youzan_orders.csv").read_bytes())  # fmt: skip
    assert report.already_stored == 1


def test_bad_signatures_are_refused_and_nothing_stored(client: Any, platform: Any) -> None:
    source = _source(platform)
    paid = _push("trade_TradeBuyerPay", _trade("E1"), "E1")
    assert _post(client, source.id, paid, _event_sign(orjson.dumps(paid), "wrong")).status_code == 403
    tampered = {**paid, "kdt_name": "x", "msg": paid["msg"].replace("268.00", "1.00")}
    assert _post(client, source.id, tampered).status_code == 403
    unsigned = _push("trade_TradeBuyerPay", _trade("E1"), "E1", sign_in_body=False)
    resp = _post(client, source.id, unsigned)
    assert resp.status_code == 403 and resp.json()["code"] == "invalid_signature"
    assert client.post(f"/connect/youzan/{source.id}", content=b"not json",
                       headers={"Event-Sign": _event_sign(b"not json")}).status_code == 400  # fmt: skip
    assert client.post("/connect/youzan/src_nope", content=b"{}").status_code == 404
    platform.pipeline.drain()
    assert _stored(platform, source.id) == []


def test_unconfigured_source_and_test_pushes(client: Any, platform: Any) -> None:
    t = new_tenant(platform, "youzan")
    assert client.post(f"/connect/youzan/{t.source_id}", content=b"{}").status_code == 403
    source = _source(platform)
    check = {
        "test": True,
        "client_id": CLIENT_ID,
        "msg": "",
        "sign": _md5((CLIENT_ID + SECRET).encode()).hexdigest(),
    }
    assert _post(client, source.id, check).json() == {"code": 0, "msg": "success"}
