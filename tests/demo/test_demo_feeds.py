"""The demo's connector feeds (demo/feeds.py): the generated marketplace orders, POS receipts,
official-account events and ad clicks in the platforms' own formats, carrying the identifiers the
ground truth records, and nothing lost on the way."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from quanyu.connectors import wechat_oa
from quanyu.connectors.imports import catalog
from quanyu.connectors.imports.importer import message_id, run_import
from quanyu.demo import feeds as demo_feeds
from quanyu.demo import journeys
from quanyu.demo.generator import DemoBrand, generate_brand
from quanyu.demo.generator.identifiers import OA_APP_ID
from quanyu.demo.generator.marketplaces import BUYER_ID_KIND
from quanyu.platform import Platform
from testkit import new_tenant

SHANGHAI = timezone(timedelta(hours=8))
END = datetime(2026, 11, 30, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def brand() -> DemoBrand:
    return generate_brand(800, seed=5, end=END)


def _windows(brand: DemoBrand) -> tuple[demo_feeds.DemoFeeds, list[tuple[DemoBrand, demo_feeds.Feed]]]:
    boundaries = journeys.live_boundaries(END)
    stamps = [b.astimezone(SHANGHAI).isoformat() for b in boundaries]
    past, days = journeys.split_brand(brand, boundaries)
    feeds = demo_feeds.DemoFeeds(brand)
    out = [(past, feeds.feed(past, stamps[0], "year"))]
    out += [(day, feeds.feed(day, stamps[i + 1], f"day{i + 1}")) for i, day in enumerate(days)]
    return feeds, out


def _source(platform: Platform, type_: str) -> Any:
    t = new_tenant(platform, type_)
    return platform.sources.get(t.workspace_id, t.source_id)


def test_every_message_goes_somewhere_and_only_unionid_lookups_are_added(brand: DemoBrand) -> None:
    _, windows = _windows(brand)
    batch = sum(feed.batch.event_count() for _, feed in windows)
    converted = sum(feed.converted for _, feed in windows)
    lookups = sum(feed.lookups for _, feed in windows)
    assert batch + converted == brand.event_count() + lookups
    assert converted > 0 and lookups > 0
    for _, feed in windows:
        for key, messages in feed.batch.events.items():
            if key in (*demo_feeds.MARKETPLACES, demo_feeds.POS):
                assert not [m for m in messages if m.get("event") in demo_feeds.ORDER_EVENTS]
            if key == demo_feeds.WECHAT_OA:
                assert not [m for m in messages if m.get("event") in demo_feeds.OA_PUSHED]
    # One unionid lookup per follower, the first time WeChat pushes about them.
    pushed = {m["anonymousId"] for m in brand.events["wechat_oa"] if m.get("event") in demo_feeds.OA_PUSHED}
    assert lookups == len(pushed)


def test_the_year_exports_import_as_the_generated_orders_and_refunds(
    platform: Platform, brand: DemoBrand
) -> None:
    _, windows = _windows(brand)
    past, feed = windows[0]
    files = {e.source_key: e for e in feed.exports if e.route in ("orders", "pos")}
    assert set(files) == {*demo_feeds.MARKETPLACES, demo_feeds.POS}
    tmall = files["tmall_flagship"].data
    lines = tmall.decode("gbk").split("\r\n")  # 千牛: GBK, CRLF, order numbers as ="…"
    assert lines[0] == ",".join(demo_feeds.TMALL_HEADER) and lines[1].startswith('="')
    for key, export in files.items():
        source = _source(platform, "pos" if key == "pos" else demo_feeds.MARKETPLACES[key])
        fmt = catalog.find(export.route, export.param)
        report = run_import(platform, source, fmt, export.data, timezone="Asia/Shanghai", dry_run=True)
        generated = Counter(m["event"] for m in past.events[key] if m.get("event") in demo_feeds.ORDER_EVENTS)
        assert dict(report.events) == dict(generated), key
        assert report.bad_rows == 0 and report.new == sum(generated.values())


def test_an_order_refunded_later_is_exported_again_and_adds_only_the_refund(
    platform: Platform, brand: DemoBrand
) -> None:
    feeds = demo_feeds.DemoFeeds(brand)
    order = next(o for o in feeds.orders["tmall_flagship"].values() if o.refund is not None)
    refund = order.refund
    assert refund is not None
    source = _source(platform, "tmall")
    fmt = catalog.find("orders", "tmall")
    placed = feeds.feed(DemoBrand(brand.sources, {"tmall_flagship": [order.completed]}, [], 1),
                        str(order.completed["timestamp"])[:10] + "T23:59:59+08:00", "placed")  # fmt: skip
    later = feeds.feed(
        DemoBrand(brand.sources, {"tmall_flagship": [refund]}, [], 1), END.isoformat(), "refunded"
    )
    first = run_import(platform, source, fmt, placed.exports[0].data, timezone="Asia/Shanghai")
    platform.pipeline.drain()
    second = run_import(platform, source, fmt, later.exports[0].data, timezone="Asia/Shanghai")
    platform.pipeline.drain()
    assert dict(first.events) == {"Order Completed": 1} and first.new == 1
    assert dict(second.events) == {"Order Completed": 1, "Order Refunded": 1}
    assert second.new == 1 and second.already_stored == 1
    events = platform.warehouse.table("events")
    stored = platform.warehouse.execute(
        events.filter(events.source_id == source.id).select(
            "message_id", "event", "anonymous_id", "timestamp"
        )
    ).to_pylist()
    order_id = order.completed["properties"]["order_id"]
    ids = {r["event"]: r["message_id"] for r in stored}
    assert ids == {"Order Completed": message_id(source, f"tmall:{order_id}:completed"),
                   "Order Refunded": message_id(source, f"tmall:{order_id}:refunded")}  # fmt: skip
    # The buyer and the moments are the generator's.
    assert {r["anonymous_id"] for r in stored} == {order.completed["anonymousId"]}
    times = {r["event"]: r["timestamp"] for r in stored}
    assert times["Order Refunded"] == datetime.fromisoformat(str(refund["timestamp"]))


def test_marketplace_exports_carry_the_buyer_ids_and_receiver_phones_of_the_ground_truth(
    platform: Platform, brand: DemoBrand
) -> None:
    _, windows = _windows(brand)
    truth = {(s, k, v) for _, s, k, v in brand.ground_truth}
    for export in windows[0][1].exports:
        if export.route != "orders":
            continue
        source = _source(platform, export.param or "")
        run_import(
            platform, source, catalog.find("orders", export.param), export.data, timezone="Asia/Shanghai"
        )
        platform.pipeline.drain()
        events = platform.warehouse.table("events")
        rows = platform.warehouse.execute(
            events.filter(events.source_id == source.id).select("anonymous_id", "context")
        ).to_pylist()
        assert rows
        key = export.source_key
        for row in rows:
            assert (key, BUYER_ID_KIND[key], row["anonymous_id"]) in truth
            context = row["context"] if isinstance(row["context"], dict) else json.loads(row["context"])
            phone = (context.get("traits") or {}).get("phone")
            if phone:
                assert (key, "phone_masked" if "*" in phone else "phone", phone) in truth


def test_wechat_pushes_normalise_to_the_generated_events_and_identifiers(brand: DemoBrand) -> None:
    pushed = [m for m in brand.events["wechat_oa"] if m.get("event") in demo_feeds.OA_PUSHED]
    assert {m["event"] for m in pushed} >= {"Official Account Followed", "QR Scanned", "Menu Clicked"}
    for generated in pushed:
        body = demo_feeds.wechat_push(generated)
        message = wechat_oa.normalise(wechat_oa.parse_xml(body), OA_APP_ID)
        assert message["event"] == generated["event"]
        assert message["anonymousId"] == generated["anonymousId"]
        openid = next(e for e in generated["context"]["externalIds"] if e["type"] == "wechat_openid")
        assert message["context"]["externalIds"] == [openid]
        assert datetime.fromisoformat(message["timestamp"]) == datetime.fromisoformat(generated["timestamp"])
        scene = generated["properties"].get("scene", "")
        if generated["event"] == "QR Scanned" or (scene and not scene.startswith("ADD_SCENE_")):
            assert message["properties"]["scene"] == scene


def test_till_guests_are_known_by_the_importers_receipt_id_in_the_ground_truth(brand: DemoBrand) -> None:
    feeds, _ = _windows(brand)
    guests = {m["anonymousId"] for m in brand.events["pos"] if str(m.get("anonymousId")).startswith("guest-")}
    assert guests
    truth = feeds.truth(brand.ground_truth, set())
    values = {v for _, s, k, v in truth if s == "pos" and k == "anonymous_id"}
    assert not values & guests
    assert len([v for v in values if v.startswith("pos-")]) >= len(guests)


def test_ad_costs_count_the_clicks_per_channel_campaign_and_day(brand: DemoBrand) -> None:
    _, windows = _windows(brand)
    costs = [e for _, feed in windows for e in feed.exports if e.route == "ad-costs"]
    # A later report of a day replaces its rows (the import upserts): the last one counts.
    last: dict[tuple[str | None, str, str], int] = {}
    for export in costs:
        for row in export.data.decode().splitlines()[1:]:
            day, campaign, _, clicks, _ = row.split(",")
            last[(export.param, day, campaign)] = int(clicks)
    assert sum(last.values()) == sum(1 for m in brand.events["ads"] if m.get("event") == "Ad Clicked")
    assert {e.param for e in costs} <= {"baidu", "tencent", "ocean_engine", "xiaohongshu"}
