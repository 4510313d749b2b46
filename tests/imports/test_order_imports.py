"""Marketplace order exports: every platform's sample file, encodings, idempotent re-imports,
bad rows reported by line with nothing written, and identity fed by platform buyer ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quanyu.connectors.imports import catalog
from quanyu.connectors.imports.files import FileProblem
from quanyu.connectors.imports.importer import run_import
from quanyu.connectors.imports.report import BadRows
from quanyu.errors import InvalidInput
from quanyu.identity import lookup
from quanyu.platform import Platform
from testkit import new_tenant

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "imports"
# Sample file -> events it must produce.
EXPECTED = {
    "tmall": {"Order Completed": 3, "Order Refunded": 1, "Order Cancelled": 1},
    "jd": {"Order Completed": 2, "Order Cancelled": 1},
    "youzan": {"Order Completed": 2, "Order Refunded": 1},
    "douyin": {"Order Completed": 1, "Order Refunded": 1, "Order Cancelled": 1},
    "xiaohongshu": {"Order Completed": 2, "Order Refunded": 1},
}


def _source(platform: Platform, type_: str) -> Any:
    t = new_tenant(platform, type_)
    return platform.sources.get(t.workspace_id, t.source_id)


def _stored(platform: Platform, source_id: str) -> list[dict[str, Any]]:
    events = platform.warehouse.table("events")
    table = platform.warehouse.execute(
        events.filter(events.source_id == source_id).select(
            "event", "order_id", "amount", "anonymous_id", "timestamp", "properties", "context"
        )
    )
    return table.to_pylist()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_sample_export_imports_and_reimport_adds_nothing(platform: Platform, name: str) -> None:
    source = _source(platform, name)
    data = (EXAMPLES / f"{name}_orders.csv").read_bytes()
    report = run_import(platform, source, catalog.find("orders", name), data)
    assert dict(report.events) == EXPECTED[name]
    assert report.new == sum(EXPECTED[name].values()) and report.bad_rows == 0
    platform.pipeline.drain()
    again = run_import(platform, source, catalog.find("orders", name), data)
    assert again.new == 0 and again.already_stored == report.new and not again.written
    platform.pipeline.drain()
    assert len(_stored(platform, source.id)) == report.new


def test_tmall_gbk_export_keeps_platform_ids_masked_phones_and_refunds(platform: Platform) -> None:
    source = _source(platform, "tmall")
    data = (EXAMPLES / "tmall_orders.csv").read_bytes()
    assert data.decode("gbk")  # the sample is what 千牛 writes: GBK with CRLF
    report = run_import(platform, source, catalog.find("orders", "tmall"), data)
    assert report.encoding == "gb18030" and report.skipped["pending_payment"] == 1
    platform.pipeline.drain()
    rows = {(r["event"], r["order_id"]): r for r in _stored(platform, source.id)}
    done = rows[("Order Completed", "3012345678901234567")]
    assert done["amount"] == 268.0 and done["anonymous_id"] == "AAF3kZ9qABcdEfGh1JkLmN0p"
    assert '"tmall_buyer_id"' in done["context"] and "138****1234" in done["context"]
    assert "山茶记 明前龙井" in done["properties"]
    # 交易关闭 after payment with 退款金额: completed, then refunded in full.
    assert rows[("Order Refunded", "3012345678901234570")]["amount"] == 356.0
    assert (
        rows[("Order Refunded", "3012345678901234570")]["timestamp"]
        > rows[("Order Completed", "3012345678901234570")]["timestamp"]
    )
    assert ("Order Cancelled", "3012345678901234571") in rows
    # Times in the export are Beijing time.
    assert done["timestamp"].isoformat().startswith("2026-11-10T16:01:40")


def test_douyin_sub_orders_are_one_order_with_a_partial_refund(platform: Platform) -> None:
    source = _source(platform, "douyin")
    run_import(
        platform, source, catalog.find("orders", "douyin"), (EXAMPLES / "douyin_orders.csv").read_bytes()
    )
    platform.pipeline.drain()
    rows = {(r["event"], r["order_id"]): r for r in _stored(platform, source.id)}
    completed = rows[("Order Completed", "6912345678901234567")]
    assert completed["amount"] == pytest.approx(228.9)
    assert "7312345678901234567" in completed["properties"]  # the live room it was bought in
    assert rows[("Order Refunded", "6912345678901234567")]["amount"] == pytest.approx(29.9)


def test_buyer_ids_and_full_phones_feed_identity(platform: Platform) -> None:
    source = _source(platform, "youzan")
    run_import(
        platform, source, catalog.find("orders", "youzan"), (EXAMPLES / "youzan_orders.csv").read_bytes()
    )
    platform.pipeline.drain()
    by_phone = lookup.find(platform.warehouse, source.workspace_id, "phone", "13812341234")
    by_buyer = lookup.find(platform.warehouse, source.workspace_id, "youzan_id", "yz_8H2kLm9P")
    assert by_phone == by_buyer


BAD = (
    "订单号,订单状态,订单创建时间,买家付款时间,买家ID,订单实付金额,商品名称,商品数量\n"
    "E1,交易成功,2026-11-11 10:00:00,2026-11-11 10:00:30,yz_1,268.00,龙井,1\n"
    "E2,交易成功,2026-13-45 10:00:00,,yz_2,12.00,龙井,1\n"
    "E3,交易成功,2026-11-11 10:00:00,,yz_3,abc,龙井,1\n"
    "E4,飞走了,2026-11-11 10:00:00,,yz_4,1.00,龙井,1\n"
    "E5,交易成功,2026-11-11 10:00:00\n"
)


def test_bad_rows_are_reported_by_line_and_nothing_is_written(platform: Platform) -> None:
    source = _source(platform, "youzan")
    with pytest.raises(BadRows) as caught:
        run_import(platform, source, catalog.find("orders", "youzan"), BAD.encode())
    report = caught.value.report
    assert report.bad_rows == 4 and not report.written
    by_line = {p.line: p for p in report.problems}
    assert set(by_line) == {3, 4, 5, 6}
    assert by_line[3].column == "订单创建时间" and "not a valid date" in by_line[3].message
    assert by_line[4].column == "订单实付金额"
    assert by_line[5].code == "unknown_status"
    assert by_line[6].code == "wrong_width"
    assert caught.value.status == 422
    assert platform.queue.backlog() == {}


def test_skip_bad_imports_the_good_rows_and_reports_the_rest(platform: Platform) -> None:
    source = _source(platform, "youzan")
    report = run_import(platform, source, catalog.find("orders", "youzan"), BAD.encode(), skip_bad=True)
    assert report.new == 1 and report.bad_rows == 4 and report.written


def test_dry_run_checks_and_counts_without_writing(platform: Platform) -> None:
    source = _source(platform, "jd")
    report = run_import(platform, source, catalog.find("orders", "jd"), (EXAMPLES / "jd_orders.csv").read_bytes(),
                        dry_run=True)  # fmt: skip
    assert report.new == 3 and not report.written and platform.queue.backlog() == {}


def test_wrong_encoding_is_a_clear_error(platform: Platform) -> None:
    source = _source(platform, "tmall")
    data = (EXAMPLES / "tmall_orders.csv").read_bytes()
    with pytest.raises(FileProblem) as caught:
        run_import(platform, source, catalog.find("orders", "tmall"), data, encoding="utf-8")
    assert caught.value.code == "wrong_encoding" and "line 1" in caught.value.message
    assert platform.queue.backlog() == {}


@pytest.mark.parametrize(
    ("cut", "code"),
    [(-40, "truncated_file"), (None, "truncated_file")],
)
def test_truncated_files_are_refused_whole(platform: Platform, cut: int | None, code: str) -> None:
    source = _source(platform, "jd")
    text = (EXAMPLES / "jd_orders.csv").read_text(encoding="utf-8")
    data = (
        text[:cut].encode() if cut else (text.rstrip("\n") + '\n286512345681,"100012345601,山茶记').encode()
    )
    with pytest.raises(FileProblem) as caught:
        run_import(platform, source, catalog.find("orders", "jd"), data)
    assert caught.value.code == code
    assert platform.queue.backlog() == {}


def test_missing_columns_and_binary_files(platform: Platform) -> None:
    source = _source(platform, "jd")
    with pytest.raises(FileProblem) as caught:
        run_import(platform, source, catalog.find("orders", "jd"), "订单号,商品名称\n1,茶\n".encode())
    assert caught.value.code == "missing_columns" and "订单状态" in caught.value.message
    with pytest.raises(FileProblem) as caught:
        run_import(platform, source, catalog.find("orders", "jd"), b"PK\x03\x04\x00\x00binary")
    assert caught.value.code == "not_text"


def test_excel_scientific_notation_order_ids_are_refused(platform: Platform) -> None:
    source = _source(platform, "jd")
    data = "订单号,订单状态,下单时间\n2.86512E+11,完成,2026-11-11 10:00:00\n".encode()
    with pytest.raises(BadRows) as caught:
        run_import(platform, source, catalog.find("orders", "jd"), data)
    assert "scientific notation" in caught.value.report.problems[0].message


def test_a_source_of_another_type_is_refused(platform: Platform) -> None:
    source = _source(platform, "website")
    with pytest.raises(InvalidInput) as caught:
        run_import(platform, source, catalog.find("orders", "jd"), (EXAMPLES / "jd_orders.csv").read_bytes())
    assert caught.value.code == "wrong_source_type"


def test_unknown_platform_names_the_choices() -> None:
    with pytest.raises(InvalidInput) as caught:
        catalog.find("orders", "pinduoduo")
    assert "tmall" in caught.value.message and caught.value.code == "unknown_platform"


def test_utf16_and_bom_exports_decode(platform: Platform) -> None:
    source = _source(platform, "jd")
    text = (EXAMPLES / "jd_orders.csv").read_text(encoding="utf-8")
    assert (
        run_import(platform, source, catalog.find("orders", "jd"), text.encode("utf-16"), dry_run=True).new
        == 3
    )
    assert (
        run_import(platform, source, catalog.find("orders", "jd"), text.encode("utf-8-sig"), dry_run=True).new
        == 3
    )
