"""Synthetic Segment messages for the benchmarks: realistic sizes, a mix of message types."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

_EVENTS = ["Product Viewed", "Product Added", "Order Completed", "Coupon Applied", "Mini Program Opened"]
_CHANNEL_CAMPAIGNS = [("douyin", "feed"), ("baidu", "cpc"), ("wechat", "social"), ("xiaohongshu", "kol")]


def messages(count: int, seed: int = 1) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(count):
        user = f"u{rnd.randrange(count // 5 + 1)}"
        ts = (start + timedelta(seconds=rnd.randrange(300 * 86400))).isoformat()
        mid = str(uuid.UUID(int=rnd.getrandbits(128)))
        kind = rnd.random()
        base: dict[str, Any] = {
            "messageId": mid,
            "timestamp": ts,
            "anonymousId": f"anon-{user}",
            "context": {
                "ip": "203.0.113.7",
                "locale": "zh-CN",
                "library": {"name": "bench", "version": "1"},
                "campaign": dict(zip(("source", "medium"), rnd.choice(_CHANNEL_CAMPAIGNS), strict=True)),
            },
        }
        if kind < 0.15:
            base.update(type="identify", userId=user, traits={"phone": f"138{i % 100_000_000:08d}", "city": "上海"})
        elif kind < 0.35:
            base.update(type="page", name="商品详情", properties={"url": f"https://shop.example.cn/p/{i % 500}"})
        else:
            event = rnd.choice(_EVENTS)
            props: dict[str, Any] = {"product_id": f"SKU-{i % 400}", "price": 68.0, "store_id": "SH001"}
            if event == "Order Completed":
                props.update(order_id=f"O{i}", total=round(rnd.uniform(20, 800), 2), currency="CNY",
                             products=[{"sku": f"SKU-{i % 400}", "name": "龙井 明前", "price": 68.0, "quantity": 2}])  # fmt: skip
            base.update(type="track", event=event, userId=user, properties=props)
        out.append(base)
    return out
