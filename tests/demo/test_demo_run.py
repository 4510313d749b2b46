"""`quanyu demo` end to end on a small brand: everything arrives through the public API."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert summary["accepted"] == summary["events_generated"] == summary["processed"]
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
    again = run_cli(*args, check=False)
    assert again.returncode == 1 and "--reset" in again.stderr
