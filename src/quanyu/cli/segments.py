"""`quanyu segments preview|create|list|show|refresh|members|export-webhook`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.columns import Columns
from rich.syntax import Syntax
from rich.table import Table

from quanyu.cli.backend import with_backend
from quanyu.cli.options import ApiUrl, DataDir, Json, Token, Workspace, guard
from quanyu.cli.output import console, emit_json, pairs, table
from quanyu.errors import InvalidInput

segments_app = typer.Typer(help="分群 / segments: preview, save, refresh, export", no_args_is_help=True)

DefinitionFile = Annotated[Path, typer.Argument(help="分群定义 JSON 文件 / segment definition (JSON file)")]
SegmentId = Annotated[str, typer.Argument(help="分群ID / segment id (seg_…)")]
_MODES = {"realtime": "实时 realtime", "scheduled": "定时 scheduled"}
_BREAKDOWNS = (
    ("preferred_channel", "常用渠道 / preferred channel"),
    ("first_touch_channel", "首触渠道 / first-touch channel"),
    ("first_touch_source", "首触来源 / first-touch source"),
    ("domain", "公域/私域 / domain"),
)


def read_definition(path: Path) -> dict[str, Any]:
    """A definition from a JSON file: the definition itself, or an object holding it under
    `definition` (what `show --json` prints)."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise InvalidInput(f"文件不存在 / no such file: {path}", code="file_not_found") from None
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"不是有效的 JSON / {path} is not valid JSON: {exc}", code="invalid_json"
        ) from None
    if isinstance(data, dict) and "definition" in data and "conditions" not in data:
        data = data["definition"]
    if not isinstance(data, dict):
        raise InvalidInput(f"分群定义须为 JSON 对象 / {path} must hold a JSON object", code="invalid_segment")
    return data


def _run(fn: Any, data_dir: Path | None, api_url: str | None, token: str | None, workspace: str | None,
         as_json: bool) -> Any:  # fmt: skip
    return with_backend(fn, data_dir, api_url, token, workspace, as_json)


