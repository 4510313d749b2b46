"""The documented mapping and payload (docs/examples/webhook) behave as the docs say."""

from __future__ import annotations

from pathlib import Path

import orjson

from quanyu.connectors import webhook_in

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "webhook"


def test_example_mapping_maps_the_example_payload() -> None:
    mapping = webhook_in.parse_mapping(orjson.loads((EXAMPLES / "mapping_example.json").read_bytes()))
    payload = orjson.loads((EXAMPLES / "payload_example.json").read_bytes())
    items = webhook_in.map_items(mapping, payload, "src_example")
    assert [i.path for i in items] == ["$.data.orders[0]", "$.data.orders[1]", "$.data.orders[2]"]
    first, second, third = items
    assert first.message is not None and second.message is not None
    assert first.message["userId"] == "M100238" and first.message["messageId"] == "OMS-20261130-0001"
    assert first.message["timestamp"] == "2025-11-30T05:20:00.123000+00:00"
    assert first.message["properties"] == {"order_id": "OMS-20261130-0001", "total": 268.0, "currency": "CNY",
                                           "store_id": "HZ01", "coupon": "SPRING20", "first_sku": "LJ-2026-250G"}  # fmt: skip
    assert first.message["context"]["traits"] == {"name": "林晓", "city": "杭州"}
    assert [e["type"] for e in first.message["context"]["externalIds"]] == ["phone", "member_card"]
    assert "userId" not in second.message and second.message["anonymousId"] == "oF3Pcs-another-openid"
    assert second.message["timestamp"] == "2026-11-30T02:15:00+00:00"
    assert "first_sku" not in second.message["properties"]
    assert third.error is not None and third.problem()["path"] == "$.data.orders[2].paid_at"
