"""The command line, in local mode (no server) and against a running server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from quanyu.cli.main import app
from testkit import LiveServer, run_cli

runner = CliRunner()


def cli(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_init_prints_credentials_and_sources_create_hides_secrets(tmp_path: Path) -> None:
    d = str(tmp_path / "d")
    creds = cli("init", "--data-dir", d, "--json")
    assert set(creds) == {"workspace_id", "api_token", "write_key"}
    src = cli("sources", "create", "公众号 OA", "--type", "wechat_oa", "--set", "token=s3cret", "--set", "app_id=wx1",
              "--data-dir", d, "--json")  # fmt: skip
    assert src["write_key"].startswith("wk_") and src["id"].startswith("src_")
    assert src["settings"] == {"app_id": "wx1"} and src["secret_settings"] == ["token"]
    assert (src["channel"], src["domain"], src["presence"]) == ("wechat_oa", "private", "online")
    listed = cli("sources", "list", "--data-dir", d, "--json")
    assert "s3cret" not in json.dumps(listed) and len(listed) == 2


def test_readable_errors_for_bad_input(tmp_path: Path) -> None:
    d = str(tmp_path / "d")
    result = runner.invoke(app, ["sources", "list", "--data-dir", d])
    assert result.exit_code == 1 and "quanyu init" in result.output
    cli("init", "--data-dir", d)
    result = runner.invoke(app, ["sources", "create", "x", "--type", "fax", "--data-dir", d])
    assert result.exit_code == 1 and "unknown source type" in result.output
    result = runner.invoke(
        app, ["sources", "create", "x", "--type", "pos", "--set", "novalue", "--data-dir", d]
    )
    assert result.exit_code == 1 and "KEY=VALUE" in result.output


def test_local_pipeline_quarantine_and_events(tmp_path: Path) -> None:
    from quanyu.collect.messages import Envelope
    from quanyu.platform import Platform
    from quanyu.settings import Settings

    d = tmp_path / "d"
    creds = cli("init", "--data-dir", str(d), "--json")
    platform = Platform(Settings(data_dir=d))
    source = platform.sources.by_write_key(creds["write_key"])
    assert source is not None
    items = [{"type": "track", "userId": "u1", "event": "Order Completed"}, {"type": "track", "userId": "u1"}]
    future, _ = platform.intake.accept(source, items, None, Envelope())
    future.result()
    platform.close()
    assert cli("pipeline", "run", "--once", "--data-dir", str(d), "--json")["inserted"] == 1
    status = cli("pipeline", "status", "--data-dir", str(d), "--json")
    assert (status["queued"], status["processed"], status["quarantined"]) == (0, 1, 1)
    [entry] = cli("quarantine", "list", "--data-dir", str(d), "--json")["items"]
    assert entry["code"] == "missing_field"
    replay = cli("quarantine", "replay", str(entry["id"]), "--data-dir", str(d), "--json")
    assert replay["failed"][0]["code"] == "missing_field"  # still invalid: nothing replayed
    [event] = cli("events", "tail", "--data-dir", str(d), "--json")
    assert event["event"] == "Order Completed"
    assert "Order Completed" in cli("events", "tail", "--data-dir", str(d))


def test_commands_go_through_the_api_when_a_server_holds_the_data_dir(
    live_server: tuple[LiveServer, dict[str, str]],
) -> None:
    server, creds = live_server
    d = str(server.data_dir)
    env = {"QUANYU_API_TOKEN": creds["api_token"]}
    created = json.loads(
        run_cli("sources", "create", "门店 POS", "--type", "pos", "--data-dir", d, "--json", env=env).stdout
    )
    resp = httpx.post(f"{server.url}/v1/track", json={"userId": "u", "event": "Order Completed"},
                      auth=(created["write_key"], ""))  # fmt: skip
    assert resp.status_code == 200
    run_cli("pipeline", "run", "--once", "--data-dir", d, "--json", env=env)
    [event] = json.loads(run_cli("events", "tail", "--data-dir", d, "--json", env=env).stdout)
    assert (event["channel"], event["presence"]) == ("pos", "offline")
    missing_token = run_cli("events", "tail", "--data-dir", d, check=False)
    assert missing_token.returncode == 1 and "QUANYU_API_TOKEN" in missing_token.stderr


def test_invalid_settings_are_a_readable_error_not_a_traceback(tmp_path: Path) -> None:
    d = str(tmp_path / "d")
    human = run_cli("init", "--data-dir", d, env={"QUANYU_PORT": "abc"}, check=False)
    assert human.returncode == 1
    assert "Traceback" not in human.stderr + human.stdout
    assert "QUANYU_PORT" in human.stderr and "错误 / error" in human.stderr
    scripted = run_cli("init", "--data-dir", d, "--json", env={"QUANYU_DEDUPE_WINDOW_DAYS": "3"}, check=False)
    assert scripted.returncode == 1
    error = json.loads(scripted.stderr)  # stdout carries only successful output
    assert error["code"] == "invalid_settings" and "QUANYU_DEDUPE_WINDOW_DAYS" in error["message"]
    assert not Path(d, "quanyu.db").exists()  # nothing was created from a bad configuration
