"""`quanyu demo`: the demo brand end to end, through the public API only.

Initialise a workspace, start `quanyu serve` as its own process, create one source per channel
through the management API, send the brand's year through `/v1/batch` with the source's write
key, wait for the pipeline and save the seed segments. The marketplace orders, POS receipts,
official-account events and ad costs go through their connectors instead (demo/feeds.py): the
platforms' export files through the import routes, WeChat's XML pushes through
`/connect/wechat/…`, the cost reports through `/api/v1/ad-costs/import`. Then the journeys (demo/journeys.py):
the server stops and this process opens the same data, so that it can move the journeys' clock;
it publishes three journeys through the same API (in process) and replays the year's last week
day by day, then lets the journeys finish. Summarise, and serve again unless told not to.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from quanyu.cli.output import console, emit_json, table
from quanyu.connectors import wechat_oa
from quanyu.demo import feeds as demo_feeds
from quanyu.demo import journeys
from quanyu.demo.generator import BRAND_NAME, DemoBrand, generate_brand
from quanyu.demo.generator.identifiers import OA_APP_ID
from quanyu.demo.generator.timeline import SHANGHAI, to_shanghai
from quanyu.demo.segments import SEGMENTS as DEMO_SEGMENTS
from quanyu.demo.segments import TOUCH_EVENTS
from quanyu.errors import Conflict, InvalidInput, StorageUnavailable
from quanyu.platform import Platform
from quanyu.settings import Settings

_STORE_FILES = ("quanyu.db", "quanyu.db-wal", "quanyu.db-shm", "warehouse.duckdb", "warehouse.duckdb.wal",
                "ground_truth.csv", "server.json", "server.lock",
                *(f"{journeys.MESSAGES_DIR}/{c}.jsonl" for c in journeys.SINK_CHANNELS))  # fmt: skip
# The seed's win-back segment (30 days not reached), which the win-back journey starts from.
_WINBACK = DEMO_SEGMENTS[0]["name"]
_SENDERS = 4
_PUSHERS = 32  # WeChat pushes wait for their commit each: many at a time
_BATCH = 500
EXPORTS_DIR = "exports"  # the export files the demo imported, kept for a look


@dataclass
class Sources:
    """The demo's sources as created: write keys (for /v1/batch) and ids (for the connectors)."""

    keys: dict[str, str]
    ids: dict[str, str]


@dataclass
class ConnectorStats:
    """What went through the connectors: files imported, WeChat pushes, ad cost reports."""

    files: list[dict[str, Any]] = field(default_factory=list)
    pushes: int = 0
    lookups: int = 0
    converted: int = 0
    ad_cost_rows: int = 0
    import_seconds: float = 0.0
    push_seconds: float = 0.0

    def public(self, exports_dir: Path) -> dict[str, Any]:
        imports = [f for f in self.files if f["route"] != "ad-costs"]
        return {
            "exports_dir": str(exports_dir),
            "files": self.files,
            "imported_rows": sum(f["rows"] for f in imports),
            "imported_events": sum(f["new"] for f in imports),
            "wechat_pushes": self.pushes,
            "unionid_lookups": self.lookups,
            "ad_cost_rows": self.ad_cost_rows,
            "generated_events_via_connectors": self.converted,
            "seconds": {
                "imports": round(self.import_seconds, 1),
                "wechat_pushes": round(self.push_seconds, 1),
            },
        }


@dataclass
class SendStats:
    requests: int = 0
    accepted: int = 0
    quarantined: int = 0
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def run_demo(
    settings: Settings, *, people: int, seed: int, serve: bool, reset: bool, as_json: bool,
    end: datetime | None = None,
) -> dict[str, Any]:  # fmt: skip
    """`end`: where the brand's year ends (default today's midnight in Shanghai, so the demo looks
    recent; tests pass a fixed one for the same data every day)."""
    data_dir = settings.data_dir
    _prepare_dir(data_dir, reset)
    creds = _init(settings)
    try:
        summary = _demo(settings, creds, people=people, seed=seed, quiet=as_json, end=to_shanghai(end))
        _report(summary, as_json)
        if serve:
            server = _start_server(data_dir, settings.port)
            try:
                console.print(
                    f"\n控制台与 API / console & API: [bold]{server.url}[/]  (Ctrl-C 停止 / to stop)"
                )
                console.print(f"管理令牌 / API token: {creds['api_token']}")
                server.wait()
            finally:
                server.stop()
        return summary
    except KeyboardInterrupt:
        return {}


