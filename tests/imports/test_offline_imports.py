"""POS receipts, sign-up lists, live-stream exports and customer lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quanyu.connectors.imports import catalog
from quanyu.connectors.imports.importer import run_import
from quanyu.connectors.imports.report import BadRows
from quanyu.errors import InvalidInput
from quanyu.identity import lookup
from quanyu.platform import Platform
from testkit import new_tenant

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "imports"


def _source(platform: Platform, type_: str) -> Any:
    t = new_tenant(platform, type_)
    return platform.sources.get(t.workspace_id, t.source_id)


def _events(platform: Platform, source_id: str) -> list[dict[str, Any]]:
    events = platform.warehouse.table("events")
    return platform.warehouse.execute(
        events.filter(events.source_id == source_id).select(
            "event", "type", "order_id", "amount", "properties", "traits", "user_id"
        )
    ).to_pylist()


def test_pos_receipts_become_orders_with_store_guide_and_member(platform: Platform) -> None:
    source = _source(platform, "pos")
    report = run_import(
        platform, source, catalog.find("pos"), (EXAMPLES / "pos_transactions.csv").read_bytes()
    )
    assert dict(report.events) == {"Order Completed": 3, "Order Refunded": 1}
    platform.pipeline.drain()
    rows = {(r["event"], r["order_id"]): r for r in _events(platform, source.id)}
    sale = rows[("Order Completed", "POS-SH001-20261111-0001")]
    assert sale["amount"] == 356.0 and '"guide_id":"G017"' in sale["properties"].replace(" ", "")
    refund = rows[("Order Refunded", "POS-SH001-20261111-0001")]  # the return names the original receipt
    assert refund["amount"] == 88.0
    card = lookup.find(platform.warehouse, source.workspace_id, "member_card", "M88001234")
    assert card == lookup.find(platform.warehouse, source.workspace_id, "phone", "13800001111")
    assert (
        run_import(
            platform, source, catalog.find("pos"), (EXAMPLES / "pos_transactions.csv").read_bytes()
        ).new
        == 0
    )


def test_pos_unknown_transaction_type_is_a_row_problem(platform: Platform) -> None:
    source = _source(platform, "pos")
    data = "门店编号,小票号,交易时间,交易类型,金额\nSH001,1,2026-11-11 10:00:00,赠送,1.00\n".encode()
    with pytest.raises(BadRows) as caught:
        run_import(platform, source, catalog.find("pos"), data)
    assert caught.value.report.problems[0].line == 2 and "销售" in caught.value.report.problems[0].message


def test_signups_register_and_attend(platform: Platform) -> None:
    source = _source(platform, "offline_event")
    report = run_import(platform, source, catalog.find("signups"), (EXAMPLES / "signups.csv").read_bytes())
    assert dict(report.events) == {"Event Registered": 3, "Event Attended": 2}
    platform.pipeline.drain()
    assert lookup.find(platform.warehouse, source.workspace_id, "email", "wangfang@example.com")


def test_signups_need_an_event_name_and_a_contact(platform: Platform) -> None:
    source = _source(platform, "offline_event")
    data = "姓名,手机号,报名时间\n甲,13900001111,2026-03-01 10:00\n乙,,2026-03-01 10:00\n".encode()
    with pytest.raises(BadRows) as caught:
        run_import(platform, source, catalog.find("signups"), data)
    codes = {p.line: p.code for p in caught.value.report.problems}
    assert codes == {2: "missing_event", 3: "missing_contact"}
    ok = run_import(
        platform, source, catalog.find("signups"), data, options={"event_name": "茶会"}, skip_bad=True
    )
    assert ok.new == 1


def test_live_stream_interactions(platform: Platform) -> None:
    source = _source(platform, "live_stream")
    report = run_import(platform, source, catalog.find("live"), (EXAMPLES / "live_douyin.csv").read_bytes(),
                        options={"platform": "douyin"})  # fmt: skip
    assert dict(report.events) == {"Live Stream Watched": 1, "Live Stream Commented": 1, "Order Completed": 1,
                                   "Live Stream Liked": 1, "Live Stream Shared": 1}  # fmt: skip
    platform.pipeline.drain()
    assert lookup.find(platform.warehouse, source.workspace_id, "douyin_id", "dy_MS4wLjABAAAA1x")


def test_customer_list_with_mapping_from_json_lines(platform: Platform) -> None:
    source = _source(platform, "crm")
    mapping = {"id": "customer_id", "mobile": "phone", "e-mail": "email", "会员等级": "traits.tier"}
    report = run_import(platform, source, catalog.find("customers"), (EXAMPLES / "customers.jsonl").read_bytes(),
                        mapping=mapping)  # fmt: skip
    assert report.events["identify"] == 2
    platform.pipeline.drain()
    rows = {r["user_id"]: r for r in _events(platform, source.id)}
    assert '"tier":"普通"' in rows["C000201"]["traits"].replace(" ", "")
    assert lookup.find(platform.warehouse, source.workspace_id, "phone", "13800002222")
    assert lookup.find(platform.warehouse, source.workspace_id, "email", "sun.li@example.com")
    again = run_import(platform, source, catalog.find("customers"), (EXAMPLES / "customers.jsonl").read_bytes(),
                       mapping=mapping)  # fmt: skip
    assert again.new == 0


def test_customer_csv_by_its_own_headers(platform: Platform) -> None:
    source = _source(platform, "crm")
    report = run_import(platform, source, catalog.find("customers"), (EXAMPLES / "customers_crm.csv").read_bytes(),
                        mapping={"企业微信导购": "traits.guide_id"})  # fmt: skip
    assert report.new == 2
    platform.pipeline.drain()
    rows = {r["user_id"]: r for r in _events(platform, source.id)}
    assert "龙井爱好者" in rows["C000101"]["traits"] and "G017" in rows["C000101"]["traits"]


def test_mapping_to_an_unknown_field_is_refused(platform: Platform) -> None:
    source = _source(platform, "crm")
    with pytest.raises(InvalidInput) as caught:
        run_import(platform, source, catalog.find("customers"), b"a\n1\n", mapping={"a": "shoe_size"})
    assert caught.value.code == "invalid_mapping"


def test_truncated_json_is_refused(platform: Platform) -> None:
    source = _source(platform, "crm")
    with pytest.raises(InvalidInput) as caught:
        run_import(
            platform, source, catalog.find("customers"), b'[{"id": "1", "mobile": "13800001111"}, {"id"'
        )
    assert caught.value.code == "invalid_json"
