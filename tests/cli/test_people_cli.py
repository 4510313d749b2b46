"""Finding people from the command line (local mode and through a running server)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from quanyu.cli.main import app
from quanyu.collect.messages import Envelope
from quanyu.platform import Platform
from quanyu.settings import Settings
from testkit import LiveServer, run_cli

runner = CliRunner()


def test_lookup_show_timeline_history_and_rebuild_locally(tmp_path: Path) -> None:
    d = str(tmp_path / "d")
    creds = json.loads(runner.invoke(app, ["init", "--data-dir", d, "--json"]).stdout)
    platform = Platform(Settings(data_dir=Path(d)))
    source = platform.sources.by_write_key(creds["write_key"])
    assert source is not None
    items = [
        {"type": "identify", "userId": "u-1", "traits": {"phone": "13800001234"}, "timestamp": "2026-05-01T08:00:00Z"},
        {"type": "track", "userId": "u-1", "event": "Order Completed", "timestamp": "2026-05-02T08:00:00Z",
         "properties": {"order_id": "o1", "total": 99.5, "currency": "CNY", "products": [{"name": "白茶 White tea"}]}},
    ]  # fmt: skip
    future, _ = platform.intake.accept(source, items, None, Envelope())
    future.result()
    platform.close()
    assert runner.invoke(app, ["pipeline", "run", "--once", "--data-dir", d]).exit_code == 0

    found = runner.invoke(app, ["profiles", "lookup", "phone", "138-0000-1234", "--data-dir", d, "--json"])
    assert found.exit_code == 0, found.output
    person = json.loads(found.stdout)
    assert {i["type"] for i in person["identifiers"]} == {"user_id", "phone"}
    shown = runner.invoke(app, ["profiles", "show", person["profile_id"], "--data-dir", d])
    assert "13800001234" in shown.stdout
    timeline = runner.invoke(app, ["profiles", "timeline", person["profile_id"], "--data-dir", d])
    assert (
        "Order Completed" in timeline.stdout
        and "99.50 CNY" in timeline.stdout
        and "White tea" in timeline.stdout
    )
    history = runner.invoke(app, ["profiles", "history", person["profile_id"], "--data-dir", d, "--json"])
    assert json.loads(history.stdout)["items"] == []
    rebuilt = json.loads(runner.invoke(app, ["identity", "rebuild", "--data-dir", d, "--json"]).stdout)
    assert rebuilt["profiles"] == 1 and rebuilt["merges"] == 0

    missing = runner.invoke(app, ["profiles", "lookup", "phone", "13900000000", "--data-dir", d])
    assert missing.exit_code == 1 and "no profile has phone:13900000000" in missing.output
    junk = runner.invoke(app, ["profiles", "lookup", "phone", "undefined", "--data-dir", d, "--json"])
    assert junk.exit_code == 1 and json.loads(junk.stderr)["code"] == "invalid_identifier"


def test_lookup_through_a_running_server(live_server: tuple[LiveServer, dict[str, str]]) -> None:
    server, creds = live_server
    resp = httpx.post(f"{server.url}/v1/identify", json={"userId": "srv-1", "traits": {"email": "A@Tea.cn"}},
                      auth=(creds["write_key"], ""))  # fmt: skip
    assert resp.status_code == 200
    env = {"QUANYU_API_TOKEN": creds["api_token"]}
    d = str(server.data_dir)
    run_cli("pipeline", "run", "--once", "--data-dir", d, "--json", env=env)
    person = json.loads(
        run_cli("profiles", "lookup", "email", "a@tea.cn", "--data-dir", d, "--json", env=env).stdout
    )
    assert {(i["type"], i["value"]) for i in person["identifiers"]} == {
        ("user_id", "srv-1"),
        ("email", "a@tea.cn"),
    }


def test_match_command_reports_and_checks_its_thresholds(tmp_path: Path) -> None:
    d = str(tmp_path / "d")
    runner.invoke(app, ["init", "--data-dir", d, "--json"])
    bad = runner.invoke(
        app, ["identity", "match", "--threshold", "0.5", "--review-threshold", "0.9", "--data-dir", d]
    )
    assert bad.exit_code == 1 and "review-threshold" in bad.output
    ok = runner.invoke(app, ["identity", "match", "--data-dir", d, "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["records"] == 0