def _demo(
    settings: Settings, creds: dict[str, str], *, people: int, seed: int, quiet: bool, end: datetime
) -> dict[str, Any]:
    data_dir = settings.data_dir
    started = time.perf_counter()
    with console.status(f"生成演示品牌 / generating {BRAND_NAME} with {people:,} people…", spinner="dots"):
        brand = generate_brand(people, seed=seed, end=end)
    generated_s = time.perf_counter() - started
    # The year before the replayed week is the brand's past: it arrives before any journey exists.
    boundaries = journeys.live_boundaries(end)
    past, days = journeys.split_brand(brand, boundaries)
    stats = SendStats()
    connected = ConnectorStats()
    feeds = demo_feeds.DemoFeeds(brand)
    stamps = [b.astimezone(SHANGHAI).isoformat() for b in boundaries]
    past_feed = feeds.feed(past, stamps[0], "year")
    day_feeds = {id(day): feeds.feed(day, stamps[i + 1], f"day{i + 1}") for i, day in enumerate(days)}
    batch_ids = {str(m.get("anonymousId")) for f in (past_feed, *day_feeds.values())
                 for m in f.batch.events.get(demo_feeds.POS, ())}  # fmt: skip
    _write_ground_truth(data_dir / "ground_truth.csv", feeds.truth(brand.ground_truth, batch_ids))
    exports = data_dir / EXPORTS_DIR
    server = _start_server(data_dir, settings.port)
    try:
        token = {"Authorization": f"Bearer {creds['api_token']}"}
        api = httpx.Client(base_url=server.url, headers=token, timeout=600)
        sources = _create_sources(api, brand)
        keys = sources.keys
        started = time.perf_counter()
        with ThreadPoolExecutor(1) as side:  # the year's WeChat pushes beside the batches and files
            pushing = side.submit(_push_all, server.url, past_feed, sources, stats, connected)
            _send_all(server.url, past_feed.batch, keys, stats, quiet=quiet)
            _import_all(api, past_feed, sources, stats, connected, exports)
            pushing.result()
        send_s = time.perf_counter() - started
        ingest_rate = round(stats.accepted / send_s) if send_s else None
        _wait_for_pipeline(api, quiet=quiet)
        processed_s = time.perf_counter() - started
        created = _create_segments(api, quiet=quiet)
    finally:
        server.stop()
    # The replayed week, in this process: the journeys' clock has to move with the events.
    started = time.perf_counter()
    winback = next(s["segment_id"] for s in created if s["name"] == _WINBACK)
    expires = (boundaries[0] + timedelta(days=30)).astimezone(SHANGHAI).date().isoformat()
    with (
        _local_api(settings, creds["api_token"]) as (local, platform),
        console.status(f"旅程 / journeys: 回放最近 {journeys.LIVE_DAYS} 天 / replaying the last "
                       f"{journeys.LIVE_DAYS} days…", spinner="dots") if not quiet else _nothing(),
    ):  # fmt: skip
        made = journeys.setup(local, data_dir, winback, expires)
        seconds = journeys.replay(local, platform, creds["workspace_id"], days, boundaries,
                                  lambda part: _send_day(local, day_feeds[id(part)], sources, stats, connected,
                                                         exports), winback)  # fmt: skip
        status: dict[str, Any] = local.get("/api/v1/pipeline/status").json()
        segments = _refresh_segments(local, created)  # as of now, the replayed week included
        channels = local.get("/api/v1/events/stats").json()["channels"]
        block = {"live_days": journeys.LIVE_DAYS,
                 "clock": {"from": boundaries[0].isoformat(),
                           "to": (boundaries[-1] + timedelta(days=journeys.FINISH_DAYS[-1])).isoformat()},
                 **journeys.summarise(local, made, data_dir), "seconds": seconds}  # fmt: skip
    journeys_s = time.perf_counter() - started
    return {
        "brand": BRAND_NAME,
        "workspace_id": creds["workspace_id"],
        "api_token": creds["api_token"],
        "url": f"http://127.0.0.1:{settings.port}",
        "people": people,
        "sources": len(keys),
        "events_generated": brand.event_count(),
        "connectors": connected.public(exports),
        "requests": stats.requests,
        "accepted": stats.accepted,
        "quarantined": stats.quarantined,
        "retries": stats.retries,
        "processed": status["processed"],
        "duplicates": status["duplicates"],
        "seconds": {"generate": round(generated_s, 1), "send": round(send_s, 1), "send_and_process": round(processed_s, 1),
                    "journeys": round(journeys_s, 1)},
        "ingest_events_per_second": ingest_rate,
        "ground_truth": str(data_dir / "ground_truth.csv"),
        "channels": channels,
        "segments": segments,
        "journeys": block,
    }  # fmt: skip


