"""`quanyu import`: bring export files in.

quanyu import orders FILE --platform tmall|jd|youzan|douyin|xiaohongshu --source SRC [--dry-run]
quanyu import pos FILE --source SRC                  store till receipts (one row per item)
quanyu import signups FILE --source SRC [--event-name N]   event and exhibition sign-up lists
quanyu import live FILE --source SRC [--platform douyin]   live-stream interactions
quanyu import customers FILE --source SRC [--map 列名=field]   CRM customer lists
quanyu import formats [--json]                       the header names each format accepts

Every file is read whole and each row checked before anything is written: bad rows are listed
with their line numbers and nothing is imported, unless --skip-bad. Re-importing adds nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from quanyu.cli.backend import with_backend
from quanyu.cli.options import ApiUrl, DataDir, Json, Token, Workspace
from quanyu.cli.output import console, emit_json, row_progress, table
from quanyu.errors import InvalidInput, QuanyuError

import_app = typer.Typer(help="导入文件 / import export files (orders, POS, sign-ups, live, customers)",
                         no_args_is_help=True)  # fmt: skip

FileArg = Annotated[
    Path, typer.Argument(help="导出文件 CSV/JSON / the export file", exists=True, dir_okay=False)
]
SourceOpt = Annotated[str, typer.Option("--source", help="来源ID / source id (src_…)")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="只检查不写入 / check only, write nothing")]
SkipBad = Annotated[
    bool, typer.Option("--skip-bad", help="跳过有问题的行 / import the good rows, report the bad")
]
Encoding = Annotated[
    str, typer.Option(help="文件编码 / encoding: auto, utf-8, utf-8-sig, gbk, gb18030, utf-16")
]
Timezone = Annotated[str | None, typer.Option(help="导出时间所在时区 / time zone of the file's times")]
NoProcess = Annotated[bool, typer.Option("--no-process", help="不立即处理队列 / leave the events queued")]

_STAGES = {"read": "读取 / reading rows", "write": "写入 / writing", "process": "处理 / processing"}


def _run(kind: str, path: Path, params: dict[str, Any], as_json: bool, data_dir: Any, api_url: Any, token: Any,
         workspace: Any) -> None:  # fmt: skip
    data = path.read_bytes()
    estimate = max(data.count(b"\n"), 1)

    def go(backend: Any) -> dict[str, Any]:
        with row_progress(as_json) as bar:
            task = bar.add_task(_STAGES["read"], total=estimate)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description=_STAGES[stage], completed=done, total=total or estimate)

            return dict(backend.import_file(kind, params, data, progress))

    report = with_backend(go, data_dir, api_url, token, workspace, as_json, explain=_explain(as_json))
    if as_json:
        emit_json(report)
        return
    _print(report)


def _explain(as_json: bool) -> Any:
    def explain(exc: QuanyuError) -> QuanyuError:
        if exc.code == "bad_rows" and isinstance(exc.details, dict) and not as_json:
            _problems(exc.details)
        if as_json and isinstance(exc.details, dict):
            emit_json({"code": exc.code, "message": exc.message, "details": exc.details})
        return exc

    return explain


def _problems(report: dict[str, Any]) -> None:
    rows = [[p["line"], p.get("column") or "", p["message"]] for p in report.get("problems", [])]
    table(
        f"有问题的行 / bad rows ({report.get('bad_rows', len(rows))})",
        ["行 line", "列 column", "原因 reason"],
        rows,
    )


def _print(report: dict[str, Any]) -> None:
    verb = "检查完成（未写入）/ checked, nothing written" if report["dry_run"] else "导入完成 / imported"
    console.print(
        f"[bold green]{verb}[/]: {report['format']} → {report['source_id']}  ({report['encoding']})"
    )
    summary = {"行 rows": report["rows"], "新事件 new events": report["new"],
               "已存在 already stored": report["already_stored"], "有问题 bad rows": report["bad_rows"],
               "用时 seconds": report["seconds"]}  # fmt: skip
    table("导入结果 / import", ["项 / field", "值 / value"], list(summary.items()))
    events = [[name, count] for name, count in report["events"].items()]
    events += [[f"跳过 skipped: {reason}", count] for reason, count in report["skipped"].items()]
    table("事件 / events", ["事件 event", "数量 count"], events)
    if report["problems"]:
        _problems(report)


@import_app.command("orders")
def import_orders(
    file: FileArg,
    source: SourceOpt,
    platform: Annotated[str, typer.Option(help="tmall | jd | youzan | douyin | xiaohongshu")],
    dry_run: DryRun = False, skip_bad: SkipBad = False, encoding: Encoding = "auto", timezone: Timezone = None,
    no_process: NoProcess = False,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """电商订单导出 / Import a marketplace order export (Order Completed / Refunded / Cancelled)."""
    params = _params(source, dry_run, skip_bad, encoding, timezone, no_process, platform=platform)
    _run("orders", file, params, as_json, data_dir, api_url, token, workspace)


@import_app.command("pos")
def import_pos(
    file: FileArg, source: SourceOpt,
    dry_run: DryRun = False, skip_bad: SkipBad = False, encoding: Encoding = "auto", timezone: Timezone = None,
    no_process: NoProcess = False,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """门店收银小票 / Import POS transactions (one row per item of a receipt)."""
    _run("pos", file, _params(source, dry_run, skip_bad, encoding, timezone, no_process), as_json, data_dir,
         api_url, token, workspace)  # fmt: skip


@import_app.command("signups")
def import_signups(
    file: FileArg, source: SourceOpt,
    event_name: Annotated[str | None, typer.Option(help="活动名称（文件没有该列时）/ event name if not a column")] = None,
    dry_run: DryRun = False, skip_bad: SkipBad = False, encoding: Encoding = "auto", timezone: Timezone = None,
    no_process: NoProcess = False,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """活动/展会报名名单 / Import an event or exhibition sign-up list."""
    params = _params(source, dry_run, skip_bad, encoding, timezone, no_process, event_name=event_name)
    _run("signups", file, params, as_json, data_dir, api_url, token, workspace)


@import_app.command("live")
def import_live(
    file: FileArg, source: SourceOpt,
    platform: Annotated[str, typer.Option(help="直播平台 / live platform: douyin | xiaohongshu | tmall")] = "douyin",
    dry_run: DryRun = False, skip_bad: SkipBad = False, encoding: Encoding = "auto", timezone: Timezone = None,
    no_process: NoProcess = False,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """直播互动 / Import live-stream interactions (watch, comment, like, share, purchase)."""
    params = _params(source, dry_run, skip_bad, encoding, timezone, no_process, platform=platform)
    _run("live", file, params, as_json, data_dir, api_url, token, workspace)


@import_app.command("customers")
def import_customers(
    file: FileArg, source: SourceOpt,
    map_: Annotated[list[str] | None, typer.Option("--map", help="列名=字段 / HEADER=field or HEADER=traits.NAME")] = None,
    dry_run: DryRun = False, skip_bad: SkipBad = False, encoding: Encoding = "auto", timezone: Timezone = None,
    no_process: NoProcess = False,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """客户名单（CRM）/ Import a customer list (CSV or JSON) with a field mapping."""
    params = _params(source, dry_run, skip_bad, encoding, timezone, no_process, map=list(map_ or []))
    _run("customers", file, params, as_json, data_dir, api_url, token, workspace)


@import_app.command("formats")
def import_formats(as_json: Json = False) -> None:
    """每种格式接受的表头 / The header names each import format accepts."""
    from quanyu.connectors.imports import catalog

    formats = catalog.describe()
    if as_json:
        emit_json(formats)
        return
    for f in formats:
        rows = [
            [c["field"], " / ".join(c["headers"]), c["kind"], "✓" if c["required"] else ""]
            for c in f["columns"]
        ]
        table(
            f"{f['label']} ({f['kind']} {f['format']})",
            ["字段 field", "表头 headers", "类型 kind", "必需"],
            rows,
        )


def _params(source: str, dry_run: bool, skip_bad: bool, encoding: str, timezone: str | None, no_process: bool,
            **extra: Any) -> dict[str, Any]:  # fmt: skip
    if not source:
        raise InvalidInput("需要 --source / --source is required")
    return {"source_id": source, "dry_run": dry_run, "skip_bad": skip_bad, "encoding": encoding,
            "timezone": timezone, "process": not no_process, **extra}  # fmt: skip
