"""Journeys, channels, the messaging policy and consent from the command line, in local mode and
through a running server: save a journey file (a script reads its id from --json), enroll people,
run rounds (`--advance 3d` makes a two-day wait pass), read the statistics; bad files and bad
options fail with a readable bilingual message and exit code 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from quanyu.cli.main import app
from testkit import LiveServer, run_cli

runner = CliRunner()
WELCOME = {
    "name": "欢迎 Welcome",
    "trigger": {"type": "event", "event": "Signed Up"},
    "start": "hello",
    "nodes": {
        "hello": {"type": "send", "channel": "sink", "content": {"text": "你好 Hello"}, "next": "later"},
        "later": {"type": "wait", "duration": {"days": 2}, "next": "bye"},
        "bye": {"type": "send", "channel": "sink", "content": {"text": "再见 Bye"}},
    },
}


def data_dir(tmp_path: Path) -> str:
    d = str(tmp_path / "d")
    assert runner.invoke(app, ["init", "--data-dir", d, "--json"]).exit_code == 0
    return d


def write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False))
    return str(path)


def quanyu(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def as_json(*args: str) -> Any:
    return json.loads(quanyu(*args, "--json").stdout)


def refused(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    return result


def sink_lines(d: str) -> list[dict[str, Any]]:
    [path] = (Path(d) / "sink").glob("*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_journeys_locally(tmp_path: Path) -> None:
    d = data_dir(tmp_path)
    welcome = write(tmp_path, "welcome.json", WELCOME)
    # What a script does: `quanyu journeys create FILE --publish --json | jq -r .id` (a real process,
    # so stdout must hold the JSON and nothing else).
    made = json.loads(run_cli("journeys", "create", welcome, "--publish", "--json", "--data-dir", d).stdout)
    jid = made["id"]
    assert (made["status"], made["live_version"], made["created_by"]) == ("live", 1, "cli")

    listed = quanyu("journeys", "list", "--data-dir", d).stdout
    assert jid in listed and "运行中 live" in listed and "欢迎 Welcome" in listed
    shown = quanyu("journeys", "show", jid, "--data-dir", d).stdout
    assert "▶ hello" in shown and "next→later" in shown and "(结束 end)" in shown and "Signed Up" in shown
    assert as_json("journeys", "show", jid, "--data-dir", d)["definition"]["start"] == "hello"

    enrolled = as_json(
        "journeys", "enroll", jid, "--profile", "prof_a", "--profile", "prof_b", "--data-dir", d
    )
    assert enrolled == {"considered": 2, "enrolled": 2, "held_out": 0, "refused": {}}
    again = quanyu("journeys", "enroll", jid, "--profile", "prof_a", "--data-dir", d).stdout
    assert "already_entered 1" in again

    ran = as_json("journeys", "run", "--once", "--data-dir", d)
    assert ran["sends"]["outcomes"] == {"sent": 2}
    assert quanyu("journeys", "run", "--once", "--data-dir", d).stdout.count("认领 claimed 0") == 1
    ran = as_json("journeys", "run", "--once", "--advance", "3d", "--data-dir", d)
    assert (ran["steps"]["ended"], ran["sends"]["outcomes"]) == (2, {"sent": 2})
    assert sorted((w["to"], w["content"]["text"]) for w in sink_lines(d)) == sorted(
        [("prof_a", "你好 Hello"), ("prof_b", "你好 Hello"), ("prof_a", "再见 Bye"), ("prof_b", "再见 Bye")]
    )

    stats = as_json("journeys", "stats", jid, "--data-dir", d)
    assert (stats["entered"], stats["exited"], stats["duplicate_sends"]) == (2, {"completed": 2}, 0)
    assert stats["channels"]["sink"]["sent"] == 4
    human = quanyu("journeys", "stats", jid, "--data-dir", d).stdout
    for text in ("节点 / nodes", "渠道 / channels", "已排队 queued 2", "等待 waiting 2", "completed 2",
                 "goal conversions", "duplicate sends"):  # fmt: skip
        assert text in human, text

    assert as_json("journeys", "pause", jid, "--data-dir", d)["status"] == "paused"
    assert "已发布 / published" in quanyu("journeys", "publish", jid, "--data-dir", d).stdout
    assert as_json("journeys", "archive", jid, "--data-dir", d)["status"] == "archived"


def test_journey_mistakes_are_readable(tmp_path: Path) -> None:
    d = data_dir(tmp_path)
    bad = {**WELCOME, "start": "hello", "nodes": {**WELCOME["nodes"], "later": {"type": "wait"}}}
    result = refused("journeys", "create", write(tmp_path, "bad.json", bad), "--data-dir", d)
    assert "旅程定义无效 / invalid journey" in result.output and "bad.json" in result.output
    assert "later" in result.output and "a wait needs duration or until" in result.output

    no_text = {**WELCOME, "nodes": {"hello": {"type": "send", "channel": "sms", "content": {}}}}
    result = refused("journeys", "create", write(tmp_path, "sms.json", no_text), "--data-dir", d, "--json")
    error = json.loads(result.stderr)
    assert error["code"] == "invalid_journey" and "nodes.hello.content.text" in error["message"]

    (tmp_path / "broken.json").write_text("{not json")
    assert (
        "not valid JSON"
        in refused("journeys", "create", str(tmp_path / "broken.json"), "--data-dir", d).output
    )
    assert (
        "no such file" in refused("journeys", "create", str(tmp_path / "nope.json"), "--data-dir", d).output
    )
    assert "jrn_nope not found" in refused("journeys", "show", "jrn_nope", "--data-dir", d).output
    assert (
        "invalid duration"
        in refused("journeys", "run", "--once", "--advance", "soon", "--data-dir", d).output
    )
    jid = as_json("journeys", "create", write(tmp_path, "w.json", WELCOME), "--data-dir", d)["id"]
    assert "not live" in refused("journeys", "enroll", jid, "--profile", "p", "--data-dir", d).output


def test_channels_policy_and_consent_locally(tmp_path: Path) -> None:
    d = data_dir(tmp_path)
    assert "sink_sms" in quanyu("channels", "types", "--data-dir", d).stdout
    made = as_json("channels", "create", "--type", "sink_sms", "--name", "短信替身", "--set",
                   f"path={tmp_path / 'sms.jsonl'}", "--default", "--data-dir", d)  # fmt: skip
    assert (made["channel"], made["type"], made["default"]) == ("sms", "sink_sms", True)
    assert "短信替身" in quanyu("channels", "list", "--data-dir", d).stdout
    hook = refused("channels", "create", "--type", "webhook", "--name", "内网", "--set", "url=http://127.0.0.1:9/x",
                   "--set", "timeout:=5", "--data-dir", d)  # fmt: skip
    assert "invalid channel settings" in hook.output
    assert "KEY=VALUE" in refused("channels", "create", "--type", "sink", "--name", "x", "--set", "path",
                                  "--data-dir", d).output  # fmt: skip

    policy = as_json("messaging", "policy", "--data-dir", d)
    assert (policy["quiet_hours"], policy["caps"]["sms"], policy["kill_switch"]) == ("21:00-09:00", 1, False)
    changed = as_json("messaging", "policy", "--quiet-hours", "22:00-08:00", "--cap", "sms=2", "--cap", "wecom=off",
                      "--holdout", "5", "--data-dir", d)  # fmt: skip
    assert changed["quiet_hours"] == "22:00-08:00" and changed["holdout_percent"] == 5
    assert changed["caps"]["sms"] == 2 and "wecom" not in changed["caps"] and changed["caps"]["email"] == 2
    assert (
        "quiet_hours"
        in refused("messaging", "policy", "--quiet-hours", "25:00-01:00", "--data-dir", d).output
    )
    assert "CHANNEL=N" in refused("messaging", "policy", "--cap", "sms=lots", "--data-dir", d).output
    assert "22:00-08:00" in quanyu("messaging", "policy", "--data-dir", d).stdout

    assert "已停止所有发送" in quanyu("messaging", "kill-switch", "on", "--data-dir", d).stdout
    assert as_json("messaging", "policy", "--data-dir", d)["kill_switch"] is True
    assert as_json("messaging", "kill-switch", "off", "--data-dir", d)["kill_switch"] is False
    assert "on or off" in refused("messaging", "kill-switch", "maybe", "--data-dir", d).output

    granted = as_json(
        "consent", "set", "--profile", "prof_a", "--channel", "sms", "--granted", "--data-dir", d
    )
    assert [(c["channel"], c["granted"], c["source"]) for c in granted["current"]] == [("sms", True, "cli")]
    quanyu("consent", "set", "--profile", "prof_a", "--channel", "sms", "--withdrawn", "--data-dir", d)
    shown = as_json("consent", "show", "prof_a", "--data-dir", d)
    assert [h["granted"] for h in shown["history"]] == [False, True] and not shown["current"][0]["granted"]
    human = quanyu("consent", "show", "prof_a", "--data-dir", d).stdout
    assert "撤回 withdrawn" in human and "newest first" in human
    assert "--profile" in refused("consent", "set", "--channel", "sms", "--granted", "--data-dir", d).output
    assert (
        "--withdrawn"
        in refused("consent", "set", "--profile", "p", "--channel", "sms", "--data-dir", d).output
    )


def test_journeys_through_a_running_server(
    live_server: tuple[LiveServer, dict[str, str]], tmp_path: Path
) -> None:
    server, creds = live_server
    env = {"QUANYU_API_TOKEN": creds["api_token"]}
    d = str(server.data_dir)

    def cli(*args: str) -> Any:
        return json.loads(run_cli(*args, "--data-dir", d, "--json", env=env).stdout)

    made = cli("journeys", "create", write(tmp_path, "welcome.json", WELCOME), "--publish")
    assert made["status"] == "live" and made["created_by"].startswith("token:")
    assert cli("journeys", "enroll", made["id"], "--profile", "prof_srv")["enrolled"] == 1
    cli("journeys", "run", "--once")  # the hello (the server's own worker may have sent it already)
    ran = cli("journeys", "run", "--once", "--advance", "3d")  # the two-day wait is over
    assert (ran["steps"]["ended"], ran["sends"]["outcomes"]) == (1, {"sent": 1})
    stats = cli("journeys", "stats", made["id"])
    assert (stats["exited"], stats["channels"]["sink"]["sent"], stats["duplicate_sends"]) == (
        {"completed": 1},
        2,
        0,
    )
    consent = cli("consent", "set", "--address", "13800138000", "--channel", "sms", "--withdrawn")
    assert consent["current"][0]["granted"] is False
    assert cli("messaging", "kill-switch", "on")["kill_switch_by"].startswith("token:")
