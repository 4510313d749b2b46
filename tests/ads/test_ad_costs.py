"""Ad cost imports: platform reports with Chinese headers in UTF-8, UTF-8 with a BOM and GBK;
the whole file checked first (bad rows with their line numbers, then nothing written);
re-imports idempotent (0 inserted); totals per day, channel and campaign; every sample file
under docs/examples/ads imports."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from quanyu.connectors.ads import costs
from quanyu.errors import QuanyuError
from quanyu.platform import Platform
from testkit import Tenant

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "ads"
REPORT = """日期,计划名称,展现,点击,消耗(元)
2026-11-01,双11预热,1000,50,120.50
2026/11/02,双11预热,1200,61,"1,130.00"
2026-11-02,春茶上新,300,,0
"""


def post(client: TestClient, tenant: Tenant, data: bytes, status: int = 200, **params: Any) -> Any:
    resp = client.post("/api/v1/ad-costs/import", content=data, params=params,
                       headers={**tenant.bearer, "Content-Type": "text/csv"})  # fmt: skip
    assert resp.status_code == status, resp.text
    return resp.json()


def stored(client: TestClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    resp = client.get("/api/v1/ad-costs", params=params, headers=tenant.bearer)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_gbk_report_imports_and_reimport_changes_nothing(client: TestClient, tenant: Tenant) -> None:
    data = REPORT.encode("gbk")
    first = post(client, tenant, data, channel="baidu")
    assert (first["inserted"], first["updated"], first["unchanged"], first["encoding"]) == (3, 0, 0, "gbk")
    again = post(client, tenant, data, channel="baidu")
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 3)
    # A corrected report changes the one row that changed.
    fixed = post(client, tenant, REPORT.replace("120.50", "121.00").encode("utf-8-sig"), channel="百度")
    assert (fixed["inserted"], fixed["updated"], fixed["unchanged"], fixed["encoding"]) == (0, 1, 2, "utf-8")

    body = stored(client, tenant)
    assert [(i["day"], i["campaign"], i["spend"], i["clicks"]) for i in body["items"]] == [
        ("2026-11-01", "双11预热", 121.0, 50), ("2026-11-02", "双11预热", 1130.0, 61),
        ("2026-11-02", "春茶上新", 0.0, None)]  # fmt: skip
    assert body["totals"] == [{"currency": "CNY", "spend": 1251.0, "spend_micros": 1_251_000_000,
                               "impressions": 2500, "clicks": 111, "days": 3}]  # fmt: skip
    campaign = {(c["campaign"]): c for c in body["by_campaign"]}
    assert campaign["双11预热"]["spend"] == 1251.0 and campaign["双11预热"]["days"] == 2
    assert [c["channel"] for c in body["by_channel"]] == ["baidu"]
    only = stored(client, tenant, **{"from": "2026-11-02", "to": "2026-11-02", "campaign": "春茶上新"})
    assert len(only["items"]) == 1 and only["items"][0]["impressions"] == 300
    assert stored(client, tenant, channel="tencent")["items"] == []


def test_bad_rows_are_reported_with_line_numbers_and_nothing_is_written(
    client: TestClient, tenant: Tenant
) -> None:
    data = b"""day,campaign,spend,clicks
