"""Computed traits on a small hand-made history across channels: Douyin → Youzan → Tmall → WeChat."""

from __future__ import annotations

from typing import Any

from profilekit import Brand, day

from quanyu.profiles import profile_view, refresh

PHONE = {"phone": "13800001234"}


def _ids(kind: str, value: str, **more: str) -> dict[str, Any]:
    return {"externalIds": [{"type": kind, "id": value, **more}], "traits": PHONE}


def _shopper_a(brand: Brand) -> None:
    brand.send(
        "douyin",
        {"type": "track", "event": "Video Viewed", "anonymousId": "a-dy", "timestamp": day(1),
         "context": {"externalIds": [{"type": "douyin_id", "id": "dy-1"}],
                     "campaign": {"source": "douyin", "medium": "live", "name": "春茶节"}}},
        {"type": "track", "event": "Order Completed", "anonymousId": "a-dy", "timestamp": day(2),
         "properties": {"order_id": "DY1", "total": 99}, "context": _ids("douyin_id", "dy-1")},
    )  # fmt: skip
    youzan_order = {"order_id": "YZ1", "total": 200}
    brand.send(
        "youzan",
        {"type": "track", "event": "Order Completed", "anonymousId": "a-yz", "timestamp": day(10),
         "properties": youzan_order, "context": _ids("youzan_id", "yz-1")},
        # The same order reported again (a webhook retry with a new message id): counted once.
        {"type": "track", "event": "Order Completed", "anonymousId": "a-yz", "timestamp": day(10.01),
         "properties": youzan_order, "context": _ids("youzan_id", "yz-1")},
    )  # fmt: skip
    brand.send(
        "tmall",
        {"type": "track", "event": "Order Completed", "anonymousId": "a-tm", "timestamp": day(20),
         "properties": {"order_id": "T1", "total": 300}, "context": _ids("tmall_buyer_id", "tb-1")},
        {"type": "track", "event": "Order Refunded", "anonymousId": "a-tm", "timestamp": day(25),
         "properties": {"order_id": "T1", "total": 300}, "context": _ids("tmall_buyer_id", "tb-1")},
    )  # fmt: skip
    oa = _ids("wechat_openid", "oa-1", app_id="wxoa")
    brand.send(
        "wechat_oa",
        *[{"type": "track", "event": name, "anonymousId": "a-oa", "timestamp": day(at), "context": oa}
          for name, at in (("Official Account Followed", 30), ("Message Read", 31), ("Menu Clicked", 31.5))],
    )  # fmt: skip


def test_a_shopper_across_douyin_youzan_tmall_and_wechat(brand: Brand) -> None:
    _shopper_a(brand)
    brand.resolve()
    refresh(brand.platform.warehouse, brand.workspace_id)
    nodes = brand.platform.warehouse.table("identity_nodes")
    pid = brand.platform.warehouse.execute(
        nodes.filter(nodes.workspace_id == brand.workspace_id, nodes.key == "phone:13800001234")
    ).to_pylist()[0]["profile_id"]
    view = profile_view(brand.platform.warehouse, brand.workspace_id, pid)
    assert view is not None
    c = view["computed"]
    assert (c["first_seen"][:10], c["last_seen"][:16]) == ("2026-03-02", "2026-04-01T12:00")
    assert [(ch["channel"], ch["events"], ch["first_seen"][:10]) for ch in c["channel_activity"]] == [
        ("douyin", 2, "2026-03-02"), ("youzan", 2, "2026-03-11"), ("tmall", 2, "2026-03-21"),
        ("wechat_oa", 3, "2026-03-31"),
    ]  # fmt: skip
    assert c["channels"] == ["douyin", "tmall", "wechat_oa", "youzan"]
    assert c["preferred_channel"] == "wechat_oa"
    assert (c["order_count"], c["revenue"], c["avg_order_value"]) == (3, 599.0, 599.0 / 3)
    assert (c["refund_count"], c["refund_amount"], c["net_revenue"]) == (1, 300.0, 299.0)
    assert (c["first_purchase_at"][:10], c["last_purchase_at"][:10]) == ("2026-03-03", "2026-03-21")
    assert (c["first_touch_channel"], c["first_touch_source"], c["first_touch_campaign"]) == (
        "douyin", "douyin", "春茶节",
    )  # fmt: skip
    assert c["in_public_domain"] and c["in_private_domain"] and c["online"] and not c["offline"]
    assert view["reachable_channels"] == ["sms", "wechat_oa"]
    kinds = {i["type"]: i["sources"] for i in view["identifiers"]}
    assert kinds["phone"] == ["douyin", "tmall", "wechat_oa", "youzan"]
    assert kinds["wechat_openid"] == ["wechat_oa"]
    # 4 platform ids, the phone, 4 anonymous ids.
    assert c["identifier_count"] == len(view["identifiers"]) == 9
    assert view["rfm"] is not None and view["rfm"]["segment"]


def test_ties_go_to_the_recent_channel_offline_and_app_push(brand: Brand) -> None:
    brand.send(
        "douyin",
        {"type": "track", "event": "Video Viewed", "anonymousId": "b-dy", "timestamp": day(1)},
        {"type": "identify", "anonymousId": "b-dy", "userId": "b", "timestamp": day(2)},
    )  # fmt: skip
    brand.send(
        "pos",
        {"type": "track", "event": "Order Completed", "userId": "b", "timestamp": day(3),
         "properties": {"order_id": "POS-1", "total": 58}},
        {"type": "track", "event": "Member Visited", "userId": "b", "timestamp": day(4)},
    )  # fmt: skip
    brand.send("app", {"type": "track", "event": "App Opened", "userId": "b", "timestamp": day(0.5),
                       "context": {"device": {"id": "dev-b"}}})  # fmt: skip
    brand.send("website", {"type": "page", "userId": "b", "timestamp": day(0.6),
                           "context": {"device": {"id": "web-b"}}})  # fmt: skip
    brand.resolve()
    refresh(brand.platform.warehouse, brand.workspace_id)
    view = profile_view(brand.platform.warehouse, brand.workspace_id, brand.profile_of("b"))
    assert view is not None
    c = view["computed"]
    assert c["preferred_channel"] == "pos"  # 2 douyin, 2 pos: pos was seen last
    assert c["offline"] and c["online"] and c["in_private_domain"] and c["in_public_domain"]
    assert (c["first_touch_channel"], c["first_touch_source"], c["first_touch_campaign"]) == (
        "app",
        "app",
        None,
    )
    assert view["reachable_channels"] == ["push"]  # the app device, not the browser's
