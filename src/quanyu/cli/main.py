"""`quanyu`: the command line. Every command has --help; commands that print data take --json."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from quanyu.cli.ads import ads_app
from quanyu.cli.backend import open_backend
from quanyu.cli.identity import identity_app, profiles_app
from quanyu.cli.imports import import_app
from quanyu.cli.journeys import channels_app, consent_app, journeys_app, messaging_app
from quanyu.cli.options import ApiUrl, DataDir, Json, Token, Workspace
from quanyu.cli.options import guard as _guard
from quanyu.cli.options import settings_from as _settings
from quanyu.cli.output import console, emit_json, pairs, table
from quanyu.cli.people import rebuild_command as _  # noqa: F401  (registers the commands)
from quanyu.cli.segments import segments_app
from quanyu.errors import InvalidInput

app = typer.Typer(help="全域 Quanyu: 全渠道客户数据与营销平台 / omnichannel CDP", no_args_is_help=True)
sources_app = typer.Typer(help="来源管理 / manage sources", no_args_is_help=True)
pipeline_app = typer.Typer(help="处理管道 / processing pipeline", no_args_is_help=True)
quarantine_app = typer.Typer(help="隔离区 / quarantined messages", no_args_is_help=True)
events_app = typer.Typer(help="事件浏览 / browse events", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(events_app, name="events")
app.add_typer(identity_app, name="identity")
app.add_typer(profiles_app, name="profiles")
app.add_typer(segments_app, name="segments")
app.add_typer(journeys_app, name="journeys")
app.add_typer(channels_app, name="channels")
app.add_typer(messaging_app, name="messaging")
app.add_typer(consent_app, name="consent")
app.add_typer(ads_app, name="ads")
app.add_typer(import_app, name="import")


@app.command()
def init(
    data_dir: DataDir = None,
    name: Annotated[str, typer.Option(help="工作空间名称 / workspace name")] = "默认工作空间 Default",
    timezone: Annotated[str, typer.Option(help="时区 / time zone")] = "Asia/Shanghai",
    as_json: Json = False,
) -> None:
    """创建工作空间 / Create a workspace, an admin token and a default server-side source."""
    from quanyu.platform import Platform

    with _guard(as_json):
        platform = Platform(_settings(data_dir))
        try:
            ws = platform.workspaces.create(name, timezone)
            token = platform.workspaces.issue_token(ws.id)
            source = platform.sources.create(ws.id, "服务端 Server", "server")
        finally:
            platform.close()
    result = {"workspace_id": ws.id, "api_token": token, "write_key": source.write_key}
    if as_json:
        emit_json(result)
        return
    pairs("已初始化 / initialised", {**result, "source_id": source.source.id})
    console.print("[yellow]请妥善保存令牌和密钥，它们只显示一次 / keep the token and key: shown only once[/]")


@sources_app.command("create")
def sources_create(
    name: Annotated[str, typer.Argument(help="来源名称 / source name")],
    type_: Annotated[str, typer.Option("--type", help="source type, e.g. website, tmall, pos")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE connector setting")] = None,
    data_dir: DataDir = None,
    api_url: ApiUrl = None,
    token: Token = None,
    workspace: Workspace = None,
    as_json: Json = False,
) -> None:
    """创建来源 / Create a source and print its write key (shown once)."""
    with _guard(as_json):
        settings = _parse_sets(set_ or [])
        backend = open_backend(_settings(data_dir), api_url, token, workspace)
        try:
            created = backend.create_source(name, type_, settings)
        finally:
            backend.close()
    if as_json:
        emit_json(created)
    else:
        pairs(
            "已创建来源 / source created",
            {k: created[k] for k in ("id", "name", "type", "channel", "domain", "presence", "write_key")},
        )


@sources_app.command("list")
def sources_list(
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """列出来源 / List sources."""
    with _guard(as_json):
        backend = open_backend(_settings(data_dir), api_url, token, workspace)
        try:
            rows = backend.list_sources()
        finally:
            backend.close()
    if as_json:
        emit_json(rows)
    else:
        cols = ["id", "name", "type", "channel", "domain", "presence", "write_key_hint"]
        table("来源 / sources", cols, [[r[c] for c in cols] for r in rows])


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option(help="listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="listen port")] = 8000,
    no_pipeline: Annotated[
        bool, typer.Option("--no-pipeline", help="do not run the pipeline worker")
    ] = False,
) -> None:
    """启动服务 / Serve the API, the collector and the pipeline worker."""
    from quanyu.server import serve as run_server

    with _guard(False):
        settings = _settings(data_dir, host=host, port=port)
        if no_pipeline:
            settings.pipeline_enabled = False
        console.print(f"全域 Quanyu 服务启动 / serving on http://{host}:{port}  (API docs: /docs)")
        run_server(settings)


@pipeline_app.command("run")
def pipeline_run(
    once: Annotated[bool, typer.Option("--once", help="drain the queue once and exit")] = False,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """处理队列 / Drain the ingestion queue into the warehouse."""
    with _guard(as_json):
        backend = open_backend(_settings(data_dir), api_url, token, workspace)
        try:
            while True:
                with console.status("处理中 / processing…", spinner="dots"):
                    result = backend.pipeline_run()
                if once:
                    break
                if not as_json and result["events"]:
                    console.print(result)
                time.sleep(1)
        finally:
            backend.close()
    if as_json:
        emit_json(result)
    else:
        pairs("处理完成 / pipeline run", result)


@pipeline_app.command("status")
def pipeline_status(
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """队列与处理计数 / Queued and processed counts."""
    with _guard(as_json):
        backend = open_backend(_settings(data_dir), api_url, token, workspace)
        try:
            status = backend.pipeline_status()
        finally:
            backend.close()
    emit_json(status) if as_json else pairs("管道状态 / pipeline status", status)


@quarantine_app.command("list")
def quarantine_list(
    status: Annotated[str, typer.Option(help="quarantined | replayed | all")] = "quarantined",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """列出隔离的消息 / List quarantined messages with their reasons."""
    with _guard(as_json):
        backend = open_backend(_settings(data_dir), api_url, token, workspace)
        try:
            result = backend.quarantine_list(status, limit)
        finally:
            backend.close()
    if as_json:
        emit_json(result)
    else:
        rows = [
            [e["id"], e["received_at"], e["code"], e["reason"], e["payload"][:60]] for e in result["items"]
        ]
        table("隔离区 / quarantine", ["id", "received_at", "code", "reason", "payload"], rows)


@quarantine_app.command("replay")
def quarantine_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="quarantine ids")] = None,
    all_: Annotated[bool, typer.Option("--all", help="replay every quarantined message")] = False,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """重放隔离的消息 / Validate quarantined messages again and queue those that now pass."""
    with _guard(as_json):
        backend = open_backend(_settings(data_dir), api_url, token, workspace)
        try:
            chosen = list(ids or [])
            if all_:
                chosen = [e["id"] for e in backend.quarantine_list("quarantined", 1000)["items"]]
            if not chosen:
                raise InvalidInput("请给出 id 或 --all / give ids or --all")
            result = backend.quarantine_replay(chosen)
        finally:
            backend.close()
    if as_json:
        emit_json(result)
    else:
        console.print(
            f"已重放 / replayed: {len(result['replayed'])}, 仍失败 / still failing: {len(result['failed'])}"
        )
        for f in result["failed"]:
            console.print(f"  #{f['id']} {f['code']}: {f['message']}")


@events_app.command("tail")
def events_tail(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep polling for new events")] = False,
    user_id: Annotated[str | None, typer.Option("--user-id")] = None,
    anonymous_id: Annotated[str | None, typer.Option("--anonymous-id")] = None,
    event: Annotated[str | None, typer.Option("--event")] = None,
    type_: Annotated[str | None, typer.Option("--type")] = None,
    source_id: Annotated[str | None, typer.Option("--source-id")] = None,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """最新事件 / Show the newest events (what GET /api/v1/events returns)."""
    params = {"limit": limit, "user_id": user_id, "anonymous_id": anonymous_id, "event": event,
              "type": type_, "source_id": source_id}  # fmt: skip
    seen: set[str] = set()
    with _guard(as_json):
        backend = open_backend(_settings(data_dir), api_url, token, workspace)
        try:
            while True:
                items = [i for i in backend.events(params)["items"] if i["message_id"] not in seen]
                seen.update(i["message_id"] for i in items)
                _print_events(list(reversed(items)), as_json)
                if not follow:
                    break
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            backend.close()


def _print_events(items: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(items)
        return
    rows = [
        [i["timestamp"], i["channel"], i["type"], i["event"] or i["name"] or "", i["user_id"] or i["anonymous_id"],
         i["order_id"] or "", i["amount"] if i["amount"] is not None else ""]
        for i in items
    ]  # fmt: skip
    table("事件 / events", ["timestamp", "channel", "type", "event", "who", "order", "amount"], rows)


@app.command()
def demo(
    people: Annotated[int, typer.Option(min=10, help="人数 / people to generate")] = 20_000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="exit after the summary")] = False,
    reset: Annotated[bool, typer.Option("--reset", help="start from an empty demo data directory")] = False,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
    port: Annotated[int, typer.Option(help="port to serve on")] = 8000,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """演示品牌 / Generate the demo brand, send it through the API, process it, summarise."""
    from quanyu.demo.run import run_demo

    with _guard(as_json):
        run_demo(
            _settings(data_dir or Path(".quanyu-demo"), port=port),
            people=people, seed=seed, serve=not no_serve, reset=reset, as_json=as_json,
        )  # fmt: skip
    # Everything is stored and closed by now. The demo ran an API server inside this process,
    # whose idle worker threads still hold DuckDB cursors; letting the interpreter tear them down
    # can abort in DuckDB's native code ("terminate called without an active exception") after
    # a successful run, so the process ends here, its output flushed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _parse_sets(values: list[str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--set 需要 KEY=VALUE / --set expects KEY=VALUE, got {value!r}")
        settings[key.strip()] = val
    return settings


def main() -> None:
    app()
