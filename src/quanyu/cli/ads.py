"""`quanyu ads`: ad redirect links, ad cost imports and audience files for ad platforms.

quanyu ads links create NAME --source S --target URL --campaign C --channel baidu [--utm-… V] [--json]
quanyu ads links list|show ID [--json]              links with their clicks and visitors
quanyu ads costs import FILE [--channel baidu] [--dry-run] [--json]   all rows or none; idempotent
quanyu ads costs list [--from D] [--to D] [--channel C] [--campaign C] [--json]
quanyu ads audience SEGMENT_ID --id-type phone|device_id --hash md5|sha256 [--format txt|csv] -o FILE

They act on the running server's API when there is one, else on the data directory.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from quanyu.cli.backend import ApiBackend, LocalBackend, with_backend
from quanyu.cli.options import ApiUrl, DataDir, Json, Token, Workspace
from quanyu.cli.output import console, emit_json, pairs, row_progress, table
from quanyu.connectors.ads import audiences, costs
from quanyu.connectors.ads.links import AdLinks, clicks, link_url
from quanyu.errors import InvalidInput, QuanyuError

ads_app = typer.Typer(help="广告投放 / ads: redirect links, cost imports, audiences", no_args_is_help=True)
links_app = typer.Typer(help="广告跳转链接 / ad redirect links", no_args_is_help=True)
costs_app = typer.Typer(help="广告消耗 / ad costs", no_args_is_help=True)
ads_app.add_typer(links_app, name="links")
ads_app.add_typer(costs_app, name="costs")

Progressed = Callable[[int], None]


# ---------------------------------------------------------------------------------------------
# Where the commands act: the API of a running server, or the stores of the data directory.


class _Local:
    def __init__(self, backend: LocalBackend) -> None:
        self.platform, self.ws = backend.platform, backend.workspace_id
        self.links = AdLinks(self.platform.engine, self.platform.sources)

    def _counted(self, link: dict[str, Any]) -> dict[str, Any]:
        counts = clicks(self.platform.warehouse, self.ws, [link["id"]])[link["id"]]
        return {**link, "url": link_url(self.platform.journeys.public_url, link["id"]), **counts}

    def create_link(self, body: dict[str, Any]) -> dict[str, Any]:
        values = {k: v for k, v in body.items() if k.startswith("utm_")}
        made = self.links.create(self.ws, body["source_id"], body["name"], body["target_url"], body["campaign"],
                                 body["channel"], "cli", **values)  # fmt: skip
        return {**made, "url": link_url(self.platform.journeys.public_url, made["id"])}

    def list_links(self) -> list[dict[str, Any]]:
        return [self._counted(link) for link in self.links.all(self.ws)]

    def link(self, link_id: str) -> dict[str, Any]:
        return self._counted(self.links.get(self.ws, link_id))

    def import_costs(
        self, data: bytes, channel: str | None, dry_run: bool, progress: Progressed
    ) -> dict[str, Any]:
        parsed = costs.parse_csv(data, channel, progress)
        return costs.import_costs(self.platform.engine, self.ws, parsed, dry_run=dry_run)

    def list_costs(self, params: dict[str, Any]) -> dict[str, Any]:
        days = {k: date.fromisoformat(params[k]) if params.get(k) else None for k in ("from", "to")}
        return costs.query_costs(self.platform.engine, self.ws, from_=days["from"], to=days["to"],
                                 channel=params.get("channel"), campaign=params.get("campaign"))  # fmt: skip

    def audience(self, segment_id: str, params: dict[str, str]) -> tuple[bytes, dict[str, int]]:
        self.platform.segments.current(self.ws, segment_id)  # unknown and deleted segments: 404
        made = audiences.build(self.platform.warehouse, self.ws, segment_id, params["id_type"], params["hash"],
                               params["format"], params["device_case"])  # fmt: skip
        return made.body, {"count": made.count, "members": made.members, "matched": made.matched}


class _Api:
    def __init__(self, backend: ApiBackend) -> None:
        self.api = backend

    def create_link(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.api._call("POST", "/api/v1/ad-links", json=body))

    def list_links(self) -> list[dict[str, Any]]:
        return list(self.api._call("GET", "/api/v1/ad-links")["items"])

    def link(self, link_id: str) -> dict[str, Any]:
        return dict(self.api._call("GET", f"/api/v1/ad-links/{quote(link_id, safe='')}"))

    def import_costs(
        self, data: bytes, channel: str | None, dry_run: bool, progress: Progressed
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"dry_run": dry_run, **({"channel": channel} if channel else {})}
        return dict(self.api._call("POST", "/api/v1/ad-costs/import", params=params, content=data,
                                   headers={"Content-Type": "text/csv"}))  # fmt: skip

    def list_costs(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(self.api._call("GET", "/api/v1/ad-costs", params={k: v for k, v in params.items() if v}))

    def audience(self, segment_id: str, params: dict[str, str]) -> tuple[bytes, dict[str, int]]:
        resp = self.api._send("GET", f"/api/v1/segments/{quote(segment_id, safe='')}/audience", params=params)
        stats = {k: int(resp.headers.get(f"x-audience-{k}", 0)) for k in ("count", "members", "matched")}
        return resp.content, stats


def _run(fn: Callable[[Any], Any], as_json: bool, data_dir: Path | None, api_url: str | None, token: str | None,
         workspace: str | None) -> Any:  # fmt: skip
    def on(backend: Any) -> Any:
        return fn(_Local(backend) if isinstance(backend, LocalBackend) else _Api(backend))

    return with_backend(on, data_dir, api_url, token, workspace, as_json, explain=_explain(as_json))


def _explain(as_json: bool) -> Callable[[QuanyuError], QuanyuError]:
    """Bad cost rows listed as a table (or their JSON under --json) before the error line."""

    def explain(exc: QuanyuError) -> QuanyuError:
        details = exc.details if isinstance(exc.details, dict) else None
        if details and "errors" in details:
            if as_json:
                emit_json({"code": exc.code, "message": exc.message, "details": details})
            else:
                rows = [[e["line"], e.get("column") or "", e["reason"]] for e in details["errors"]]
                table(f"有问题的行 / bad rows ({details.get('error_count', len(rows))})",
                      ["行 line", "列 column", "原因 reason"], rows)  # fmt: skip
        return exc

    return explain


# ---------------------------------------------------------------------------------------------
# Links

LinkId = Annotated[str, typer.Argument(help="链接ID / link id")]
_LINK_COLUMNS = ("id", "name", "channel", "campaign", "clicks", "visitors", "url")


def _show_link(link: dict[str, Any]) -> None:
    pairs(f"广告链接 / ad link {link['id']}", {k: v for k, v in link.items() if v is not None})


@links_app.command("create")
def links_create(
    name: Annotated[str, typer.Argument(help="链接名称 / link name")],
    source: Annotated[str, typer.Option("--source", help="ads 类型来源ID / an `ads` source id")],
    target: Annotated[str, typer.Option("--target", help="落地页 / landing page URL (http/https)")],
    campaign: Annotated[str, typer.Option(help="计划名称 / campaign, as in cost reports")],
    channel: Annotated[str, typer.Option(help="baidu | tencent | ocean_engine | xiaohongshu | weibo | …")],
    utm_source: Annotated[str | None, typer.Option(help="默认为渠道 / default: the channel")] = None,
    utm_medium: Annotated[str | None, typer.Option(help="默认 cpc / default: cpc")] = None,
    utm_campaign: Annotated[str | None, typer.Option(help="默认为计划 / default: the campaign")] = None,
    utm_term: Annotated[str | None, typer.Option()] = None,
    utm_content: Annotated[str | None, typer.Option()] = None,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """创建广告跳转链接 / Create a redirect link; put its URL in the ad."""
    body = {"name": name, "source_id": source, "target_url": target, "campaign": campaign, "channel": channel,
            "utm_source": utm_source, "utm_medium": utm_medium, "utm_campaign": utm_campaign,
            "utm_term": utm_term, "utm_content": utm_content}  # fmt: skip
    made = _run(lambda b: b.create_link({k: v for k, v in body.items() if v is not None}), as_json, data_dir,
                api_url, token, workspace)  # fmt: skip
    if as_json:
        emit_json(made)
        return
    _show_link(made)


@links_app.command("list")
def links_list(
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """广告链接及点击 / Links with their clicks and visitors."""
    items = _run(lambda b: b.list_links(), as_json, data_dir, api_url, token, workspace)
    if as_json:
        emit_json({"items": items})
        return
    table("广告链接 / ad links", _LINK_COLUMNS, [[i.get(c) for c in _LINK_COLUMNS] for i in items])


@links_app.command("show")
def links_show(
    link_id: LinkId,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """一个链接及其点击 / One link with its clicks."""
    link = _run(lambda b: b.link(link_id), as_json, data_dir, api_url, token, workspace)
    if as_json:
        emit_json(link)
        return
    _show_link(link)


# ---------------------------------------------------------------------------------------------
# Costs


@costs_app.command("import")
def costs_import(
    file: Annotated[Path, typer.Argument(help="消耗报表 CSV / cost report (CSV)", exists=True, dir_okay=False)],
    channel: Annotated[str | None, typer.Option(help="无渠道列时的渠道 / channel for rows without one")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只检查不写入 / check only, write nothing")] = False,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """导入广告消耗 / Import a cost report: every row checked first, then all or nothing."""
    data = file.read_bytes()
    lines = max(data.count(b"\n"), 1)

    def go(backend: Any) -> dict[str, Any]:
        with row_progress(as_json) as bar:
            task = bar.add_task("检查 / checking rows", total=lines)
            report = dict(
                backend.import_costs(data, channel, dry_run, lambda n: bar.update(task, completed=n))
            )
            bar.update(task, completed=lines, description="写入 / written")
            return report

    report = _run(go, as_json, data_dir, api_url, token, workspace)
    if as_json:
        emit_json(report)
        return
    verb = "检查完成（未写入）/ checked, nothing written" if report["dry_run"] else "导入完成 / imported"
    console.print(f"[bold green]{verb}[/]: {file.name} ({report['encoding']})")
    summary = {"行 rows": report["rows"], "新增 inserted": report["inserted"], "更新 updated": report["updated"],
               "未变 unchanged": report["unchanged"], "跳过的行 skipped lines": report["skipped_lines"]}  # fmt: skip
    pairs("导入结果 / import", summary)


@costs_app.command("list")
def costs_list(
    from_: Annotated[str | None, typer.Option("--from", help="起始日期 / first day YYYY-MM-DD")] = None,
    to: Annotated[str | None, typer.Option(help="结束日期 / last day YYYY-MM-DD")] = None,
    channel: Annotated[str | None, typer.Option()] = None,
    campaign: Annotated[str | None, typer.Option()] = None,
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """按计划汇总消耗 / Spend, impressions and clicks per campaign (per day with --json)."""
    params = {"from": from_, "to": to, "channel": channel, "campaign": campaign}

    def go(backend: Any) -> dict[str, Any]:
        for value in (from_, to):
            try:
                date.fromisoformat(value or "2000-01-01")
            except ValueError:
                raise InvalidInput(f"日期格式应为 YYYY-MM-DD / dates are YYYY-MM-DD, got {value!r}",
                                   code="invalid_day") from None  # fmt: skip
        return dict(backend.list_costs(params))

    body = _run(go, as_json, data_dir, api_url, token, workspace)
    if as_json:
        emit_json(body)
        return
    columns = ("channel", "campaign", "currency", "spend", "impressions", "clicks", "days")
    table("广告消耗 / ad costs", columns, [[r.get(c) for c in columns] for r in body["by_campaign"]])
    table("合计 / totals", ("currency", "spend", "impressions", "clicks"),
          [[r.get(c) for c in ("currency", "spend", "impressions", "clicks")] for r in body["totals"]])  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Audiences


@ads_app.command("audience")
def audience_command(
    segment_id: Annotated[str, typer.Argument(help="分群ID / segment id (seg_…)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="输出文件 / output file")],
    id_type: Annotated[str, typer.Option(help="phone | device_id")] = "phone",
    hash_: Annotated[str, typer.Option("--hash", help="md5 | sha256")] = "sha256",
    format_: Annotated[str, typer.Option("--format", help="txt (一行一个 one per line) | csv")] = "txt",
    device_case: Annotated[str, typer.Option(help="auto (IDFA 大写) | upper | lower")] = "auto",
    data_dir: DataDir = None, api_url: ApiUrl = None, token: Token = None, workspace: Workspace = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """导出广告人群包 / Hashed phones or device ids of a segment's members, for ad platforms."""
    params = {"id_type": id_type, "hash": hash_, "format": format_, "device_case": device_case}

    def go(backend: Any) -> dict[str, int]:
        audiences.check(id_type, hash_, format_, device_case)  # before any work, with the CLI's names
        body, stats = backend.audience(segment_id, params)
        try:
            output.write_bytes(body)
        except OSError as exc:
            raise InvalidInput(
                f"无法写入 / cannot write {output}: {exc.strerror}", code="cannot_write"
            ) from None
        return dict(stats)

    stats = _run(go, as_json, data_dir, api_url, token, workspace)
    result = {"segment_id": segment_id, "output": str(output), **params, **stats}
    if as_json:
        emit_json(result)
        return
    pairs("人群包 / audience", result)