@segments_app.command("preview")
def preview_command(
    file: DefinitionFile,
    sample: Annotated[int, typer.Option(min=0, max=100, help="样本人数 / sample size")] = 10,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """预览分群 / Preview a definition: count, a sample, breakdowns and the SQL (nothing is saved)."""
    with guard(as_json):
        definition = read_definition(file)
    with console.status("计算中 / evaluating…", spinner="dots"):
        body = _run(
            lambda b: b.segment_preview(definition, sample), data_dir, api_url, token, workspace, as_json
        )
    if as_json:
        emit_json(body)
        return
    console.print(f"[bold]人数 / members: {body['count']:,}[/bold]  "
                  f"(耗时 / took {body['elapsed_ms']} ms, 评估时间 / as of {body['evaluated_at'][:19]})")  # fmt: skip
    _people("样本 / sample", body["sample"])
    console.print(Columns([_breakdown(title, body["breakdown"][key]) for key, title in _BREAKDOWNS]))
    console.print("SQL:")
    console.print(Syntax(body["sql"], "sql", word_wrap=True))


@segments_app.command("create")
def create_command(
    file: DefinitionFile,
    name: Annotated[str, typer.Option("--name", help="分群名称 / segment name (unique in the workspace)")],
    description: Annotated[str, typer.Option("--description", help="说明 / description")] = "",
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """保存分群 / Save a segment from a definition file (version 1)."""
    with guard(as_json):
        definition = read_definition(file)
    body = _run(lambda b: b.segment_create(name, description, definition), data_dir, api_url, token, workspace,
                as_json)  # fmt: skip
    if as_json:
        emit_json(body)
        return
    console.print(
        f"已保存分群 / segment saved: [bold]{body['id']}[/bold] {body['name']} (v{body['version']})"
    )
    console.print(f"刷新成员 / compute its members: quanyu segments refresh {body['id']}")


@segments_app.command("list")
def list_command(
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """分群列表 / The workspace's saved segments."""
    items = _run(lambda b: b.segment_list(), data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(items)
        return
    rows = [
        [s["id"], s["name"], f"v{s['version']}", _MODES[s["mode"]], _count(s["membership"]["members"]),
         (s["membership"]["refreshed_at"] or "")[:19], s["membership"]["error"] or ""]
        for s in items
    ]  # fmt: skip
    table(
        "分群 / segments",
        ["ID", "名称 name", "版本 version", "模式 mode", "成员 members", "刷新于 refreshed", "错误 error"],
        rows,
    )


@segments_app.command("show")
def show_command(
    segment_id: SegmentId, data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None,
    workspace: Workspace = None, as_json: Json = False,
) -> None:  # fmt: skip
    """查看分群 / A segment: its definition, membership and versions."""
    body = _run(lambda b: b.segment(segment_id), data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(body)
        return
    m = body["membership"]
    pairs(f"分群 / segment {body['id']}", {
        "名称 name": body["name"], "说明 description": body["description"], "版本 version": body["version"],
        "模式 mode": _MODES[body["mode"]],
        "成员 members": _count(m["members"]), "刷新于 refreshed at": m["refreshed_at"] or "—",
        "刷新版本 refreshed version": m["refreshed_version"] or "—", "错误 error": m["error"] or "",
        "修改 updated": f"{body['updated_at'][:19]} {body['updated_by']}",
    })  # fmt: skip
    table(
        "模式原因 / why this mode",
        ["节点 path", "原因 reason"],
        [[r["path"], r["message"]] for r in body["reasons"]],
    )
    console.print("定义 / definition:")
    console.print(Syntax(orjson.dumps(body["definition"], option=orjson.OPT_INDENT_2).decode(), "json"))
    table("版本 / versions", ["版本 version", "名称 name", "时间 at", "作者 by"],
          [[v["version"], v["name"], v["created_at"][:19], v["created_by"]] for v in body["versions"]])  # fmt: skip


@segments_app.command("refresh")
def refresh_command(
    segment_id: Annotated[str | None, typer.Argument(help="分群ID / segment id")] = None,
    all_: Annotated[bool, typer.Option("--all", help="全部分群 / every segment")] = False,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """刷新成员 / Bring members up to date now, logging who entered and who left."""
    with guard(as_json):
        if (segment_id is None) == (not all_):
            raise InvalidInput(
                "请指定分群ID或 --all / give a segment id or --all (not both)", code="invalid_request"
            )
    with console.status("刷新中 / refreshing…", spinner="dots"):
        body = _run(lambda b: b.segment_refresh(segment_id), data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(body)
        return
    done = [body] if segment_id is not None else body["refreshed"]
    table("已刷新 / refreshed", ["分群 segment", "版本 version", "成员 members", "进入 entered", "离开 exited", "耗时 ms"],
          [[r["segment_id"], r["version"], r["members"], r["entered"], r["exited"], r["elapsed_ms"]] for r in done])  # fmt: skip
    for failed in body.get("failed", []):
        console.print(f"[red]失败 / failed[/red] {failed['segment_id']}: {failed['message']}")


@segments_app.command("members")
def members_command(
    segment_id: SegmentId,
    format_: Annotated[str | None, typer.Option("--format", help="导出格式 / export as csv or parquet")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="导出文件 / file to write")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="每页人数 / members per page")] = 50,
    cursor: Annotated[str | None, typer.Option(help="下一页游标 / next_cursor of the previous page")] = None,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """分群成员 / A page of members, or every member exported to a CSV or Parquet file."""
    with guard(as_json):
        if format_ is not None and (format_ not in ("csv", "parquet") or output is None):
            raise InvalidInput("导出需 --format csv|parquet 和 --output 文件 / export needs --format csv|parquet "
                               "and --output FILE", code="invalid_request")  # fmt: skip
    if format_ is not None and output is not None:
        data = _run(
            lambda b: b.segment_export(segment_id, format_), data_dir, api_url, token, workspace, as_json
        )
        output.write_bytes(data)
        result = {"segment_id": segment_id, "format": format_, "output": str(output), "bytes": len(data)}
        if as_json:
            emit_json(result)
        else:
            console.print(f"已导出 / exported {len(data):,} bytes → {output}")
        return
    body = _run(lambda b: b.segment_members(segment_id, limit, cursor), data_dir, api_url, token, workspace,
                as_json)  # fmt: skip
    if as_json:
        emit_json(body)
        return
    _people(f"成员 / members of {segment_id} ({body['total']:,})", body["items"])
    if body["next_cursor"]:
        console.print(f"下一页 / next page: --cursor {body['next_cursor']}")


@segments_app.command("export-webhook")
def export_webhook_command(
    segment_id: SegmentId,
    url: Annotated[str, typer.Option("--url", help="接收地址 / the receiver's http(s) URL")],
    secret: Annotated[str, typer.Option("--secret", envvar="QUANYU_EXPORT_SECRET",
                                        help="签名密钥 / HMAC key (or QUANYU_EXPORT_SECRET)")],
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=5000, help="每批人数 / members per batch")] = 500,
    allow: Annotated[list[str] | None, typer.Option("--allow", help="允许的内网网段 / a private CIDR to allow")] = None,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """推送成员到 Webhook / POST every member to a URL in signed JSON batches (retried on 429/5xx)."""
    body = {"url": url, "secret": secret, "format": "json", "batch_size": batch_size, "allow": allow or []}
    report = _run(lambda b: b.segment_export_webhook(segment_id, body), data_dir, api_url, token, workspace,
                  as_json)  # fmt: skip
    if as_json:
        emit_json(report)
    else:
        console.print(f"{'已发送' if report['status'] == 'sent' else '未完成'} / {report['status']}: "
                      f"{report['batches_sent']}/{report['batches']} batches, "
                      f"{report['members_sent']:,}/{report['members']:,} members")  # fmt: skip
        if report.get("error"):
            console.print(f"[red]第 {report['failed_batch']} 批失败 / batch {report['failed_batch']} failed: "
                          f"{report['error']}[/red]")  # fmt: skip
    if report["status"] != "sent":
        raise typer.Exit(1)


def _breakdown(title: str, counts: list[dict[str, Any]]) -> Table:
    t = Table(title=title, min_width=30)
    t.add_column("值 value")
    t.add_column("人数 people", justify="right")
    for b in counts:
        t.add_row("(无 none)" if b["value"] is None else str(b["value"]), f"{b['count']:,}")
    return t


def _people(title: str, people: list[dict[str, Any]]) -> None:
    table(title, ["ID", "姓名 name", "城市 city", "常用渠道 channel", "订单 orders", "消费 revenue"],
          [[p["profile_id"], p.get("name"), p.get("city"), p.get("preferred_channel"), p.get("order_count"),
            _money(p.get("revenue"))] for p in people])  # fmt: skip


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"
