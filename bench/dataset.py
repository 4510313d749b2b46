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
            base.update(
                type="identify", userId=user, traits={"phone": f"138{i % 100_000_000:08d}", "city": "上海"}
            )
        elif kind < 0.35:
            base.update(
                type="page", name="商品详情", properties={"url": f"https://shop.example.cn/p/{i % 500}"}
            )
        else:
            event = rnd.choice(_EVENTS)
            props: dict[str, Any] = {"product_id": f"SKU-{i % 400}", "price": 68.0, "store_id": "SH001"}
            if event == "Order Completed":
                props.update(order_id=f"O{i}", total=round(rnd.uniform(20, 800), 2), currency="CNY",
                             products=[{"sku": f"SKU-{i % 400}", "name": "龙井 明前", "price": 68.0, "quantity": 2}])  # fmt: skip
            base.update(type="track", event=event, userId=user, properties=props)
        out.append(base)
    return out


def raw_ceiling(msgs: list[dict[str, Any]], path: str) -> float:
    """Seconds for a bulk Arrow insert of the same events into a DuckDB file: the raw ceiling."""
    import duckdb
    import orjson
    import pyarrow as pa

    def js(value: Any) -> str | None:
        return orjson.dumps(value).decode() if value is not None else None

    table = pa.table(
        {
            "message_id": [m["messageId"] for m in msgs],
            "type": [m["type"] for m in msgs],
            "event": [m.get("event") for m in msgs],
            "user_id": [m.get("userId") for m in msgs],
            "anonymous_id": [m.get("anonymousId") for m in msgs],
            "timestamp": pa.array(
                [datetime.fromisoformat(m["timestamp"]) for m in msgs], pa.timestamp("us", "UTC")
            ),
            "properties": [js(m.get("properties")) for m in msgs],
            "traits": [js(m.get("traits")) for m in msgs],
            "context": [js(m.get("context")) for m in msgs],
        }
    )
    con = duckdb.connect(path)
    con.execute(
        "CREATE TABLE events (message_id VARCHAR, type VARCHAR, event VARCHAR, user_id VARCHAR, anonymous_id VARCHAR,"
        " timestamp TIMESTAMPTZ, properties JSON, traits JSON, context JSON)"
    )
    con.register("incoming", table)
    import time

    started = time.perf_counter()
    con.execute("INSERT INTO events SELECT * FROM incoming")
    con.execute("CHECKPOINT")
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def write_result(name: str, result: dict[str, Any]) -> None:
    """Print the figures and keep them in bench/out/NAME.json for docs/performance.md."""
    import json
    from pathlib import Path

    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
