"""`quanyu journeys|channels|messaging|consent`: marketing automation from the command line.

quanyu journeys create FILE [--publish] [--json]      save a journey (JSON file), maybe publish it
quanyu journeys list|show ID|publish ID|pause ID|archive ID [--json]
quanyu journeys stats ID [--json]                     per node and channel, goal conversions, lift
quanyu journeys run --once [--advance 3d] [--json]    intake → due steps → sends until nothing is due
quanyu journeys enroll ID --profile P [--profile P2]  enroll people by hand
quanyu journeys worker [--processes N]               extra step/send workers (PostgreSQL scale-out)
quanyu channels create|list|types                     channel configurations
quanyu messaging policy|kill-switch                   quiet hours, caps, holdout; stop every send
quanyu consent set|show                               grants and withdrawals, with their history
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.syntax import Syntax

from quanyu.cli.backend import Backend, open_backend, with_backend
from quanyu.cli.options import ApiUrl, DataDir, Json, Token, Workspace, guard, settings_from
from quanyu.cli.output import console, emit_json, pairs, table
from quanyu.errors import InvalidInput, QuanyuError
from quanyu.journeys.model import parse_journey

journeys_app = typer.Typer(help="旅程 / journeys: marketing automation", no_args_is_help=True)
channels_app = typer.Typer(help="渠道配置 / channel configurations", no_args_is_help=True)
messaging_app = typer.Typer(help="触达规则 / messaging policy and kill switch", no_args_is_help=True)
consent_app = typer.Typer(help="营销同意 / consent to marketing messages", no_args_is_help=True)

JourneyFile = Annotated[Path, typer.Argument(help="旅程定义 JSON 文件 / journey definition (JSON file)")]
JourneyId = Annotated[str, typer.Argument(help="旅程ID / journey id (jrn_…)")]
_STATUSES = {
    "draft": "草稿 draft",
    "live": "运行中 live",
    "paused": "已暂停 paused",
    "archived": "已归档 archived",
}
_KINDS = {"entered": "进入", "queued": "已排队", "skipped": "跳过", "held": "暂缓", "branch": "分支",
          "waiting": "等待", "timeout": "超时", "action": "动作", "exited": "退出", "goal": "达成目标"}  # fmt: skip
_SEND_COLUMNS = ("queued", "sent", "failed", "unknown", "pending", "delivered", "opened", "clicked", "bounced",
                 "complained")  # fmt: skip
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


# ---------------------------------------------------------------------------------------------
# Helpers


def read_journey(path: Path) -> dict[str, Any]:
    """A journey from a JSON file: the definition itself, or an object holding it under
    `definition` (what `show --json` prints). Checked here so every problem comes back with its
    JSON path before anything is sent."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise InvalidInput(f"文件不存在 / no such file: {path}", code="file_not_found") from None
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"不是有效的 JSON / {path} is not valid JSON: {exc}", code="invalid_json"
        ) from None
    if isinstance(data, dict) and "definition" in data and "nodes" not in data:
        data = data["definition"]
    try:
        parse_journey(data)
    except InvalidInput as exc:
        exc.message = f"{path}: {exc.message}"
        raise _explained(exc) from None
    return data


def _explained(exc: QuanyuError) -> QuanyuError:
    """The error with every problem's JSON path listed under its message (when there are several)."""
    details = exc.details if isinstance(exc.details, list) else []
    lines = [
        f"  - {d['path']}: {d.get('message', '')}" for d in details if isinstance(d, dict) and "path" in d
    ]
    if len(lines) > 1 and lines[1] not in exc.message:
        exc.message = "\n".join([exc.message, *lines])
    return exc


def _run(fn: Any, data_dir: Path | None, api_url: str | None, token: str | None, workspace: str | None,
         as_json: bool) -> Any:  # fmt: skip
    return with_backend(fn, data_dir, api_url, token, workspace, as_json, explain=_explained)


