"""`quanyu identity rebuild` and `quanyu profiles lookup|show|timeline|history|links`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from quanyu.cli.backend import open_backend
from quanyu.cli.identity import identity_app, profiles_app
from quanyu.cli.options import ApiUrl, DataDir, Json, Token, Workspace, guard, settings_from
from quanyu.cli.output import console, emit_json, pairs, table

ProfileId = Annotated[str, typer.Argument(help="用户ID / profile id (prof_…)")]


@identity_app.command("rebuild")
def rebuild_command(
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """重建身份图 / Recompute every person of the workspace from its events."""
    with guard(as_json):
        backend = open_backend(settings_from(data_dir), api_url, token, workspace)
        try:
            with console.status("重建身份图 / rebuilding the identity graph…", spinner="dots"):
                result = backend.identity_rebuild()
        finally:
            backend.close()
    if as_json:
        emit_json(result)
    else:
        pairs("身份图已重建 / identity graph rebuilt", result)


@identity_app.command("match")
def match_command(
    threshold: Annotated[float, typer.Option(min=0.01, max=0.99, help="合并阈值 / merge at or above")] = 0.95,
    review_threshold: Annotated[float, typer.Option(min=0.01, max=0.99, help="待审核阈值 / queue from")] = 0.6,
    review_only: Annotated[bool, typer.Option("--review-only", help="全部待审核 / queue every pair, merge none")] = False,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """概率匹配 / Match people by name, birthday, address and partial phone (Splink)."""
    with guard(as_json):
        if review_threshold > threshold:
            from quanyu.errors import InvalidInput

            raise InvalidInput("--review-threshold 不能高于 --threshold / must not exceed --threshold")
        backend = open_backend(settings_from(data_dir), api_url, token, workspace)
        try:
            with console.status("匹配中 / matching…", spinner="dots"):
                result = backend.identity_match(threshold, review_threshold, not review_only)
        finally:
            backend.close()
    if as_json:
        emit_json(result)
    else:
        stitch = result.pop("stitch") or {}
        pairs("概率匹配完成 / matching done", {**result, "merges": stitch.get("merges", 0)})


@profiles_app.command("lookup")
def lookup_command(
    id_type: Annotated[str, typer.Argument(metavar="TYPE", help="标识类型 / identifier type, e.g. phone")],
    value: Annotated[str, typer.Argument(help="标识值 / identifier value")],
    scope: Annotated[str, typer.Option("--scope", help="应用ID / app id for openids")] = "",
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """按标识查找用户 / Find the person an identifier belongs to."""
    _show(lambda b: b.profile_lookup(id_type, value, scope), data_dir, api_url, token, workspace, as_json)


@profiles_app.command("show")
def show_command(
    profile_id: ProfileId, data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None,
    workspace: Workspace = None, as_json: Json = False,
) -> None:  # fmt: skip
    """查看用户 / Show a profile and its identifiers."""
    _show(lambda b: b.profile(profile_id), data_dir, api_url, token, workspace, as_json)


@profiles_app.command("timeline")
def timeline_command(
    profile_id: ProfileId,
    limit: Annotated[int, typer.Option(help="条数 / events per page")] = 50,
    cursor: Annotated[str | None, typer.Option(help="下一页游标 / next_cursor of the previous page")] = None,
    oldest_first: Annotated[bool, typer.Option("--oldest-first", help="从早到晚 / oldest first")] = False,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """跨渠道时间线 / A person's events across channels."""
    params = {"limit": limit, "cursor": cursor, "order": "asc" if oldest_first else "desc"}
    body = _call(lambda b: b.profile_part(profile_id, "timeline", params), data_dir, api_url, token, workspace,
                 as_json)  # fmt: skip
    if as_json:
        emit_json(body)
        return
    rows = [
        [e["timestamp"][:19], e["channel"] or "", e["event"] or e["type"], _money(e),
         ", ".join(str(p.get("name") or p.get("sku") or "") for p in e["products"][:3]), e["coupon"] or ""]
        for e in body["items"]
    ]  # fmt: skip
    table(f"时间线 / timeline {body['profile_id']}", ["时间 time", "渠道 channel", "事件 event", "金额 amount",
          "商品 products", "优惠券 coupon"], rows)  # fmt: skip
    if body["next_cursor"]:
        console.print(f"下一页 / next page: --cursor {body['next_cursor']}")


@profiles_app.command("history")
def history_command(
    profile_id: ProfileId, data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None,
    workspace: Workspace = None, as_json: Json = False,
) -> None:  # fmt: skip
    """合并与拆分记录 / Merges and splits of a person, explained."""
    body = _call(
        lambda b: b.profile_part(profile_id, "history", {}), data_dir, api_url, token, workspace, as_json
    )
    if as_json:
        emit_json(body)
        return
    table(f"合并历史 / history {body['profile_id']}", ["时间 at", "类型 kind", "说明 explanation"],
          [[c["at"][:19], c["kind"], c["explanation"]] for c in body["items"]])  # fmt: skip


def _money(event: dict[str, Any]) -> str:
    return (
        "" if event.get("amount") is None else f"{event['amount']:.2f} {event.get('currency') or ''}".strip()
    )


def _call(fn: Any, data_dir: Any, api_url: Any, token: Any, workspace: Any, as_json: bool) -> Any:
    with guard(as_json):
        backend = open_backend(settings_from(data_dir), api_url, token, workspace)
        try:
            return fn(backend)
        finally:
            backend.close()


def _show(fn: Any, data_dir: Any, api_url: Any, token: Any, workspace: Any, as_json: bool) -> None:
    body = _call(fn, data_dir, api_url, token, workspace, as_json)
    if as_json:
        emit_json(body)
        return
    console.print(f"[bold]{body['profile_id']}[/bold]  首次出现 / first seen {body['first_seen'][:19]}")
    if body.get("redirected_from"):
        console.print(f"({body['redirected_from']} 已合并至此 / merged into this profile)")
    table("标识 / identifiers", ["类型 type", "值 value", "范围 scope", "首次出现 first seen"],
          [[i["type"], i["value"], i.get("scope", ""), i["first_seen"][:19]] for i in body["identifiers"]])  # fmt: skip
