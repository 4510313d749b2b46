"""Segments from the command line: preview a definition file, save it, list, show, refresh and
export members, in local mode and through a running server."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
from typer.testing import CliRunner

from quanyu.cli.main import app
from quanyu.platform import Platform
from quanyu.settings import Settings
from segments.segmentkit import EVIL_NAME, seed
from testkit import LiveServer, run_cli

runner = CliRunner()
BUYERS = {"conditions": [{"event": "Order Completed"}]}


def shop_dir(tmp_path: Path) -> str:
    """An initialised data directory holding the segment kit's customers."""
    d = str(tmp_path / "d")
    creds = json.loads(runner.invoke(app, ["init", "--data-dir", d, "--json"]).stdout)
    platform = Platform(Settings(data_dir=Path(d)))
    seed(platform, creds["workspace_id"])
    platform.close()
    return d


def write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False))
    return str(path)


def quanyu(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_preview_create_refresh_and_export_locally(tmp_path: Path) -> None:
    d = shop_dir(tmp_path)
    buyers = write(tmp_path, "buyers.json", BUYERS)

    shown = quanyu("segments", "preview", buyers, "--data-dir", d).stdout
    assert "人数 / members: 3" in shown and "韩梅" in shown and "SELECT" in shown
    assert "first-touch channel" in shown and "jd" in shown and "private_only" in shown
    body = json.loads(
        quanyu("segments", "preview", buyers, "--sample", "1", "--data-dir", d, "--json").stdout
    )
    assert body["count"] == 3 and len(body["sample"]) == 1

    made = json.loads(
        quanyu("segments", "create", buyers, "--name", "买家 Buyers", "--data-dir", d, "--json").stdout
    )
    sid = made["id"]
    assert made["version"] == 1 and made["created_by"] == "cli"
    listed = quanyu("segments", "list", "--data-dir", d).stdout
    assert sid in listed and "模式 mode" in listed and "实时 realtime" in listed

    refreshed = quanyu("segments", "refresh", sid, "--data-dir", d).stdout
    assert sid in refreshed and "进入 entered" in refreshed
    again = json.loads(quanyu("segments", "refresh", "--all", "--data-dir", d, "--json").stdout)
    assert [(r["segment_id"], r["entered"], r["exited"]) for r in again["refreshed"]] == [(sid, 0, 0)]

    shown = quanyu("segments", "show", sid, "--data-dir", d).stdout
    assert "买家 Buyers" in shown and "Order Completed" in shown and "成员 members" in shown
    assert "why this mode" in shown and "every condition can be decided" in shown
    page = json.loads(quanyu("segments", "members", sid, "--limit", "2", "--data-dir", d, "--json").stdout)
    assert page["total"] == 3 and len(page["items"]) == 2 and page["next_cursor"]
    assert "--cursor" in quanyu("segments", "members", sid, "--limit", "2", "--data-dir", d).stdout

    out = tmp_path / "members.csv"
    quanyu("segments", "members", sid, "--format", "csv", "--output", str(out), "--data-dir", d)
    rows = {r["profile_id"]: r for r in csv.DictReader(io.StringIO(out.read_text("utf-8-sig")))}
    assert set(rows) == {"prof_li", "prof_han", "prof_evil"} and rows["prof_evil"]["name"] == "'" + EVIL_NAME
    parquet = tmp_path / "members.parquet"
    quanyu("segments", "members", sid, "--format", "parquet", "-o", str(parquet), "--data-dir", d)
    assert pq.read_table(parquet).num_rows == 3


def test_mistakes_are_readable(tmp_path: Path) -> None:
    d = shop_dir(tmp_path)
    bad = write(tmp_path, "bad.json", {"conditions": [{"trait": "city", "op": "like"}]})
    refused = runner.invoke(app, ["segments", "preview", bad, "--data-dir", d])
    assert refused.exit_code == 1 and "conditions[0].op" in refused.output
    as_json = runner.invoke(app, ["segments", "create", bad, "--name", "x", "--data-dir", d, "--json"])
    assert as_json.exit_code == 1 and json.loads(as_json.stderr)["code"] == "invalid_segment"
    (tmp_path / "broken.json").write_text("{not json")
    broken = runner.invoke(app, ["segments", "preview", str(tmp_path / "broken.json"), "--data-dir", d])
    assert broken.exit_code == 1 and "not valid JSON" in broken.output
    missing = runner.invoke(app, ["segments", "show", "seg_nope", "--data-dir", d])
    assert missing.exit_code == 1 and "seg_nope not found" in missing.output
    neither = runner.invoke(app, ["segments", "refresh", "--data-dir", d])
    assert neither.exit_code == 1 and "--all" in neither.output
    no_output = runner.invoke(app, ["segments", "members", "seg_x", "--format", "csv", "--data-dir", d])
    assert no_output.exit_code == 1 and "--output" in no_output.output


def test_segments_through_a_running_server(
    live_server: tuple[LiveServer, dict[str, str]], tmp_path: Path
) -> None:
    server, creds = live_server
    resp = httpx.post(f"{server.url}/v1/track", auth=(creds["write_key"], ""),
                      json={"userId": "srv-1", "event": "Order Completed", "properties": {"total": 99}})  # fmt: skip
    assert resp.status_code == 200
    env = {"QUANYU_API_TOKEN": creds["api_token"]}
    d = str(server.data_dir)
    run_cli("pipeline", "run", "--once", "--data-dir", d, env=env)
    buyers = write(tmp_path, "buyers.json", BUYERS)
    made = json.loads(
        run_cli("segments", "create", buyers, "--name", "买家", "--data-dir", d, "--json", env=env).stdout
    )
    assert made["created_by"].startswith("token:")
    done = json.loads(run_cli("segments", "refresh", made["id"], "--data-dir", d, "--json", env=env).stdout)
    assert (done["members"], done["entered"]) == (1, 1)

    # A realtime segment: the next buyer enters in the pipeline, no refresh asked for.
    resp = httpx.post(f"{server.url}/v1/track", auth=(creds["write_key"], ""),
                      json={"userId": "srv-2", "event": "Order Completed", "properties": {"total": 5}})  # fmt: skip
    assert resp.status_code == 200
    run_cli("pipeline", "run", "--once", "--data-dir", d, env=env)
    shown = json.loads(run_cli("segments", "show", made["id"], "--data-dir", d, "--json", env=env).stdout)
    assert shown["mode"] == "realtime" and shown["membership"]["members"] == 2
    signals = httpx.get(f"{server.url}/api/v1/segments/signals", params={"segment_id": made["id"]},
                        headers={"Authorization": f"Bearer {creds['api_token']}"}).json()["items"]  # fmt: skip
    assert [(s["signal"], s["mode"]) for s in signals] == [
        ("segment_entered", "on_demand"),
        ("segment_entered", "realtime"),
    ]
    out = tmp_path / "m.csv"
    run_cli("segments", "members", made["id"], "--format", "csv", "-o", str(out), "--data-dir", d, env=env)
    assert out.read_text("utf-8-sig").splitlines()[0].startswith('"profile_id"')