def parse_duration(text: str) -> timedelta:
    """`3d`, `2h`, `30m`, `45s` or a sum such as `1d12h`."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not compact or not parts or _DURATION.sub("", compact).strip():
        raise InvalidInput(
            f"时长格式应为 3d / 2h / 30m / invalid duration {text!r}: use e.g. 3d, 2h, 30m, 1d12h",
            code="invalid_duration",
        )
    return timedelta(seconds=sum(float(n) * _UNITS[unit] for n, unit in parts))


def parse_settings(values: list[str]) -> dict[str, Any]:
    """`key=value` (text) and `key:=JSON` (a number, a list, true/false) channel settings."""
    settings: dict[str, Any] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key.strip(":").strip():
            raise InvalidInput(f"--set 需要 KEY=VALUE / --set expects KEY=VALUE, got {value!r}")
        if key.endswith(":"):
            try:
                settings[key[:-1].strip()] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise InvalidInput(
                    f"--set {key}= 需要 JSON 值 / --set {key}= expects a JSON value, got {raw!r}"
                ) from None
        else:
            settings[key.strip()] = raw
    return settings


def _when(value: str | None) -> str:
    return (value or "")[:19].replace("T", " ") or "—"


def _counts(data: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in data.items()) or "—"


# ---------------------------------------------------------------------------------------------
# journeys


@journeys_app.command("create")
def create_command(
    file: JourneyFile,
    publish: Annotated[bool, typer.Option("--publish", help="立即发布 / publish at once")] = False,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """保存旅程 / Save a journey from a JSON file (version 1); --publish starts it at once."""
    with guard(as_json):
        definition = read_journey(file)
    body = _run(lambda b: b.journey_create(definition, publish), data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(body)
        return
    console.print(f"已保存旅程 / journey saved: [bold]{body['id']}[/bold] {body['name']} "
                  f"(v{body['current_version']}, {_STATUSES.get(body['status'], body['status'])})")  # fmt: skip
    if body["status"] != "live":
        console.print(f"发布 / publish it: quanyu journeys publish {body['id']}")


@journeys_app.command("list")
def list_command(
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """旅程列表 / The workspace's journeys."""
    items = _run(lambda b: b.journey_list(), data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(items)
        return
    table(
        "旅程 / journeys",
        ["ID", "名称 name", "状态 status", "版本 version", "运行版本 live", "修改 updated"],
        [[j["id"], j["name"], _STATUSES.get(j["status"], j["status"]), f"v{j['current_version']}",
          f"v{j['live_version']}" if j["live_version"] else "—", f"{_when(j['updated_at'])} {j['updated_by']}"]
         for j in items],
    )  # fmt: skip


@journeys_app.command("show")
def show_command(
    journey_id: JourneyId, data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None,
    workspace: Workspace = None, as_json: Json = False,
) -> None:  # fmt: skip
    """查看旅程 / A journey: status, nodes, definition and versions."""
    body = _run(lambda b: b.journey(journey_id), data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(body)
        return
    definition = body["definition"]
    pairs(f"旅程 / journey {body['id']}", {
        "名称 name": body["name"], "状态 status": _STATUSES.get(body["status"], body["status"]),
        "版本 version": body["current_version"], "运行版本 live version": body["live_version"] or "—",
        "触发 trigger": orjson.dumps(definition.get("trigger")).decode(),
        "目标 goal": orjson.dumps(definition["goal"]).decode() if definition.get("goal") else "—",
        "发布于 published": _when(body["published_at"]),
        "修改 updated": f"{_when(body['updated_at'])} {body['updated_by']}",
    })  # fmt: skip
    journey = parse_journey(definition)
    table("节点 / nodes", ["节点 node", "类型 type", "渠道 channel", "下一步 next"],
          [[("▶ " if node_id == journey.start else "") + node_id, node.type, getattr(node, "channel", ""),
            ", ".join(f"{field}→{target}" for field, target in node.targets()) or "(结束 end)"]
           for node_id, node in journey.nodes.items()])  # fmt: skip
    console.print("定义 / definition:")
    console.print(Syntax(orjson.dumps(definition, option=orjson.OPT_INDENT_2).decode(), "json"))
    table("版本 / versions", ["版本 version", "时间 at", "作者 by"],
          [[v["version"], _when(v["created_at"]), v["created_by"]] for v in body["versions"]])  # fmt: skip


def _action(action: str, done: str) -> Any:
    def command(
        journey_id: JourneyId, data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None,
        workspace: Workspace = None, as_json: Json = False,
    ) -> None:  # fmt: skip
        body = _run(
            lambda b: b.journey_action(journey_id, action), data_dir, api_url, token, workspace, as_json
        )
        if as_json:
            emit_json(body)
            return
        live = f", 运行版本 live v{body['live_version']}" if body["live_version"] else ""
        console.print(f"{done}: [bold]{body['id']}[/bold] {body['name']} "
                      f"({_STATUSES.get(body['status'], body['status'])}{live})")  # fmt: skip

    return command


journeys_app.command("publish", help="发布 / Publish the current version: new entries get it.")(
    _action("publish", "已发布 / published")
)
journeys_app.command("pause", help="暂停 / No new entries; running enrollments hold where they are.")(
    _action("pause", "已暂停 / paused")
)
journeys_app.command("archive", help="归档 / Stop for good: running enrollments end.")(
    _action("archive", "已归档 / archived")
)


@journeys_app.command("stats")
def stats_command(
    journey_id: JourneyId, data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None,
    workspace: Workspace = None, as_json: Json = False,
) -> None:  # fmt: skip
    """旅程统计 / Entered, waiting, exits; per node and channel; goal conversions and lift."""
    body = _run(lambda b: b.journey_stats(journey_id), data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(body)
        return
    pairs(f"旅程统计 / journey stats {journey_id}", {
        "进入 entered": f"{body['entered']:,}", "进行中 active": f"{body['active']:,}",
        "等待中 waiting": f"{body['waiting']:,}", "退出 exited": _counts(body["exited"]),
        "重复发送 duplicate sends": body.get("duplicate_sends", 0),
    })  # fmt: skip
    table("节点 / nodes", ["节点 node", "进入 entered", "等待 waiting", "步骤 steps", "发送 sends"],
          [[name, f"{n['entered']:,}", f"{n['waiting']:,}", _steps(n["steps"]), _counts(n.get("sends", {}))]
           for name, n in body["nodes"].items()])  # fmt: skip
    table("渠道 / channels", ["渠道 channel", *(f"{c}" for c in _SEND_COLUMNS)],
          [[name, *(f"{c.get(col, 0):,}" for col in _SEND_COLUMNS)] for name, c in body["channels"].items()])  # fmt: skip
    goal = body["goal"]
    table("目标转化 / goal conversions", ["分组 arm", "进入 entered", "转化 converted", "转化率 rate"],
          [[arm, f"{g['entered']:,}", f"{g['converted']:,}", f"{g['rate']:.2%}"]
           for arm, g in goal["by_arm"].items()])  # fmt: skip
    if "lift" in goal:
        lift = "—" if goal["lift"] is None else f"{goal['lift']:+.1%}"
        console.print(f"实验组 / treated {goal['treated_rate']:.2%} vs 对照组 / control {goal['control_rate']:.2%}: "
                      f"提升 / lift [bold]{lift}[/bold]")  # fmt: skip
    else:
        console.print(f"目标转化 / goal conversions: {goal['conversions']:,} (无对照组，无法计算提升 / no control "
                      "group: no lift)")  # fmt: skip


def _steps(steps: dict[str, int]) -> str:
    out = []
    for label, count in steps.items():
        kind = label.split(":", 1)[0]
        out.append(f"{_KINDS.get(kind, '')} {label} {count:,}".strip())
    return "\n".join(out) or "—"


@journeys_app.command("run")
def run_command(
    once: Annotated[bool, typer.Option("--once", help="跑完到期的工作即退出 / work until nothing is due, then exit")] = False,
    advance: Annotated[str | None, typer.Option(
        "--advance", help="时钟前移 / run as if this much later: 3d, 2h, 30m (waits end early)")] = None,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """运行旅程 / A round of work: intake → due steps → sends, until nothing is due.

    Without --once it keeps going every second (a foreground worker) until Ctrl-C."""
    with guard(as_json):
        seconds = parse_duration(advance).total_seconds() if advance else None
    rounds = 0
    with guard(as_json):
        backend: Backend = open_backend(settings_from(data_dir), api_url, token, workspace)
        try:
            while True:
                rounds += 1
                with console.status(
                    f"运行中 / running journeys (第 {rounds} 轮 round {rounds})…", spinner="dots"
                ):
                    body = backend.journeys_run(seconds)
                if once:
                    break
                if body["steps"]["claimed"] or body["sends"]["claimed"]:
                    emit_json(body) if as_json else _print_run(body)
                time.sleep(1)
        except KeyboardInterrupt:
            return
        finally:
            backend.close()
    if as_json:
        emit_json(body)
        return
    _print_run(body)


def _print_run(body: dict[str, Any]) -> None:
    intake, steps, sends = body["intake"], body["steps"], body["sends"]
    pairs("旅程运行 / journeys run", {
        "读取事件 events read": f"{intake['events']:,} ({intake['batches']:,} 批 batches)",
        "新进入 enrolled": f"{intake['enrolled']:,}", "恢复等待 resumed": f"{intake['resumed']:,}",
        "达成目标 goals": f"{intake['goals']:,}", "退出 exits": f"{intake['exits']:,}",
        "处理步骤 steps": f"{steps['steps']:,} (认领 claimed {steps['claimed']:,}, 结束 ended {steps['ended']:,})",
        "排队发送 queued": f"{steps['queued']:,}",
        "发送 sends": f"{sends['claimed']:,} ({_counts(sends['outcomes'])})",
        "暂停发送 held (kill switch)": f"{sends['held']:,}",
    })  # fmt: skip


@journeys_app.command("enroll")
def enroll_command(
    journey_id: JourneyId,
    profiles: Annotated[list[str], typer.Option("--profile", help="用户ID / profile id (repeatable)")],
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """手动加入 / Enroll people by hand (the journey's re-entry rule applies)."""
    body = _run(
        lambda b: b.journey_enroll(journey_id, profiles), data_dir, api_url, token, workspace, as_json
    )
    if as_json:
        emit_json(body)
        return
    pairs(f"加入旅程 / enrolled into {journey_id}", {
        "人数 considered": body["considered"], "已加入 enrolled": body["enrolled"],
        "全局对照组 held out": body["held_out"], "拒绝 refused": _counts(body["refused"]),
    })  # fmt: skip


# ---------------------------------------------------------------------------------------------
# channels


@channels_app.command("create")
def channels_create(
    type_: Annotated[str, typer.Option("--type", help="渠道类型 / adapter type (quanyu channels types)")],
    name: Annotated[str, typer.Option("--name", help="名称 / name")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="设置 / setting: key=text, or key:=JSON for numbers, lists, true/false")] = None,
    default: Annotated[bool, typer.Option("--default", help="设为该渠道默认 / the channel's default")] = False,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """新建渠道配置 / Configure a channel (secrets are stored encrypted, never shown)."""
    with guard(as_json):
        settings = parse_settings(set_ or [])
    body = _run(lambda b: b.channel_create(type_, name, settings, default), data_dir, api_url, token, workspace,
                as_json)  # fmt: skip
    if as_json:
        emit_json(body)
        return
    pairs("已创建渠道 / channel created", _channel_fields(body))


@channels_app.command("list")
def channels_list(
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """渠道配置列表 / The workspace's channel configurations."""
    items = _run(lambda b: b.channel_list(), data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(items)
        return
    cols = ["ID", "名称 name", "渠道 channel", "类型 type", "默认 default", "设置 settings", "密钥 secrets"]
    table("渠道 / channels", cols, [list(_channel_fields(c).values()) for c in items])


def _channel_fields(c: dict[str, Any]) -> dict[str, Any]:
    return {"ID": c["id"], "名称 name": c["name"], "渠道 channel": c["channel"], "类型 type": c["type"],
            "默认 default": "是 yes" if c["default"] else "",
            "设置 settings": orjson.dumps(c["settings"]).decode(),
            "密钥 secrets": ", ".join(c["secrets"]) or "—"}  # fmt: skip


@channels_app.command("types")
def channels_types(
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """渠道类型 / Adapter types that can be configured (built-ins and plugins)."""
    items = _run(lambda b: b.channel_types(), data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(items)
        return
    table("渠道类型 / channel types", ["类型 type", "渠道 channel", "说明 label", "密钥 secrets"],
          [[k["type"], k["channel"], k["label"], ", ".join(k["secrets"])] for k in items])  # fmt: skip


# ---------------------------------------------------------------------------------------------
# messaging


@messaging_app.command("policy")
def policy_command(
    quiet_hours: Annotated[str | None, typer.Option(
        "--quiet-hours", help="免打扰时段 / quiet hours, e.g. 21:00-09:00 (off: none)")] = None,
    cap: Annotated[list[str] | None, typer.Option(
        "--cap", help="每日频次上限 / daily cap per person: CHANNEL=N, or CHANNEL=off (repeatable)")] = None,
    holdout: Annotated[float | None, typer.Option(
        "--holdout", help="全局对照组比例 / global holdout percent (0–50)")] = None,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """触达规则 / Show the messaging policy, or change it with the options given."""
    with guard(as_json):
        caps = _parse_caps(cap or [])

    def act(b: Backend) -> dict[str, Any]:
        current = b.messaging_policy(None)
        changes: dict[str, Any] = {}
        if quiet_hours is not None:
            changes["quiet_hours"] = "" if quiet_hours.strip().lower() in ("", "off", "none") else quiet_hours
        if caps:
            merged = dict(current["caps"])
            for channel, value in caps.items():
                if value is None:
                    merged.pop(channel, None)
                else:
                    merged[channel] = value
            changes["caps"] = merged
        if holdout is not None:
            changes["holdout_percent"] = holdout
        return b.messaging_policy(changes) if changes else current

    body = _run(act, data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(body)
        return
    kill = "[bold red]开 ON：已停止所有发送 / all sends stopped[/]" if body["kill_switch"] else "关 off"
    if body["kill_switch_at"]:
        kill += f" ({_when(body['kill_switch_at'])} {body['kill_switch_by'] or ''})"
    pairs("触达规则 / messaging policy", {
        "时区 time zone": body["timezone"], "免打扰 quiet hours": body["quiet_hours"] or "无 none",
        "每日上限 daily caps": _counts(body["caps"]),
        "需授权渠道 opt-in channels": ", ".join(body["opt_in_channels"]) or "—",
        "全局对照组 holdout": f"{body['holdout_percent']:g}%", "紧急停止 kill switch": kill,
    })  # fmt: skip


def _parse_caps(values: list[str]) -> dict[str, int | None]:
    caps: dict[str, int | None] = {}
    for value in values:
        channel, sep, raw = value.partition("=")
        raw = raw.strip().lower()
        if not sep or not channel.strip() or not (raw.isdigit() or raw in ("off", "none")):
            raise InvalidInput(f"--cap 需要 渠道=次数 / --cap expects CHANNEL=N or CHANNEL=off, got {value!r}",
                               code="invalid_policy")  # fmt: skip
        caps[channel.strip()] = int(raw) if raw.isdigit() else None
    return caps


@messaging_app.command("kill-switch")
def kill_switch_command(
    state: Annotated[str, typer.Argument(help="on: 停止所有发送 stop every send; off: 恢复 resume")],
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """紧急停止 / Stop every send of the workspace at once (on), or resume (off)."""
    with guard(as_json):
        if state.lower() not in ("on", "off"):
            raise InvalidInput(f"请用 on 或 off / use on or off, got {state!r}", code="invalid_request")
    on = state.lower() == "on"
    body = _run(lambda b: b.kill_switch(on), data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(body)
        return
    if on:
        console.print(
            "[bold red]已停止所有发送 / every send is stopped[/] (恢复 / resume: quanyu messaging kill-switch off)"
        )
    else:
        console.print("已恢复发送 / sends resumed")


# ---------------------------------------------------------------------------------------------
# consent


@consent_app.command("set")
def consent_set(
    channel: Annotated[str, typer.Option("--channel", help="渠道 / channel (sms, email, …, or * for every one)")],
    profile: Annotated[str | None, typer.Option("--profile", help="用户ID / profile id")] = None,
    address: Annotated[str | None, typer.Option("--address", help="地址 / a phone, e-mail or openid")] = None,
    purpose: Annotated[str, typer.Option("--purpose", help="用途 / purpose")] = "marketing",
    granted: Annotated[bool | None, typer.Option(
        "--granted/--withdrawn", help="同意或撤回 / grant or withdraw")] = None,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """记录同意 / Record a grant or a withdrawal (kept with its time; the newest wins)."""
    with guard(as_json):
        if (profile is None) == (address is None):
            raise InvalidInput("请给出 --profile 或 --address（择一）/ give --profile or --address (one of them)",
                               code="invalid_request")  # fmt: skip
        if granted is None:
            raise InvalidInput("请给出 --granted 或 --withdrawn / give --granted or --withdrawn",
                               code="invalid_request")  # fmt: skip
    body: dict[str, Any] = {"channel": channel, "purpose": purpose, "granted": granted, "source": "cli",
                            **({"profile_id": profile} if profile else {"address": address})}  # fmt: skip
    shown = _run(lambda b: b.consent_record(body), data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(shown)
        return
    what = "已同意 / granted" if granted else "已撤回 / withdrawn"
    console.print(f"{what}: {profile or address} {channel} {purpose}")
    _print_consent(shown)


@consent_app.command("show")
def consent_show(
    subject: Annotated[str, typer.Argument(help="用户ID或地址 / a profile id or an address")],
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """查看同意 / A profile's or an address's consent now, and its history (newest first)."""
    body = _run(lambda b: b.consent(subject), data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(body)
        return
    _print_consent(body)


def _print_consent(body: dict[str, Any]) -> None:
    def yes(granted: bool) -> str:
        return "同意 granted" if granted else "撤回 withdrawn"

    table(f"当前同意 / consent of {body['subject']}", ["渠道 channel", "用途 purpose", "状态 state", "来源 source",
                                                     "时间 at"],
          [[r["channel"], r["purpose"], yes(r["granted"]), r["source"], _when(r["at"])] for r in body["current"]])  # fmt: skip
    table("历史 / history (newest first)", ["时间 at", "渠道 channel", "用途 purpose", "状态 state", "来源 source"],
          [[_when(r["at"]), r["channel"], r["purpose"], yes(r["granted"]), r["source"]] for r in body["history"]])  # fmt: skip


@journeys_app.command("worker")
def worker_command(
    processes: Annotated[int, typer.Option("--processes", min=1, max=64,
                                           help="工作进程数 / worker processes")] = 1,
    batch: Annotated[int, typer.Option("--batch", min=1, max=50_000, help="每批条数 / rows per batch")] = 2000,
    data_dir: DataDir = None,
) -> None:  # fmt: skip
    """扩展工作进程 / Extra workers for due steps and sends, on the operational store only.

    For PostgreSQL deployments (QUANYU_DATABASE_URL): each process claims work with FOR UPDATE
    SKIP LOCKED beside the worker inside `quanyu serve`. Condition steps and tag/trait effects
    need the warehouse and are left for `serve`. Runs until Ctrl-C."""
    import multiprocessing as mp

    settings = settings_from(data_dir)
    if settings.resolved_database_url.startswith("sqlite"):
        console.print("[yellow]提示 / note:[/] SQLite 只有一个写入者，多进程不会更快 / SQLite has one writer: "
                      "more processes will not be faster (use PostgreSQL to scale out)")  # fmt: skip
    ctx = mp.get_context("spawn")
    children = [ctx.Process(target=_work, args=(settings, batch), daemon=True) for _ in range(processes - 1)]
    for child in children:
        child.start()
    console.print(f"旅程工作进程 / journey workers: {processes} · Ctrl-C 停止 / to stop")
    try:
        _work(settings, batch)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            child.terminate()


def _work(settings: Any, batch: int) -> None:
    from quanyu.platform import Platform

    platform = Platform(settings)
    runner, dispatcher = platform.journeys.runner(None), platform.journeys.dispatcher(None)
    try:
        while True:
            step, sent = runner.run_due(batch), dispatcher.dispatch(batch)
            if not step.claimed and not sent.claimed:
                time.sleep(settings.journey_interval_seconds)
    except KeyboardInterrupt:
        return
    finally:
        platform.close()
