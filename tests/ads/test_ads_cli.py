"""`quanyu ads` on a data directory and through a running server: links created and listed, a
cost report imported twice (the second time nothing new), bad rows listed with their lines,
an audience file written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from quanyu.cli.main import app
from testkit import LiveServer

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "ads"
runner = CliRunner()


def cli(*args: str, code: int = 0, env: dict[str, str] | None = None) -> Any:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result


def as_json(*args: str, env: dict[str, str] | None = None) -> Any:
    return json.loads(cli(*args, "--json", env=env).stdout)


def test_ads_commands_on_a_data_directory(tmp_path: Path) -> None:
    opts = ["--data-dir", str(tmp_path / "data")]
    as_json("init", *opts)
    source = as_json("sources", "create", "百度营销", "--type", "ads", *opts)["id"]

    made = as_json("ads", "links", "create", "双11 搜索", "--source", source, "--target", "https://shop.example.com/d11",
                   "--campaign", "2026_double11", "--channel", "baidu", "--utm-content", "banner_a", *opts)  # fmt: skip
    assert made["utm_source"] == "baidu" and made["url"].endswith(f"/a/{made['id']}")
    listed = as_json("ads", "links", "list", *opts)["items"]
    assert [(i["id"], i["clicks"]) for i in listed] == [(made["id"], 0)]
    assert as_json("ads", "links", "show", made["id"], *opts)["campaign"] == "2026_double11"
    bad = cli("ads", "links", "create", "x", "--source", source, "--target", "javascript:alert(1)", "--campaign", "c",
              "--channel", "baidu", *opts, code=1)  # fmt: skip
    assert "invalid target URL" in bad.output

    sample = str(SAMPLES / "costs_baidu.csv")
    first = as_json("ads", "costs", "import", sample, "--channel", "baidu", *opts)
    assert (first["inserted"], first["unchanged"]) == (5, 0)
    again = as_json("ads", "costs", "import", sample, "--channel", "baidu", *opts)
    assert (again["inserted"], again["unchanged"]) == (0, 5)
    assert "2026_double11" in cli("ads", "costs", "list", "--from", "2026-11-10", *opts).stdout
    assert "YYYY-MM-DD" in cli("ads", "costs", "list", "--from", "11/10", *opts, code=1).output

    broken = tmp_path / "broken.csv"
    broken.write_text("日期,计划名称,消耗\n2026-11-01,a,1\n2026-11-31,b,2\n", encoding="gbk")
    failed = cli("ads", "costs", "import", str(broken), "--channel", "tencent", *opts, code=1)
    assert "no such day" in failed.output and "1 bad rows" in failed.output

    segment = tmp_path / "segment.json"
    segment.write_text(json.dumps({"conditions": [{"event": "Ad Clicked"}]}))
    created = as_json("segments", "create", str(segment), "--name", "点击过广告", *opts)
    out = tmp_path / "audience.txt"
    result = as_json(
        "ads", "audience", created["id"], "--id-type", "phone", "--hash", "md5", "-o", str(out), *opts
    )
    assert result["count"] == 0 and out.read_bytes() == b""
    wrong = cli("ads", "audience", created["id"], "--hash", "sha1", "-o", str(out), *opts, code=1)
    assert "md5" in wrong.output


def test_ads_commands_through_a_running_server(
    live_server: tuple[LiveServer, dict[str, str]], tmp_path: Path
) -> None:
    server, creds = live_server
    env = {"QUANYU_API_TOKEN": creds["api_token"]}
    opts = ["--data-dir", str(server.data_dir)]
    source = as_json("sources", "create", "巨量引擎", "--type", "ads", *opts, env=env)["id"]
    made = as_json("ads", "links", "create", "抖音信息流", "--source", source, "--target", "https://shop.example.com/",
                   "--campaign", "always_on", "--channel", "ocean_engine", *opts, env=env)  # fmt: skip
    assert made["created_by"].startswith("token:")
    click = httpx.get(f"{server.url}/a/{made['id']}?clickid=EQ1", follow_redirects=False)
    assert click.status_code == 302 and click.headers["location"].endswith(
        "utm_campaign=always_on&clickid=EQ1"
    )

    sample = str(SAMPLES / "costs_ocean_engine.csv")
    assert as_json("ads", "costs", "import", sample, "--channel", "巨量引擎", *opts, env=env)["inserted"] == 3
    dry = as_json("ads", "costs", "import", sample, "--channel", "ocean_engine", "--dry-run", *opts, env=env)
    assert (dry["unchanged"], dry["dry_run"]) == (3, True)
    totals = as_json("ads", "costs", "list", "--campaign", "always_on", *opts, env=env)["totals"]
    assert totals[0]["spend_micros"] == 780_300_000

    segment = tmp_path / "segment.json"
    segment.write_text(json.dumps({"conditions": [{"event": "Ad Clicked"}]}))
    created = as_json("segments", "create", str(segment), "--name", "点击过广告", *opts, env=env)
    out = tmp_path / "devices.csv"
    result = as_json("ads", "audience", created["id"], "--id-type", "device_id", "--format", "csv", "-o", str(out),
                     *opts, env=env)  # fmt: skip
    assert result["members"] == 0 and out.read_text() == "device_id_sha256\n"
