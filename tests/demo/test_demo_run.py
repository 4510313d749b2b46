"""`quanyu demo` end to end on a small brand: everything arrives through the public API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from testkit import free_port, run_cli


def test_small_demo_ingests_everything_and_summarises(tmp_path: Path) -> None:
    d = tmp_path / "demo"
    args = [
        "demo",
        "--people",
        "150",
        "--no-serve",
        "--json",
        "--data-dir",
        str(d),
        "--port",
        str(free_port()),
    ]
    summary = json.loads(run_cli(*args).stdout)
    assert summary["events_generated"] > 1000
    # Everything arrived, through /v1/batch or a connector; the connectors add only the unionid
    # lookups that follow a follower's first WeChat push.
    connectors = summary["connectors"]
    assert summary["accepted"] == summary["processed"]
    assert summary["accepted"] == summary["events_generated"] + connectors["unionid_lookups"]
    assert summary["quarantined"] == 0 and summary["duplicates"] == 0
    channels = {c["channel"] for c in summary["channels"]}
    assert {"website", "mini_program", "wechat_oa", "tmall", "pos"} <= channels
    # The seed scenarios are saved as segments and filled: the win-back one finds buyers.
    segments = {s["name"].split(" / ")[1]: s["members"] for s in summary["segments"]}
    assert len(segments) == 5 and segments["customers not reached in 30 days"] > 0
    truth = (d / "ground_truth.csv").read_text(encoding="utf-8").splitlines()
    assert truth[0] == "person_id,source_key,identifier_type,identifier_value" and len(truth) > 150
    # The ground truth is kept aside: no person id reached the warehouse.
    import duckdb

    con = duckdb.connect(str(d / "warehouse.duckdb"), read_only=True)
    person = truth[1].split(",")[0]
    hits = con.execute(
        "SELECT count(*) FROM events WHERE contains(coalesce(properties::VARCHAR, '') || "
        "coalesce(traits::VARCHAR, '') || coalesce(context::VARCHAR, '') || coalesce(user_id, ''), ?)",
        [person],
    ).fetchone()
    assert hits == (0,)
    _used_the_connectors(d, connectors)
    again = run_cli(*args, check=False)
    assert again.returncode == 1 and "--reset" in again.stderr


def _used_the_connectors(d: Path, connectors: dict[str, Any]) -> None:
    """Marketplace orders and POS receipts came as export files through the importer, the
    official account's events as WeChat pushes (issue 6)."""
    import duckdb

    files = {f["file"]: f for f in connectors["files"]}
    assert {"tmall_orders_year.csv", "pos_year.csv"} <= set(files)
    assert files["tmall_orders_year.csv"]["new"] > 0 and connectors["wechat_pushes"] > 0
    assert all((d / "exports" / name).is_file() for name in files)
    assert connectors["imported_events"] == sum(f["new"] for f in files.values() if f["route"] != "ad-costs")
    con = duckdb.connect(str(d / "warehouse.duckdb"), read_only=True)
    orders = con.execute(
        "SELECT e.workspace_id, e.source_id, e.message_id, e.event, e.order_id FROM events e "
        "WHERE e.source_type = 'tmall' AND e.event IN ('Order Completed', 'Order Refunded')"
    ).fetchall()
    assert orders
    for workspace_id, source_id, message_id, event, order_id in orders:
        key = f"tmall:{order_id}:{'completed' if event == 'Order Completed' else 'refunded'}"
        assert message_id == _import_id(workspace_id, source_id, key)
    # Follows came as WeChat pushes: the connector's library and vocabulary (a QR scene, bare).
    follows = con.execute(
        "SELECT json_extract_string(context, '$.library.name'), json_extract_string(properties, '$.scene_type'), "
        "count(*) FROM events WHERE source_type = 'wechat_oa' AND event = 'Official Account Followed' "
        "GROUP BY ALL"
    ).fetchall()
    assert follows and {lib for lib, _, _ in follows} == {"quanyu-wechat-oa"}
    assert {kind for _, kind, _ in follows} <= {"qr_code", "other"}
    con.close()


def _import_id(workspace_id: str, source_id: str, key: str) -> str:
    from quanyu.collect.sources import SourceInfo
    from quanyu.connectors.imports.importer import message_id

    source = SourceInfo(source_id, workspace_id, "", "tmall", "tmall", "", "", "")
    return message_id(source, key)
