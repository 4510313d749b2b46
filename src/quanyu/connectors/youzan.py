"""Youzan Cloud (有赞云) message push: trade and refund messages as they happen.

Youzan POSTs JSON to the push URL configured for the app: `client_id`, `kdt_id` (the shop),
`type` (`trade_TradeBuyerPay`, `trade_TradeSuccess`, `trade_TradeClose`,
`trade_refund_RefundSuccess`, …), `status`, `msg` (the business payload, URL-encoded JSON),
`msg_id`, `sendCount` (retries), `version`, and `sign` = MD5(client_id + msg + client_secret).
The request also carries `Event-Sign` = MD5(client_id + raw body + client_secret),
`Event-Type` and `Client-Id` headers; Youzan recommends checking `Event-Sign`, and we check
whichever is present (the header first). The answer must be `{"code": 0, "msg": "success"}`,
otherwise Youzan retries.

Orders get the same keys as the Youzan export importer, so an order that arrived by push and
is later imported from an export (or the other way round) is stored once.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import orjson

from quanyu.identity.identifiers import normalise_masked_phone, normalise_phone

SUCCESS = {"code": 0, "msg": "success"}
_SHANGHAI = ZoneInfo("Asia/Shanghai")
_PAID = frozenset({"trade_TradeBuyerPay", "trade_TradePaid", "trade_TradeSuccess"})
_CLOSED = frozenset({"trade_TradeClose"})
_REFUNDED = frozenset({"trade_refund_RefundSuccess"})
MAX_BODY_BYTES = 1024 * 1024


class YouzanError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _md5(text: bytes) -> str:
    return hashlib.md5(text, usedforsecurity=False).hexdigest()


def check_signature(
    body: bytes, push: dict[str, Any], event_sign: str | None, client_id: str, secret: str
) -> bool:
    """Event-Sign over the raw body when sent, else the body's `sign` over `msg`."""
    if event_sign:
        expected = _md5(client_id.encode() + body + secret.encode())
        return hmac.compare_digest(expected, event_sign.strip().lower())
    sign = push.get("sign")
    if not isinstance(sign, str) or not isinstance(push.get("msg"), str):
        return False
    expected = _md5((client_id + push["msg"] + secret).encode())
    return hmac.compare_digest(expected, sign.strip().lower())


