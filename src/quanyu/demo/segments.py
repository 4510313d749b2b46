"""The demo brand's segments: the seed scenarios on 山茶记's own events.

`make demo` declares the "touch" event group and saves these segments through the public API,
refreshes them and shows who is in each, so a newcomer sees segments working on the data they
just generated.
"""

from __future__ import annotations

from typing import Any

# What counts as "reached" for 山茶记: the brand's coupons and its official-account articles.
# Browsing the mini program is activity, not a touch: the seed's question made a setting.
TOUCH_EVENTS = ["Coupon Issued", "Article Read"]

SEGMENTS: list[dict[str, Any]] = [
    {
        "name": "30天未触达的顾客 / customers not reached in 30 days",
        "description": "召回 win-back: bought before, no coupon or article in the last 30 days (rolling)",
        "definition": {"conditions": [
            {"event": "Order Completed"},
            {"not": {"event_group": "touch", "window": {"last": 30, "unit": "day"}}},
        ]},
    },
    {
        "name": "90天复购两次但30天未触达 / bought twice in 90 days, no touch in 30",
        "description": "值得一张券 worth a coupon",
        "definition": {"conditions": [
            {"event": "Order Completed", "window": {"last": 90, "unit": "day"}, "count": {"op": "gte", "value": 2}},
            {"not": {"event_group": "touch", "window": {"last": 30, "unit": "day"}}},
        ]},
    },
    {
        "name": "门店扫码关注但从未购买 / followed via a store QR code, never bought",
        "description": "导购跟进 for the store guides",
        "definition": {"conditions": [
            {"event": "Official Account Followed", "where": [{"property": "scene", "op": "starts_with", "value": "store_"}]},
            {"not": {"event": "Order Completed"}},
        ]},
    },
    {
        "name": "天猫高价值但从未到店 / high-value Tmall buyers never in a store",
        "description": "邀请到店品鉴 invite to a tasting",
        "definition": {"conditions": [
            {"event": "Order Completed", "channel": ["tmall"], "sum": {"property": "amount", "op": "gte", "value": 500}},
            {"not": {"type": "track", "channel": ["pos", "offline_event"]}},
        ]},
    },
    {
        "name": "加购3天未下单 / added to cart, no order within 3 days",
        "description": "购物车召回 cart recovery (last 30 days)",
        "definition": {"conditions": [
            {"sequence": {"steps": [{"event": "Product Added"}, {"event": "Order Completed"}],
                          "within": {"value": 3, "unit": "day"}, "then": "did_not",
                          "window": {"last": 30, "unit": "day"}}},
        ]},
    },
]  # fmt: skip
