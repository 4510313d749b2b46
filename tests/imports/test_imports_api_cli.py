"""`POST /api/v1/imports/{kind}` and `quanyu import …`: reports, error shapes, progress-free JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from testkit import Tenant, new_tenant, run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "imports"


def test_api_imports_a_file_body_and_reports(client: Any, platform: Any) -> None:
    t: Tenant = new_tenant(platform, "jd")
    url = f"/api/v1/imports/orders?platform=jd&source_id={t.source_id}"
    resp = client.post(url, content=(EXAMPLES / "jd_orders.csv").read_bytes(), headers=t.bearer)
    assert resp.status_code == 200, resp.text
    assert resp.json()["new"] == 3 and resp.json()["events"]["Order Completed"] == 2
    bad = client.post(url, content="订单号,订单状态,下单时间\n1,完成,昨天\n".encode(), headers=t.bearer)
    assert bad.status_code == 422
    body = bad.json()
    assert body["code"] == "bad_rows" and body["details"]["problems"][0]["line"] == 2
    wrong = client.post(url + "&encoding=utf-8", content=(EXAMPLES / "tmall_orders.csv").read_bytes(),
                        headers=t.bearer)  # fmt: skip
    assert wrong.status_code == 400 and wrong.json()["code"] == "wrong_encoding"
    other = new_tenant(platform, "jd")
    stranger = client.post(url, content=b"x", headers=other.bearer)
    assert stranger.status_code == 404
    formats = client.get("/api/v1/imports/formats", headers=t.bearer).json()
    assert {f["format"] for f in formats} >= {
        "tmall",
        "jd",
        "youzan",
        "douyin",
        "xiaohongshu",
        "pos",
        "customers",
    }


def test_cli_imports_orders_and_reimport_adds_nothing(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "d")
    run_cli("init", "--data-dir", data_dir, "--json")
    src = json.loads(
        run_cli("sources", "create", "抖店", "--type", "douyin", "--data-dir", data_dir, "--json").stdout
    )
    args = ["import", "orders", str(EXAMPLES / "douyin_orders.csv"), "--platform", "douyin", "--source", src["id"],
            "--data-dir", data_dir]  # fmt: skip
    first = json.loads(run_cli(*args, "--json").stdout)
    assert first["new"] == 3 and first["pipeline"]["inserted"] == 3
    again = run_cli(*args)
    assert "已存在 already stored" in again.stdout and "│ 3 " in again.stdout


def test_cli_bad_rows_print_lines_and_exit_1(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "d")
    run_cli("init", "--data-dir", data_dir, "--json")
    src = json.loads(
        run_cli("sources", "create", "门店", "--type", "pos", "--data-dir", data_dir, "--json").stdout
    )
    bad = tmp_path / "pos.csv"
    bad.write_text(
        "门店编号,小票号,交易时间,金额\nSH001,1,2026-11-11 10:00,1.00\nSH001,2,今天,1.00\n", encoding="utf-8"
    )
    proc = run_cli("import", "pos", str(bad), "--source", src["id"], "--data-dir", data_dir, check=False)
    assert proc.returncode == 1
    assert (
        "3" in proc.stdout and "交易时间" in proc.stdout and "nothing was" in proc.stderr.replace("\n", " ")
    )
    dry = json.loads(run_cli("import", "pos", str(EXAMPLES / "pos_transactions.csv"), "--source", src["id"],
                             "--data-dir", data_dir, "--dry-run", "--json").stdout)  # fmt: skip
    assert dry["dry_run"] and dry["new"] == 4 and not dry["written"]


def test_cli_formats_lists_headers() -> None:
    out = json.loads(run_cli("import", "formats", "--json").stdout)
    tmall = next(f for f in out if f["format"] == "tmall")
    assert any("订单编号" in c["headers"] for c in tmall["columns"])