def _prepare_dir(data_dir: Path, reset: bool) -> None:
    existing = [data_dir / name for name in _STORE_FILES if (data_dir / name).exists()]
    if existing and not reset:
        raise InvalidInput(
            f"{data_dir} 已有数据，使用 --reset 重新开始 / already holds data: pass --reset to start over"
        )
    for path in existing:
        path.unlink()
    for path in (data_dir / EXPORTS_DIR).glob("*.csv"):
        path.unlink()


def _init(settings: Settings) -> dict[str, str]:
    platform = Platform(settings)
    try:
        ws = platform.workspaces.create(f"{BRAND_NAME} 演示 demo")
        token = platform.workspaces.issue_token(ws.id, name="demo")
        return {"workspace_id": ws.id, "api_token": token}
    finally:
        platform.close()


class _Server:
    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url

    def wait(self) -> None:
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _start_server(data_dir: Path, port: int) -> _Server:
    url = f"http://127.0.0.1:{port}"
    try:
        httpx.get(f"{url}/healthz", timeout=0.5)
        raise Conflict(f"端口 {port} 已被占用 / port {port} is in use: stop that server or pass --port")
    except httpx.HTTPError:
        pass
    cmd = [sys.executable, "-m", "quanyu", "serve", "--data-dir", str(data_dir), "--port", str(port)]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StorageUnavailable("服务启动失败 / the server process exited during start-up")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return _Server(process, url)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise StorageUnavailable("服务未能在 60 秒内启动 / the server did not start within 60 s")


def _write_ground_truth(path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    # Kept aside for identity-resolution accuracy checks; never sent to the API.
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["person_id", "source_key", "identifier_type", "identifier_value"])
        writer.writerows(rows)


def _create_sources(api: httpx.Client, brand: DemoBrand) -> Sources:
    keys, ids = {}, {}
    for source in brand.sources:
        body: dict[str, Any] = {"name": source.name, "type": source.type}
        if source.key == demo_feeds.WECHAT_OA:  # 服务器配置: the token and the account's app id
            body["settings"] = {"token": demo_feeds.OA_TOKEN, "app_id": OA_APP_ID}
        resp = api.post("/api/v1/sources", json=body)
        resp.raise_for_status()
        keys[source.key] = resp.json()["write_key"]
        ids[source.key] = resp.json()["id"]
    return Sources(keys, ids)


