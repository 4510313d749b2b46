"""`quanyu ads` on a data directory: links created and listed, a cost report imported twice
(the second time nothing new), bad rows listed with their lines, an audience file written."""

from __future__ import annotations

import json
from pathlib import Path

from testkit import run_cli

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "ads"


def test_ads_commands_on_a_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    opts = ["--data-dir", str(data)]
    run_cli("init", *opts, "--json")
    source = json.loads(run_cli("sources", "create", "百度营销", "--type", "ads", *opts, "--json").stdout)[
        "id"
    ]

    made = json.loads(run_cli("ads", "links", "create", "双11 搜索", "--source", source, "--target",
                              "https://shop.example.com/d11", "--campaign", "2026_double11", "--channel", "baidu",
                              "--utm-content", "banner_a", *opts, "--json").stdout)  # fmt: skip
    assert made["utm_source"] == "baidu" and made["url"].endswith(f"/a/{made['id']}")
    listed = json.loads(run_cli("ads", "links", "list", *opts, "--json").stdout)["items"]
    assert [(i["id"], i["clicks"]) for i in listed] == [(made["id"], 0)]
    bad = run_cli("ads", "links", "create", "x", "--source", source, "--target", "javascript:alert(1)",
                  "--campaign", "c", "--channel", "baidu", *opts, check=False)  # fmt: skip
    assert bad.returncode == 1 and "invalid target URL" in bad.stderr

    sample = str(SAMPLES / "costs_baidu.csv")
    first = json.loads(
        run_cli("ads", "costs", "import", sample, "--channel", "baidu", *opts, "--json").stdout
    )
    assert (first["inserted"], first["unchanged"]) == (5, 0)
    again = json.loads(
        run_cli("ads", "costs", "import", sample, "--channel", "baidu", *opts, "--json").stdout
    )
    assert (again["inserted"], again["unchanged"]) == (0, 5)
    human = run_cli("ads", "costs", "list", "--from", "2026-11-10", *opts)
    assert "2026_double11" in human.stdout

    broken = tmp_path / "broken.csv"
    broken.write_text("日期,计划名称,消耗\n2026-11-01,a,1\n2026-11-31,b,2\n", encoding="gbk")
    failed = run_cli("ads", "costs", "import", str(broken), "--channel", "tencent", *opts, check=False)
    assert failed.returncode == 1 and "3" in failed.stdout and "no such day" in failed.stdout

    segment = tmp_path / "segment.json"
    segment.write_text(json.dumps({"conditions": [{"event": "Ad Clicked"}]}))
    created = json.loads(
        run_cli("segments", "create", str(segment), "--name", "点击过广告", *opts, "--json").stdout
    )
    out = tmp_path / "audience.txt"
    result = json.loads(run_cli("ads", "audience", created["id"], "--id-type", "phone", "--hash", "md5", "-o",
                                str(out), *opts, "--json").stdout)  # fmt: skip
    assert result["count"] == 0 and out.read_bytes() == b""
    wrong = run_cli("ads", "audience", created["id"], "--hash", "sha1", "-o", str(out), *opts, check=False)
    assert wrong.returncode == 1 and "md5" in wrong.stderr
