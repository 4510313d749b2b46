"""Segments at scale: compiled definitions against hand-written DuckDB SQL, and previews.

Generates a workspace of PEOPLE profiles and EVENTS person events (default 1,000,000 and
50,000,000) straight into a warehouse file, in time order as ingestion writes them: page and
product views, carts, orders on Tmall/JD/mini program/POS with amounts, message and coupon
touches, official-account follows with a store scene, store visits. Then, for each benchmark
segment (the seed scenarios among them):

- compiled: the definition through `compile_segment` (Ibis → SQL, executed), building included;
- hand-written: the SQL an analyst would write for the same segment on the same tables;

both return the members' profile ids; they must agree. Each pair runs back to back RUNS times;
the figure is the median of the per-run ratios (compiled / hand-written). Then previews
(`segments.preview.preview`: count, sample, breakdowns, SQL) of the same definitions.

    .venv/bin/python bench/segments.py [--people 1000000] [--events 50000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).parent))
from dataset import median, write_result
from quanyu.segments.compiler import compile_segment, segment_context
from quanyu.segments.definition import parse_definition
from quanyu.segments.event_groups import EventGroupSpec
from quanyu.segments.preview import preview
from quanyu.segments.saved import SavedSegments
from quanyu.store import make_engine, upgrade
from quanyu.store.models import Workspace
from quanyu.warehouse.duckdb import DuckDBWarehouse

WS = "ws_bench"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TOUCH = ["Message Delivered", "Coupon Sent"]

# Event mix: (name, share, channel choices, has amount, offline).
_EVENTS = """
    CASE
        WHEN r < 0.46 THEN 'Page Viewed'
        WHEN r < 0.60 THEN 'Product Viewed'
        WHEN r < 0.68 THEN 'Product Added'
        WHEN r < 0.73 THEN 'Order Completed'
        WHEN r < 0.81 THEN 'Message Delivered'
        WHEN r < 0.84 THEN 'Coupon Sent'
        WHEN r < 0.85 THEN 'Official Account Followed'
        WHEN r < 0.87 THEN 'Store Visited'
        ELSE 'App Opened'
    END