2026-11-01,ok,10,1
2026-13-01,bad day,10,1
2026-11-02,,10,1
2026-11-02,negative,-5,1
2026-11-02,not money,abc,1
2026-11-02,half a click,1,1.5
2026-11-01,ok,11,1
01/11/2026,us style,1,1
"""
    body = post(client, tenant, data, 400, channel="tencent")
    assert body["code"] == "invalid_cost_rows"
    errors = body["details"]["errors"]
    assert [(e["line"], e["column"]) for e in errors] == [(3, "day"), (4, "campaign"), (5, "spend"), (6, "spend"),
                                                          (7, "clicks"), (8, None), (9, "day")]  # fmt: skip
    assert "line 2" in errors[5]["reason"] and body["details"]["error_count"] == 7
    assert "7" in body["message"]
    assert stored(client, tenant)["items"] == []


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"day,campaign,spend\n2026-11-01,\x80\xff\x80,1\n", "unknown_encoding"),
        ("日期,计划名称,消耗\n2026-11-01,春".encode()[:-1], "truncated_file"),
        (b"PK\x03\x04\x00\x00binary", "not_text"),
        ("日期,计划名称,消耗\n2026-11-01,春茶".encode("big5", errors="ignore"), "missing_cost_columns"),
        (b"date,name,amount\n2026-11-01,x,1\n", "missing_cost_columns"),
        (b"day,campaign,spend\n", "empty_cost_file"),
    ],
)
def test_unreadable_files_are_clear_errors(
    client: TestClient, tenant: Tenant, data: bytes, code: str
) -> None:
    body = post(client, tenant, data, 400, channel="baidu")
    assert body["code"] == code, body
    chinese, english = body["message"].split("/ ", 1)  # bilingual
    assert re.search(r"[\u4e00-\u9fff]", chinese) and re.search(r"[a-z]{3}", english)


def test_truncated_rows_and_open_quotes_are_bad_rows(client: TestClient, tenant: Tenant) -> None:
    cut_row = b"day,campaign,spend,clicks\n2026-11-01,a,1,1\n2026-11-02,b"
    body = post(client, tenant, cut_row, 400, channel="baidu")
    assert body["details"]["errors"][0]["line"] == 3 and "truncated" in body["details"]["errors"][0]["reason"]
    open_quote = b'day,campaign,spend\n2026-11-01,a,1\n2026-11-02,"b,2\n'
    body = post(client, tenant, open_quote, 400, channel="baidu")
    assert "truncated" in body["details"]["errors"][0]["reason"]
    assert stored(client, tenant)["items"] == []


def test_channel_is_required_somewhere_and_checked(client: TestClient, tenant: Tenant) -> None:
    data = "日期,计划名称,消耗\n2026-11-01,春茶上新,1\n".encode()
    assert post(client, tenant, data, 400)["code"] == "channel_required"
    assert post(client, tenant, data, 400, channel="myspace")["code"] == "invalid_channel"
    with_column = (
        "日期,渠道,计划名称,消耗\n2026-11-01,巨量引擎,春茶上新,1\n2026-11-01,火星,春茶上新,1\n".encode()
    )
    body = post(client, tenant, with_column, 400)
    assert [(e["line"], e["column"]) for e in body["details"]["errors"]] == [(3, "channel")]


def test_oversized_uploads_are_413(client: TestClient, tenant: Tenant) -> None:
    assert (
        post(client, tenant, b"x" * (costs.MAX_BYTES + 1), 413, channel="baidu")["code"]
        == "request_too_large"
    )


def test_dry_run_counts_without_writing(client: TestClient, tenant: Tenant) -> None:
    data = REPORT.encode()
    dry = post(client, tenant, data, channel="ocean_engine", dry_run="true")
    assert (dry["inserted"], dry["dry_run"]) == (3, True)
    assert stored(client, tenant)["items"] == []


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.csv")), ids=lambda p: p.name)
def test_every_sample_file_imports(client: TestClient, tenant: Tenant, path: Path) -> None:
    channel = path.stem.removeprefix("costs_")
    params = {"channel": channel} if channel in costs.CHANNELS else {}
    first = post(client, tenant, path.read_bytes(), **params)
    assert first["inserted"] == first["rows"] > 0
    assert post(client, tenant, path.read_bytes(), **params)["unchanged"] == first["rows"]
    # The GBK copy (Excel on Chinese Windows) reads the same.
    gbk = path.read_bytes().decode("utf-8-sig").encode("gbk")
    assert post(client, tenant, gbk, **params)["unchanged"] == first["rows"]


def test_the_baidu_sample_skips_its_title_and_total_lines(client: TestClient, tenant: Tenant) -> None:
    body = post(client, tenant, (SAMPLES / "costs_baidu.csv").read_bytes(), channel="baidu")
    assert (body["rows"], body["skipped_lines"]) == (5, 3)
    total = stored(client, tenant)["totals"][0]
    assert total["spend_micros"] == 5_170_550_000 and total["clicks"] == 2648


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_spend_is_exact(amount: Decimal) -> None:
    assert costs.parse_spend(f"{amount:,}") == int(amount * 1_000_000)
    assert costs.parse_spend(str(amount)) == int(amount * 1_000_000)


def test_days_and_spend_parse_strictly() -> None:
    assert [costs.parse_day(d).isoformat() for d in ("2026-11-01", "2026/11/1", "20261101", "2026.11.01")] == [
        "2026-11-01"] * 4  # fmt: skip
    for bad in ("2026-02-30", "11/01/2026", "2026-11", "昨天"):
        with pytest.raises(ValueError):
            costs.parse_day(bad)
    for bad in ("-1", "NaN", "Infinity", "1e400", "0.0000001", "十元"):
        with pytest.raises(ValueError):
            costs.parse_spend(bad)
    assert costs.parse_spend("¥88") == costs.parse_spend("88元") == 88_000_000
    assert (
        costs.parse_day("2026-11-01 00:00:00")
        == costs.parse_day("2026/11/01T00:00")
        == costs.parse_day("20261101")
    )
    with pytest.raises(ValueError):
        costs.parse_day("2026-11-01 13:00:00")  # an hourly report
    crlf = costs.parse_csv(REPORT.replace("\n", "\r\n").encode("gbk"), "baidu")
    assert [r.line for r in crlf.rows] == [2, 3, 4] and crlf.encoding == "gbk"
    with pytest.raises(QuanyuError):
        costs.parse_csv(b"x" * (costs.MAX_BYTES + 1))


@pytest.mark.postgres
def test_cost_import_on_postgresql(pg_client: tuple[TestClient, Platform, Tenant]) -> None:
    client, _, tenant = pg_client
    assert post(client, tenant, REPORT.encode("gbk"), channel="baidu")["inserted"] == 3
    assert post(client, tenant, REPORT.encode(), channel="baidu")["unchanged"] == 3
    assert stored(client, tenant, **{"from": "2026-11-02"})["totals"][0]["clicks"] == 61