def _send_all(url: str, brand: DemoBrand, keys: dict[str, str], stats: SendStats, quiet: bool) -> None:
    batches = list(brand.iter_batches(_BATCH))
    columns = (TextColumn("发送 / sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=quiet) as progress:
        task = progress.add_task("send", total=brand.event_count())
        local = threading.local()

        def send(item: tuple[str, list[dict[str, Any]]]) -> None:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(base_url=url, timeout=60)
            key, messages = item
            _post_batch(client, keys[key], messages, stats)
            progress.advance(task, len(messages))

        with ThreadPoolExecutor(_SENDERS) as pool:
            list(pool.map(send, batches))


def _send_day(
    api: httpx.Client, feed: demo_feeds.Feed, sources: Sources, stats: SendStats, connected: ConnectorStats,
    exports: Path,
) -> None:  # fmt: skip
    """One replayed day: the day's exports and pushes through the connectors, the rest in time
    order through `/v1/batch`."""
    for key, messages in feed.batch.iter_batches(_BATCH):
        _post_batch(api, sources.keys[key], messages, stats)
    _import_all(api, feed, sources, stats, connected, exports)
    _push_all(str(api.base_url), feed, sources, stats, connected)


def _import_all(
    api: httpx.Client, feed: demo_feeds.Feed, sources: Sources, stats: SendStats, connected: ConnectorStats,
    exports: Path,
) -> None:  # fmt: skip
    """The window's export files through the import routes, each kept in `exports` for a look."""
    exports.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for export in feed.exports:
        (exports / export.name).write_bytes(export.data)
        connected.files.append(_import(api, export, sources, stats))
        if export.route == "ad-costs":
            connected.ad_cost_rows += export.rows
    connected.import_seconds += time.perf_counter() - started
    connected.converted += feed.converted


def _push_all(
    url: str, feed: demo_feeds.Feed, sources: Sources, stats: SendStats, connected: ConnectorStats
) -> None:
    """The window's official-account events as WeChat's signed XML pushes, many at a time."""
    started = time.perf_counter()
    path = f"/connect/wechat/{sources.ids[demo_feeds.WECHAT_OA]}" if feed.pushes else ""
    local = threading.local()
    clients: list[httpx.Client] = []

    def push(body: bytes) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=60)
            clients.append(client)
        _push(client, path, body)

    with ThreadPoolExecutor(_PUSHERS) as pool:
        list(pool.map(push, feed.pushes))
    for client in clients:
        client.close()
    connected.push_seconds += time.perf_counter() - started
    with stats.lock:
        stats.accepted += len(feed.pushes)
    connected.pushes += len(feed.pushes)
    connected.lookups += feed.lookups


def _import(
    api: httpx.Client, export: demo_feeds.Export, sources: Sources, stats: SendStats
) -> dict[str, Any]:
    if export.route == "ad-costs":
        resp = api.post("/api/v1/ad-costs/import", params={"channel": export.param}, content=export.data,
                        headers={"Content-Type": "text/csv"})  # fmt: skip
    else:
        params = {"source_id": sources.ids[export.source_key], "timezone": "Asia/Shanghai"}
        if export.param:
            params["platform"] = export.param
        resp = api.post(f"/api/v1/imports/{export.route}", params=params, content=export.data,
                        headers={"Content-Type": "text/csv"})  # fmt: skip
    if resp.status_code != 200:
        raise InvalidInput(
            f"导入失败 / import of {export.name} refused: {resp.status_code} {resp.text[:500]}"
        )
    report = resp.json()
    if export.route == "ad-costs":
        return {"file": export.name, "route": export.route, "channel": export.param, "rows": report["rows"],
                "inserted": report["inserted"], "updated": report["updated"]}  # fmt: skip
    with stats.lock:
        stats.requests += 1
        stats.accepted += report["new"]
    return {"file": export.name, "route": export.route, "source": export.source_key, "rows": report["rows"],
            "new": report["new"], "already_stored": report["already_stored"], "events": report["events"]}  # fmt: skip


def _push(client: httpx.Client, path: str, body: bytes) -> None:
    """One WeChat push, signed as WeChat signs it: sha1 of the sorted token, timestamp, nonce."""
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
    query = {"signature": wechat_oa.signature(demo_feeds.OA_TOKEN, timestamp, nonce),
             "timestamp": timestamp, "nonce": nonce}  # fmt: skip
    for attempt in range(30):
        resp = client.post(path, params=query, content=body, headers={"Content-Type": "text/xml"})
        if resp.status_code == 200:
            return
        if resp.status_code in (429, 503):
            time.sleep(float(resp.headers.get("Retry-After", 1)) * (1 + attempt / 10))
            continue
        raise InvalidInput(f"推送失败 / WeChat push refused: {resp.status_code} {resp.text[:300]}")
    raise StorageUnavailable("服务持续繁忙 / the server stayed busy")


def _post_batch(
    client: httpx.Client, write_key: str, messages: list[dict[str, Any]], stats: SendStats
) -> None:
    body = orjson.dumps({"batch": messages})
    for attempt in range(30):
        resp = client.post(
            "/v1/batch", content=body, auth=(write_key, ""), headers={"Content-Type": "application/json"}
        )
        if resp.status_code == 200:
            result = resp.json()
            with stats.lock:
                stats.requests += 1
                stats.accepted += result["accepted"]
                stats.quarantined += len(result["quarantined"])
            return
        if resp.status_code in (429, 503):
            with stats.lock:
                stats.retries += 1
            time.sleep(float(resp.headers.get("Retry-After", 1)) * (1 + attempt / 10))
            continue
        raise InvalidInput(f"发送失败 / batch refused: {resp.status_code} {resp.text[:300]}")
    raise StorageUnavailable("服务持续繁忙 / the server stayed busy")


def _wait_for_pipeline(api: httpx.Client, quiet: bool) -> dict[str, Any]:
    """Until every event is in the warehouse and stitched (so profiles are current)."""
    with console.status("处理中 / processing…", spinner="dots") if not quiet else _nothing():
        while True:
            status: dict[str, Any] = api.get("/api/v1/pipeline/status").json()
            if status["queued"] == 0 and status.get("identity_pending_batches", 0) == 0:
                return status
            time.sleep(0.5)


def _create_segments(api: httpx.Client, quiet: bool) -> list[dict[str, Any]]:
    """Declare what counts as a touch, save the seed scenarios as segments and fill them."""
    with console.status("分群 / building segments…", spinner="dots") if not quiet else _nothing():
        api.put(
            "/api/v1/segments/event-groups/touch",
            json={"events": TOUCH_EVENTS, "description": "触达: 优惠券与公众号文章 / coupons and articles"},
        ).raise_for_status()
        out = []
        for spec in DEMO_SEGMENTS:
            created = api.post("/api/v1/segments", json=spec)
            created.raise_for_status()
            segment = created.json()
            refreshed = api.post(f"/api/v1/segments/{segment['id']}/refresh")
            refreshed.raise_for_status()
            out.append({"segment_id": segment["id"], "name": spec["name"],
                        "members": refreshed.json()["members"]})  # fmt: skip
        return out


def _refresh_segments(api: httpx.Client, created: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for segment in created:
        refreshed = api.post(f"/api/v1/segments/{segment['segment_id']}/refresh")
        refreshed.raise_for_status()
        out.append({**segment, "members": refreshed.json()["members"]})
    return out


@contextmanager
def _local_api(settings: Settings, token: str) -> Iterator[tuple[httpx.Client, Platform]]:
    """The server again, in this process (holding the data directory like `quanyu serve`), with
    no background workers: the demo drains the pipeline and runs the journeys itself, and moves
    the journeys' clock (`platform.journeys.clock`)."""
    import uvicorn

    from quanyu.api.app import create_app
    from quanyu.server import ServerLock

    local = settings.model_copy(
        update={"pipeline_enabled": False, "journeys_enabled": False, "segment_refresh_seconds": 0}
    )
    url = f"http://127.0.0.1:{local.port}"
    lock = ServerLock(local.data_dir)
    if not lock.acquire(url):
        raise Conflict(f"已有服务占用该数据目录 / a server already holds {local.data_dir}")
    platform = Platform(local)
    config = uvicorn.Config(create_app(local, platform), host="127.0.0.1", port=local.port,
                            log_level="warning", access_log=False)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="quanyu-demo-api", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise StorageUnavailable("服务启动失败 / the in-process server did not start")
            time.sleep(0.05)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600) as client:
            yield client, platform
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        lock.release()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _report(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(summary)
        return
    table(
        f"{summary['brand']} · 演示汇总 / demo summary",
        ["项 / item", "值 / value"],
        [
            ["人数 / people", f"{summary['people']:,}"],
            ["来源 / sources", summary["sources"]],
            ["生成事件 / events generated", f"{summary['events_generated']:,}"],
            ["已接收 / accepted", f"{summary['accepted']:,}"],
            ["已隔离 / quarantined", f"{summary['quarantined']:,}"],
            ["已入仓 / processed", f"{summary['processed']:,}"],
            ["重复 / duplicates", f"{summary['duplicates']:,}"],
            ["采集速率 / ingest events/s", f"{summary['ingest_events_per_second']:,}"],
            ["生成耗时 / generate s", summary["seconds"]["generate"]],
            ["发送耗时 / send s", summary["seconds"]["send"]],
            ["发送+入仓 / send + process s", summary["seconds"]["send_and_process"]],
            ["旅程回放 / journeys s", summary["seconds"]["journeys"]],
        ],
    )
    if summary.get("segments"):
        table(
            "分群 / segments (docs/segments.md)",
            ["segment_id", "分群 / segment", "人数 / members"],
            [[s["segment_id"], s["name"], f"{s['members']:,}"] for s in summary["segments"]],
        )
    _report_connectors(summary["connectors"])
    table(
        "渠道 / channels",
        ["channel", "公域/私域", "线上/线下", "events", "visitors", "orders", "revenue ¥"],
        [[c["channel"], c["domain"], c["presence"], f"{c['events']:,}", f"{c['visitors']:,}", f"{c['orders']:,}",
          f"{c['revenue']:,.2f}"] for c in summary["channels"]],
    )  # fmt: skip
    journeys.report(summary["journeys"])


def _report_connectors(block: dict[str, Any]) -> None:
    """Files imported per source (the year's and the replayed days'), pushes and lookups."""
    grouped: dict[tuple[str, str], list[int]] = {}
    for item in block["files"]:
        counts = grouped.setdefault(
            (item["route"], item.get("source") or item.get("channel") or ""), [0, 0, 0]
        )
        counts[0] += 1
        counts[1] += item["rows"]
        counts[2] += item["new"] if "new" in item else item["inserted"] + item["updated"]
    rows = [[route, name, n, f"{lines:,}", f"{new:,}"] for (route, name), (n, lines, new) in grouped.items()]
    rows.append(["connect/wechat", "wechat_oa", "-", f"{block['wechat_pushes']:,} pushes",
                 f"{block['wechat_pushes']:,} (+{block['unionid_lookups']:,} unionid)"])  # fmt: skip
    table(
        f"连接器 / connectors (文件 / files: {block['exports_dir']})",
        ["接口 / route", "来源 / source", "文件 / files", "行 / rows", "新增 / new"],
        rows,
    )