"""


def generate(warehouse: DuckDBWarehouse, people: int, events: int) -> float:
    started = time.perf_counter()
    cur = warehouse._cursor()
    # A signed, seeded hash (DuckDB's own is unsigned, which list indexing refuses). One
    # argument: hash(i, s) of two combines them so that some bits of different seeds correlate.
    cur.execute("CREATE OR REPLACE TEMP MACRO h(i, s) AS CAST(hash(i * 1000 + s) % 4294967296 AS BIGINT)")
    cities = "['上海', '杭州', '北京', '广州', '深圳', '成都', '南京', '苏州']"
    cur.execute(f"""
        INSERT INTO profiles (workspace_id, profile_id, traits, revenue, order_count, tags, reachable_channels,
                              preferred_channel, first_touch_channel, first_touch_source, in_private_domain,
                              in_public_domain, identifiers, updated_at)
        SELECT '{WS}', 'p' || i,
            json_object('city', {cities}[1 + h(i, 1) % 8], 'member_level',
                        ['silver', 'gold', 'platinum'][1 + h(i, 2) % 3]),
            (h(i, 3) % 500000) / 100.0, h(i, 4) % 12,
            CASE WHEN h(i, 5) % 20 = 0 THEN ['VIP'] ELSE [] END,
            CASE WHEN h(i, 6) % 10 < 6 THEN ['sms', 'wechat'] ELSE ['wechat'] END,
            ['tmall', 'jd', 'mini_program', 'pos', 'web'][1 + h(i, 7) % 5],
            ['tmall', 'jd', 'mini_program', 'pos', 'web'][1 + h(i, 8) % 5],
            ['douyin', 'xiaohongshu', 'baidu', 'wechat', 'store'][1 + h(i, 9) % 5],
            h(i, 10) % 2 = 0, h(i, 11) % 3 = 0,
            CASE WHEN h(i, 12) % 2 = 0
                 THEN [{{'type': 'phone', 'value': '138' || lpad(CAST(i AS VARCHAR), 8, '0'), 'scope': '',
                         'first_seen': TIMESTAMPTZ '2025-01-01 00:00:00+00', 'sources': ['web']}}]
                 ELSE [] END,
            TIMESTAMPTZ '2026-11-20 00:00:00+00'
        FROM range({people}) t(i)
    """)
    # Events in time order over the year before NOW, as the pipeline appends them.
    cur.execute(f"""
        INSERT INTO person_events
        SELECT '{WS}', 'p' || (h(i, 21) % {people}), 'user_id:u' || (h(i, 21) % {people}), 'm' || i,
            'track', ev, NULL, ts, 'src_' || channel, channel, channel,
            CASE WHEN channel IN ('tmall', 'jd', 'douyin') THEN 'public' ELSE 'private' END,
            CASE WHEN channel = 'pos' THEN 'offline' ELSE 'online' END,
            CASE WHEN ev IN ('Store Visited', 'Official Account Followed') AND h(i, 22) % 5 < 2
                 THEN 'store_' || (h(i, 23) % 300) END,
            NULL,
            CASE WHEN ev = 'Order Completed' THEN 'o' || i END,
            CASE WHEN ev = 'Order Completed' THEN 20 + (h(i, 24) % 150000) / 100.0 END,
            CASE WHEN ev = 'Order Completed' THEN 'CNY' END,
            NULL, NULL, NULL, NULL, NULL,
            CASE WHEN ev = 'Official Account Followed'
                 THEN json_object('scene', CASE WHEN h(i, 22) % 5 < 2 THEN 'store_' || (h(i, 23) % 300)
                                                ELSE 'campaign_' || (h(i, 25) % 20) END) END
        FROM (
            SELECT i,
                   TIMESTAMPTZ '2025-11-20 12:00:00+00' + to_microseconds(i * (31536000000000 // {events})) AS ts,
                   {_EVENTS} AS ev,
                   CASE
                       WHEN r < 0.73 AND r >= 0.68 THEN ['tmall', 'jd', 'mini_program', 'pos'][1 + h(i, 26) % 4]
                       WHEN r >= 0.85 AND r < 0.87 THEN 'pos'
                       WHEN r >= 0.73 AND r < 0.85 THEN 'wechat_oa'
                       ELSE ['web', 'mini_program', 'tmall', 'jd', 'app'][1 + h(i, 27) % 5]
                   END AS channel
            FROM (SELECT i, (h(i, 20) % 1000000) / 1000000.0 AS r FROM range({events}) t(i))
        )
    """)
    cur.execute("CHECKPOINT")
    return time.perf_counter() - started


def _ts(days: int) -> str:
    return f"TIMESTAMPTZ '{NOW.isoformat()}' - INTERVAL {days} DAY"


# (name, definition, hand-written SQL). The hand-written queries are what an analyst who knows
# the tables would write: filter the events, group when counting, IN / NOT IN on profile ids.
P = f"SELECT profile_id FROM profiles WHERE workspace_id = '{WS}'"
E = f"SELECT profile_id FROM person_events WHERE workspace_id = '{WS}'"
TOUCH_SQL = ", ".join(f"'{t}'" for t in TOUCH)
SEGMENTS: list[tuple[str, dict[str, Any], str]] = [
    (
        "win-back: not reached (touch events) in the last 30 days",
        {"conditions": [{"not": {"event_group": "touch", "window": {"last": 30, "unit": "day"}}}]},
        f"{P} AND profile_id NOT IN ({E} AND event IN ({TOUCH_SQL}) AND timestamp >= {_ts(30)})",
    ),
    (
        "win-back: no activity of any kind last calendar month",
        {"conditions": [{"not": {"type": "track", "window": {"calendar": "last_month"}}}]},
        f"{P} AND profile_id NOT IN ({E} AND type = 'track' AND timestamp >= TIMESTAMPTZ '2026-09-30 16:00:00+00' "
        "AND timestamp < TIMESTAMPTZ '2026-10-31 16:00:00+00')",
    ),
    (
        "bought twice in 90 days but no touch in 30",
        {
            "conditions": [
                {
                    "event": "Order Completed",
                    "window": {"last": 90, "unit": "day"},
                    "count": {"op": "gte", "value": 2},
                },
                {"not": {"event_group": "touch", "window": {"last": 30, "unit": "day"}}},
            ]
        },
        f"{P} AND profile_id IN ({E} AND event = 'Order Completed' AND timestamp >= {_ts(90)} "
        "GROUP BY profile_id HAVING count(*) >= 2) "
        f"AND profile_id NOT IN ({E} AND event IN ({TOUCH_SQL}) AND timestamp >= {_ts(30)})",
    ),
    (
        "followed the official account via a store QR code, never bought",
        {
            "conditions": [
                {
                    "event": "Official Account Followed",
                    "where": [{"property": "scene", "op": "starts_with", "value": "store_"}],
                },
                {"not": {"event": "Order Completed"}},
            ]
        },
        f"{P} AND profile_id IN ({E} AND event = 'Official Account Followed' "
        "AND starts_with(properties->>'scene', 'store_')) "
        f"AND profile_id NOT IN ({E} AND event = 'Order Completed')",
    ),
    (
        "high-value Tmall buyers who never visited a store",
        {
            "conditions": [
                {
                    "event": "Order Completed",
                    "channel": ["tmall"],
                    "sum": {"property": "amount", "op": "gte", "value": 3000},
                },
                {"not": {"event": "Store Visited"}},
            ]
        },
        f"{P} AND profile_id IN ({E} AND event = 'Order Completed' AND channel = 'tmall' "
        "GROUP BY profile_id HAVING sum(amount) >= 3000) "
        f"AND profile_id NOT IN ({E} AND event = 'Store Visited')",
    ),
    (
        "cart abandoned: added to cart in 30 days, no order within 3 days",
        {
            "conditions": [
                {
                    "sequence": {
                        "steps": [{"event": "Product Added"}, {"event": "Order Completed"}],
                        "within": {"value": 3, "unit": "day"},
                        "then": "did_not",
                        "window": {"last": 30, "unit": "day"},
                    }
                }
            ]
        },
        f"""{P} AND profile_id IN (
            SELECT a.profile_id FROM ({E} AND event = 'Product Added' AND timestamp >= {_ts(30)}
                                      AND timestamp <= {_ts(3)}) a
            WHERE NOT EXISTS (SELECT 1 FROM person_events b WHERE b.workspace_id = '{WS}'
                              AND b.event = 'Order Completed' AND b.profile_id = a.profile_id
                              AND b.timestamp > a.timestamp AND b.timestamp <= a.timestamp + INTERVAL 3 DAY))""".replace(
            f"{E} AND event = 'Product Added'",
            f"SELECT profile_id, timestamp FROM person_events WHERE workspace_id = '{WS}' AND event = 'Product Added'",
        ),
    ),
    (
        "Shanghai/Hangzhou gold members reachable by SMS",
        {
            "conditions": [
                {"trait": "city", "op": "in", "value": ["上海", "杭州"]},
                {"trait": "member_level", "op": "eq", "value": "gold"},
                {"reachable": "sms"},
            ]
        },
        f"{P} AND json_extract_string(traits, '$.city') IN ('上海', '杭州') "
        "AND json_extract_string(traits, '$.member_level') = 'gold' AND list_contains(reachable_channels, 'sms')",
    ),
    (
        "VIPs with a phone who spent 1000+ on any channel in 180 days",
        {
            "conditions": [
                {"tag": "VIP"},
                {"identifier": "phone", "op": "exists"},
                {
                    "event": "Order Completed",
                    "window": {"last": 180, "unit": "day"},
                    "sum": {"property": "amount", "op": "gte", "value": 1000},
                },
            ]
        },
        f"{P} AND list_contains(tags, 'VIP') AND len(list_filter(identifiers, x -> x.type = 'phone')) > 0 "
        f"AND profile_id IN ({E} AND event = 'Order Completed' AND timestamp >= {_ts(180)} "
        "GROUP BY profile_id HAVING sum(amount) >= 1000)",
    ),
    (
        "heavy browsers: 5+ page views in the last 30 days",
        {
            "conditions": [
                {
                    "event": "Page Viewed",
                    "window": {"last": 30, "unit": "day"},
                    "count": {"op": "gte", "value": 5},
                }
            ]
        },
        f"{P} AND profile_id IN ({E} AND event = 'Page Viewed' AND timestamp >= {_ts(30)} "
        "GROUP BY profile_id HAVING count(*) >= 5)",
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="keep (and reuse) the generated data here"
    )
    args = parser.parse_args()
    tmp = args.data_dir or Path(tempfile.mkdtemp(prefix="quanyu-seg-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "warehouse.duckdb"
    fresh = not path.exists()
    warehouse = DuckDBWarehouse(str(path))
    engine = make_engine(f"sqlite:///{tmp / 'store.db'}")
    upgrade(engine)
    store = SavedSegments(engine)
    try:
        if fresh:
            print(f"generating {args.people:,} profiles and {args.events:,} events …", flush=True)
            print(f"  {generate(warehouse, args.people, args.events):.0f} s")
        with engine.begin() as conn:
            if conn.execute(select(Workspace.id).where(Workspace.id == WS)).first() is None:
                conn.execute(
                    insert(Workspace).values(id=WS, name="bench", timezone="Asia/Shanghai", created_at=NOW)
                )
        store.event_groups.put(
            WS, "touch", EventGroupSpec(events=TOUCH, description="触达 / touches"), "bench"
        )
        ctx = segment_context(warehouse, WS, now=NOW, event_groups={"touch": TOUCH})
        cur = warehouse._cursor()
        results = []
        for name, data, sql in SEGMENTS:
            definition = parse_definition(data)
            compiled_runs, hand_runs, ratios = [], [], []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                ours = warehouse.execute(compile_segment(definition, ctx))
                t1 = time.perf_counter()
                theirs = cur.execute(sql).fetch_arrow_table()
                t2 = time.perf_counter()
                compiled_runs.append(t1 - t0)
                hand_runs.append(t2 - t1)
                ratios.append((t1 - t0) / (t2 - t1))
            same = sorted(ours.column(0).to_pylist()) == sorted(theirs.column(0).to_pylist())
            previews = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                answer = preview(warehouse, store, WS, data, now=NOW)
                previews.append(time.perf_counter() - t0)
            row = {
                "segment": name, "members": ours.num_rows, "same_members": same,
                "compiled_s": round(median(compiled_runs), 3), "hand_written_s": round(median(hand_runs), 3),
                "ratio_median": round(median(ratios), 2), "preview_s": round(median(previews), 3),
                "preview_count": answer["count"],
            }  # fmt: skip
            print(row, flush=True)
            results.append(row)
        write_result("segments", {
            "people": args.people, "events": args.events, "runs": args.runs, "segments": results,
            "worst_ratio": max(r["ratio_median"] for r in results),
            "preview_median_s": round(median([r["preview_s"] for r in results]), 3),
            "preview_worst_s": max(r["preview_s"] for r in results),
        })  # fmt: skip
    finally:
        warehouse.close()
        engine.dispose()
        if args.data_dir is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
