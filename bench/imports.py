"""Import benchmark: a marketplace order export of N rows, read, checked and queued.

Generates a Tmall 订单报表 (one row per order, GBK like 千牛 writes it) and a Douyin export (one
row per sub-order, UTF-8) of `--rows` rows each, then times `quanyu import orders` end to end
through `run_import`: decoding, every cell checked, orders grouped, messages built and
validated, the stored-id check, and the durable write to the ingestion queue in one
transaction. The baseline, measured in the same run, is Python's own `csv` module reading the
same file into lists (decode + parse, nothing else): the ratio says what checking and building
messages cost on top of merely reading the file. Processing the queued events into the
warehouse is `bench/process.py`'s figure and is reported here once for the first run.

    .venv/bin/python bench/imports.py [--rows 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from dataset import median, write_result
from quanyu.connectors.imports import catalog
from quanyu.connectors.imports.importer import run_import
from quanyu.platform import Platform
from quanyu.settings import Settings

_TMALL_HEADER = ("订单编号,买家会员名,买家ID,买家应付货款,买家应付邮费,总金额,买家实际支付金额,订单状态,买家留言,收货人姓名,"
                 "收货地址,运送方式,联系手机,订单创建时间,订单付款时间,宝贝标题,宝贝种类,物流单号,宝贝总数量,店铺Id,店铺名称,"
                 "订单关闭原因,退款金额,确认收货时间")  # fmt: skip
_DOUYIN_HEADER = ("主订单编号,子订单编号,选购商品,商品规格,商品数量,商品ID,商家编码,商品单价,订单应付金额,运费,优惠总金额,收件人,"
                  "收件人手机号,省,市,区,订单提交时间,支付完成时间,订单完成时间,订单状态,售后状态,取消原因,达人ID,直播间ID,"
                  "流量来源,用户ID")  # fmt: skip
_TITLES = (
    "山茶记 明前龙井 礼盒装 250g",
    "山茶记 白毫银针 100g",
    "山茶记 茉莉花茶 罐装",
    "山茶记 大红袍 礼盒",
    "山茶记 普洱 熟茶饼",
)
_TMALL_STATUS = ("交易成功",) * 14 + (
    "卖家已发货，等待买家确认",
    "买家已付款，等待卖家发货",
    "交易关闭",
    "等待买家付款",
)
_DOUYIN_STATUS = ("已完成",) * 14 + ("已发货", "备货中", "已关闭", "待支付")
_CITIES = (
    "浙江省 杭州市 西湖区",
    "上海 上海市 浦东新区",
    "广东省 深圳市 南山区",
    "北京 北京市 朝阳区",
    "四川省 成都市 武侯区",
)


def tmall_file(rows: int, seed: int = 5) -> bytes:
    rnd = random.Random(seed)
    start = datetime(2026, 1, 1)
    out = [_TMALL_HEADER]
    for i in range(rows):
        created = start + timedelta(seconds=rnd.randrange(300 * 86400))
        paid = created + timedelta(seconds=rnd.randrange(5, 600))
        status = rnd.choice(_TMALL_STATUS)
        price = rnd.choice((58.0, 88.0, 128.0, 199.0, 268.0, 356.0))
        refund = price if status == "交易关闭" else 0.0
        out.append(
            f'="{3_000_000_000_000_000_000 + i}",t**{i % 10},AA{i:022d},{price:.2f},0.00,{price:.2f},{price:.2f},'
            f"{status},,张**,{rnd.choice(_CITIES)} 文三路***号,快递,1{rnd.randint(30, 99)}****{rnd.randint(0, 9999):04d},"
            f"{created:%Y-%m-%d %H:%M:%S},{'' if status == '等待买家付款' else f'{paid:%Y-%m-%d %H:%M:%S}'},"
            f"{rnd.choice(_TITLES)},1,SF{i:010d},{rnd.randint(1, 3)},57301234,山茶记旗舰店,,{refund:.2f},"
        )
    return "\r\n".join(out).encode("gbk") + b"\r\n"


def douyin_file(rows: int, seed: int = 6) -> bytes:
    rnd = random.Random(seed)
    start = datetime(2026, 1, 1)
    out = [_DOUYIN_HEADER]
    i = 0
    while i < rows:
        lines = min(rnd.choice((1, 1, 1, 2, 3)), rows - i)
        order = 6_900_000_000_000_000_000 + i
        created = start + timedelta(seconds=rnd.randrange(300 * 86400))
        status = rnd.choice(_DOUYIN_STATUS)
        paid = "" if status == "待支付" else f"{created + timedelta(seconds=30):%Y-%m-%d %H:%M:%S}"
        buyer = f"dy_{rnd.randrange(10**12):012d}"
        for n in range(lines):
            price = rnd.choice((29.9, 59.0, 99.0, 199.0))
            after = "退款成功" if rnd.random() < 0.03 else ""
            out.append(
                f"{order},{order + n + 1},{rnd.choice(_TITLES)},默认,1,{3601234567890 + n},SKU{n},{price:.2f},"
                f"{price:.2f},0.00,0.00,李**,1{rnd.randint(30, 99)}****{rnd.randint(0, 9999):04d},浙江省,杭州市,西湖区,"
                f"{created:%Y-%m-%d %H:%M:%S},{paid},,{status},{after},,,7312345678901234567,直播,{buyer}"
            )
        i += lines
    return ("\n".join(out) + "\n").encode("utf-8")


def baseline(data: bytes, encoding: str) -> float:
    started = time.perf_counter()
    rows = list(csv.reader(io.StringIO(data.decode(encoding), newline="")))
    assert rows
    return time.perf_counter() - started


def one_run(name: str, data: bytes, process: bool) -> dict[str, float | int]:
    root = Path(tempfile.mkdtemp(prefix="quanyu-bench-imports-"))
    try:
        platform = Platform(Settings(data_dir=root, pipeline_enabled=False))
        ws = platform.workspaces.create("bench")
        source = platform.sources.create(ws.id, name, name).source
        started = time.perf_counter()
        report = run_import(platform, source, catalog.find("orders", name), data)
        elapsed = time.perf_counter() - started
        result: dict[str, float | int] = {"seconds": elapsed, "rows": report.rows, "events": report.new}
        if process:
            platform.pipeline.config.resolve_identities = False
            started = time.perf_counter()
            drained = platform.pipeline.drain()
            result["process_seconds"] = time.perf_counter() - started
            assert drained.inserted == report.new, drained
        again = time.perf_counter()
        repeat = run_import(platform, source, catalog.find("orders", name), data, dry_run=True)
        result["reimport_seconds"] = time.perf_counter() - again
        if process:
            assert repeat.new == 0, repeat.public()
        platform.close()
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, object] = {"rows": args.rows, "runs": args.runs}
    for name, make, encoding in (("tmall", tmall_file, "gbk"), ("douyin", douyin_file, "utf-8")):
        data = make(args.rows)
        runs = [one_run(name, data, process=(i == 0)) for i in range(args.runs)]
        bases = [baseline(data, encoding) for _ in range(args.runs)]
        seconds = [float(r["seconds"]) for r in runs]
        figures[name] = {
            "file_mb": round(len(data) / 1e6, 1),
            "events": runs[0]["events"],
            "runs_seconds": [round(s, 2) for s in seconds],
            "median_seconds": round(median(seconds), 2),
            "rows_per_second": round(args.rows / median(seconds)),
            "baseline_csv_read_median_seconds": round(median(bases), 2),
            "ratio_to_csv_read": round(median(seconds) / median(bases), 1),
            "process_seconds_first_run": round(float(runs[0]["process_seconds"]), 2),
            "reimport_check_median_seconds": round(median([float(r["reimport_seconds"]) for r in runs]), 2),
        }
    write_result("imports", figures)


if __name__ == "__main__":
    main()