def parse(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise YouzanError("youzan_too_large", "推送消息过大 / push body too large")
    try:
        push = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise YouzanError("invalid_json", "推送内容不是 JSON / the push is not JSON") from None
    if not isinstance(push, dict):
        raise YouzanError("invalid_json", "推送内容不是 JSON 对象 / the push is not a JSON object")
    return push


def payload(push: dict[str, Any]) -> dict[str, Any]:
    """The business message: `msg`, URL-decoded, as JSON."""
    raw = push.get("msg")
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        decoded = orjson.loads(unquote(raw))
    except orjson.JSONDecodeError:
        raise YouzanError("invalid_msg", "msg 不是 URL 编码的 JSON / msg is not URL-encoded JSON") from None
    return decoded if isinstance(decoded, dict) else {}


@dataclass(frozen=True)
class Normalised:
    key: str
    message: dict[str, Any]


def normalise(push: dict[str, Any]) -> Normalised | None:
    """The Segment message for a trade or refund push; None for types Quanyu does not store."""
    kind = str(push.get("type", ""))
    body = payload(push)
    shop = str(push.get("kdt_name") or "")
    if kind in _PAID:
        return _completed(body.get("full_order_info") or {}, shop)
    if kind in _CLOSED:
        return _cancelled(body, push)
    if kind in _REFUNDED:
        return _refunded(body, push)
    return None


def _time(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        local = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=_SHANGHAI)
    except ValueError:
        return None
    return local.astimezone(UTC).isoformat()


def _money(value: Any) -> float:
    try:
        return round(float(value), 2)
    except (TypeError, ValueError):
        return 0.0


def _who(buyer: dict[str, Any], address: dict[str, Any], tid: str) -> dict[str, Any]:
    buyer_id = str(buyer.get("yz_open_id") or buyer.get("fans_id") or buyer.get("outer_user_id") or "")
    message: dict[str, Any] = {"anonymousId": buyer_id or f"youzan-order-{tid}"}
    context: dict[str, Any] = {}
    if buyer_id:
        context["externalIds"] = [
            {"id": buyer_id, "type": "youzan_id", "collection": "users", "encoding": "none"}
        ]
    traits: dict[str, Any] = {}
    raw_phone = str(buyer.get("buyer_phone") or address.get("receiver_tel") or "")
    phone = normalise_phone(raw_phone) or normalise_masked_phone(raw_phone)
    if phone:
        traits["phone"] = phone
    for key, name in (
        ("receiver_name", "name"),
        ("delivery_province", "province"),
        ("delivery_city", "city"),
    ):
        if address.get(key):
            traits[name] = address[key]
    if traits:
        context["traits"] = traits
    if context:
        message["context"] = context
    return message


def _completed(info: dict[str, Any], shop: str) -> Normalised | None:
    order = info.get("order_info") or {}
    tid = str(order.get("tid") or "")
    if not tid:
        raise YouzanError("invalid_msg", "交易消息缺少 tid / the trade message has no tid")
    pay = info.get("pay_info") or {}
    total, shipping = _money(pay.get("payment")), _money(pay.get("post_fee"))
    products = [
        {"product_id": str(o.get("item_id", "")), "sku": o.get("outer_sku_id") or o.get("outer_item_id") or "",
         "name": o.get("title", ""), "price": _money(o.get("price")), "quantity": int(o.get("num") or 1)}
        for o in info.get("orders") or [] if isinstance(o, dict)
    ]  # fmt: skip
    props: dict[str, Any] = {"order_id": tid, "platform": "youzan", "currency": "CNY", "total": total,
                             "revenue": round(total - shipping, 2), "shipping": shipping, "products": products,
                             "status": order.get("status", "")}  # fmt: skip
    if shop:
        props["affiliation"] = shop
    message = {"type": "track", "event": "Order Completed", "properties": props,
               **_who(info.get("buyer_info") or {}, info.get("address_info") or {}, tid)}  # fmt: skip
    at = _time(order.get("pay_time")) or _time(order.get("created"))
    if at:
        message["timestamp"] = at
    return Normalised(f"youzan:{tid}:completed", message)


def _cancelled(body: dict[str, Any], push: dict[str, Any]) -> Normalised:
    tid = str(body.get("tid") or push.get("id") or "")
    if not tid:
        raise YouzanError("invalid_msg", "关闭消息缺少 tid / the close message has no tid")
    props = {"order_id": tid, "platform": "youzan", "currency": "CNY"}
    if body.get("close_type") is not None:
        props["reason"] = str(body["close_type"])
    message: dict[str, Any] = {"type": "track", "event": "Order Cancelled", "properties": props,
                               "anonymousId": f"youzan-order-{tid}"}  # fmt: skip
    at = _time(body.get("update_time"))
    if at:
        message["timestamp"] = at
    return Normalised(f"youzan:{tid}:cancelled", message)


def _refunded(body: dict[str, Any], push: dict[str, Any]) -> Normalised:
    tid = str(body.get("tid") or "")
    if not tid:
        raise YouzanError("invalid_msg", "退款消息缺少 tid / the refund message has no tid")
    amount = _money(body.get("refunded_fee"))
    props: dict[str, Any] = {"order_id": tid, "platform": "youzan", "currency": "CNY", "total": amount,
                             "revenue": amount}  # fmt: skip
    for key, name in (("refund_id", "refund_id"), ("refund_reason", "reason"), ("oids", "line_ids")):
        if body.get(key):
            props[name] = body[key]
    message: dict[str, Any] = {"type": "track", "event": "Order Refunded", "properties": props,
                               "anonymousId": f"youzan-order-{tid}"}  # fmt: skip
    at = _time(body.get("update_time"))
    if at:
        message["timestamp"] = at
    return Normalised(f"youzan:{tid}:refunded", message)
