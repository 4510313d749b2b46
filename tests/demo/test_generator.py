"""The demo brand generator: deterministic, Segment-valid, omnichannel, with a clean ground truth."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from quanyu.demo.generator import (
    JUNK_IDENTIFIERS,
    SOURCE_TYPES,
    STORES,
    DemoBrand,
    generate_brand,
)

SHANGHAI = timezone(timedelta(hours=8))
END = datetime(2026, 3, 1, tzinfo=SHANGHAI)
START = datetime(2025, 3, 1, tzinfo=SHANGHAI)
MESSAGE_TYPES = {"identify", "track", "page", "screen", "group", "alias"}
MASKED_PHONE = re.compile(r"1\d{2}\*{4}\d{4}")


@pytest.fixture(scope="module")
def brand() -> DemoBrand:
    return generate_brand(1500, seed=11, end=END)


def _messages(brand: DemoBrand):
    for key, messages in brand.events.items():
        for message in messages:
            yield key, message


def _orders(brand: DemoBrand, source: str | None = None) -> list[dict]:
    return [m for key, m in _messages(brand) if m.get("event") == "Order Completed" and source in (None, key)]


def test_same_seed_gives_identical_output_and_another_seed_does_not() -> None:
    first = generate_brand(150, seed=3, end=END)
    again = generate_brand(150, seed=3, end=END)
    other = generate_brand(150, seed=4, end=END)

    assert first.events == again.events
    assert first.ground_truth == again.ground_truth
    assert first.events != other.events


def test_every_message_follows_the_segment_spec(brand: DemoBrand) -> None:
    for _, message in _messages(brand):
        assert message["type"] in MESSAGE_TYPES
        assert isinstance(message["context"], dict)
        assert message["context"]["locale"] == "zh-CN"
        ids = [message.get("userId"), message.get("anonymousId")]
        assert any(isinstance(value, str) and value for value in ids), message
        kind = message["type"]
        if kind == "track":
            assert isinstance(message["event"], str) and message["event"]
            assert isinstance(message["properties"], dict)
        elif kind in ("page", "screen"):
            assert message["name"] and isinstance(message["properties"], dict)
        elif kind == "identify":
            assert isinstance(message["traits"], dict) and message["traits"]
        elif kind == "alias":
            assert message["userId"] and message["previousId"]
        else:
            assert message["groupId"]


def test_message_ids_are_unique_across_the_whole_brand(brand: DemoBrand) -> None:
    ids = [message["messageId"] for _, message in _messages(brand)]

    assert len(ids) == len(set(ids)) == brand.event_count()


def test_timestamps_are_shanghai_iso_inside_the_window_and_sorted(brand: DemoBrand) -> None:
    for messages in brand.events.values():
        stamps = [m["timestamp"] for m in messages]
        assert stamps == sorted(stamps)
        for stamp in stamps:
            moment = datetime.fromisoformat(stamp)
            assert stamp.endswith("+08:00")
            assert START <= moment < END


def test_people_act_mostly_in_waking_hours(brand: DemoBrand) -> None:
    hours = [int(m["timestamp"][11:13]) for _, m in _messages(brand)]
    awake = sum(7 <= hour <= 23 for hour in hours)

    assert awake / len(hours) > 0.9


def test_every_source_type_appears(brand: DemoBrand) -> None:
    assert {source.type for source in brand.sources} == set(SOURCE_TYPES)
    assert [s.key for s in brand.sources] == list(brand.events)
    assert all(brand.events[source.key] for source in brand.sources)


def test_orders_follow_the_ecommerce_spec(brand: DemoBrand) -> None:
    orders = _orders(brand)

    assert len(orders) > 1000
    for order in orders:
        props = order["properties"]
        assert props["currency"] == "CNY"
        assert props["total"] == pytest.approx(props["revenue"] + props["shipping"])
        assert props["products"]
        for line in props["products"]:
            assert set(line) >= {"product_id", "sku", "name", "category", "price", "quantity"}
            assert line["category"] in ("茶叶", "茶具", "零食")
    order_ids = [order["properties"]["order_id"] for order in orders]
    assert len(order_ids) == len(set(order_ids))


@pytest.mark.parametrize(
    ("source", "pattern"),
    [
        ("tmall_flagship", r"\d{19}"),
        ("jd_flagship", r"\d{12}"),
        ("youzan_shop", r"E20\d{20}"),
        ("pos", r"POS-[A-Z]{2,3}\d{3}-20\d{6}-\d{4}"),
    ],
)
def test_order_ids_look_like_the_platform_they_come_from(brand: DemoBrand, source: str, pattern: str) -> None:
    orders = _orders(brand, source)

    assert orders
    assert all(re.fullmatch(pattern, o["properties"]["order_id"]) for o in orders)


def test_refunds_and_coupons_refer_to_real_orders(brand: DemoBrand) -> None:
    placed = {
        (key, m["properties"]["order_id"])
        for key, m in _messages(brand)
        if m.get("event") == "Order Completed"
    }
    refunds = [(key, m) for key, m in _messages(brand) if m.get("event") == "Order Refunded"]
    applied = [m for _, m in _messages(brand) if m.get("event") == "Coupon Applied"]

    assert 0.01 < len(refunds) / len(placed) < 0.08
    assert all((key, m["properties"]["order_id"]) in placed for key, m in refunds)
    assert all(m["properties"]["reason"] for _, m in refunds)
    assert applied and all(m["properties"]["coupon_id"] for m in applied)


def test_some_people_buy_again_over_the_months(brand: DemoBrand) -> None:
    buyers: defaultdict[str, int] = defaultdict(int)
    for _, order in _messages(brand):
        if order.get("event") == "Order Completed":
            buyers[order.get("anonymousId") or order["userId"]] += 1

    assert sum(count >= 3 for count in buyers.values()) > 30


def test_many_people_leave_identifiers_on_three_or_more_sources(brand: DemoBrand) -> None:
    sources: defaultdict[str, set[str]] = defaultdict(set)
    for person_id, source, _, _ in brand.ground_truth:
        sources[person_id].add(source)

    assert len(sources) == brand.people
    share = sum(len(keys) >= 3 for keys in sources.values()) / brand.people
    assert 0.3 < share < 0.95


def test_marketplace_orders_carry_masked_phones_and_names(brand: DemoBrand) -> None:
    for source in ("tmall_flagship", "jd_flagship", "douyin"):
        traits = [o["context"]["traits"] for o in _orders(brand, source)]
        assert traits and all(MASKED_PHONE.fullmatch(t["phone"]) for t in traits)
        assert all(t["name"].endswith("**") for t in traits)


def test_ad_clicks_lead_to_utm_tagged_visits(brand: DemoBrand) -> None:
    clicks = brand.events["ads"]
    landings = [
        m
        for m in brand.events["website"] + brand.events["h5"]
        if "utm_source=" in m["context"].get("page", {}).get("url", "")
    ]

    assert clicks and landings
    for click in clicks:
        campaign = click["context"]["campaign"]
        assert campaign["source"] in ("baidu", "tencent_ads", "douyin", "xiaohongshu")
        assert campaign["medium"] in ("cpc", "feed", "kol")
        assert {"bd_vid", "gdt_vid", "clickid"} & set(click["properties"])
    assert all(m["context"]["campaign"]["name"] for m in landings)
    assert all({"bd_vid", "gdt_vid", "clickid"} & set(m["properties"]) for m in landings)


def test_wechat_scenes_and_store_guides_are_recorded(brand: DemoBrand) -> None:
    follows = [m for m in brand.events["wechat_oa"] if m["event"] == "Official Account Followed"]
    store_ids = {store.store_id for store in STORES}
    guides = {guide for store in STORES for guide in store.guides}

    assert any(m["properties"]["scene"].startswith("store_") for m in follows)
    assert any(m["properties"]["scene"].startswith("package_card_") for m in follows)
    for order in _orders(brand, "pos"):
        assert order["properties"]["store_id"] in store_ids
        assert order["properties"]["guide_id"] in guides
    added = [m for m in brand.events["wecom"] if m.get("event") == "WeCom Contact Added"]
    assert added and all(m["properties"]["guide_id"] in guides for m in added)


def test_openids_name_the_app_they_are_scoped_to(brand: DemoBrand) -> None:
    for _, message in _messages(brand):
        for external in message["context"].get("externalIds", []):
            assert external["collection"] == "users" and external["encoding"] == "none"
            if external["type"] in ("wechat_openid", "mini_program_openid"):
                assert external["app_id"].startswith("wx")


def test_ground_truth_covers_every_identifier_used(brand: DemoBrand) -> None:
    truth = {(source, kind, value): person for person, source, kind, value in brand.ground_truth}
    for key, message in _messages(brand):
        used = [("user_id", message.get("userId")), ("anonymous_id", message.get("anonymousId"))]
        used += [(e["type"], e["id"]) for e in message["context"].get("externalIds", [])]
        for kind, value in used:
            if value is not None and value not in JUNK_IDENTIFIERS:
                assert (key, kind, value) in truth, (key, kind, value)


def test_ground_truth_never_lists_junk_values(brand: DemoBrand) -> None:
    assert not [row for row in brand.ground_truth if row[3] in JUNK_IDENTIFIERS]
    assert all(re.fullmatch(r"P\d{6}", row[0]) for row in brand.ground_truth)


def test_person_ids_never_appear_in_any_message(brand: DemoBrand) -> None:
    person_ids = {row[0] for row in brand.ground_truth}
    text = json.dumps(brand.events, ensure_ascii=False)

    assert not person_ids & set(re.findall(r"P\d{6}", text))


def test_one_person_is_linkable_across_wechat_channels(brand: DemoBrand) -> None:
    unionid_sources: defaultdict[str, set[str]] = defaultdict(set)
    for _, source, kind, value in brand.ground_truth:
        if kind == "wechat_unionid":
            unionid_sources[value].add(source)

    assert any({"wechat_oa", "mini_program", "wecom"} <= keys for keys in unionid_sources.values())


def test_data_quality_noise_is_present(brand: DemoBrand) -> None:
    anonymous = {m.get("anonymousId") for _, m in _messages(brand)}
    phones = [
        e["id"]
        for _, m in _messages(brand)
        for e in m["context"].get("externalIds", [])
        if e["type"] == "phone"
    ]
    emails = [m["traits"].get("email", "") for m in brand.events["crm"]]

    assert anonymous & JUNK_IDENTIFIERS
    assert any(p.startswith("+86") for p in phones) and any("-" in p for p in phones)
    assert any(e != e.lower() for e in emails)
    assert sum(bool(re.fullmatch(r"1[3-9]\d{9}", p)) for p in phones) / len(phones) > 0.8


def test_iter_batches_hands_out_every_message_once(brand: DemoBrand) -> None:
    seen: list[str] = []
    for key, batch in brand.iter_batches(size=300):
        assert key in brand.events
        assert 0 < len(batch) <= 300
        seen += [m["messageId"] for m in batch]

    assert len(seen) == len(set(seen)) == brand.event_count()


def test_shorter_windows_and_naive_end_times_are_supported() -> None:
    small = generate_brand(100, seed=1, end=datetime(2026, 3, 1, 12, 0), months=3)
    stamps = sorted(m["timestamp"] for _, m in _messages(small))

    assert stamps[0] >= "2025-12-01T12:00:00+08:00"
    assert stamps[-1] < "2026-03-01T12:00:00+08:00"


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        generate_brand(-1)
    with pytest.raises(ValueError):
        generate_brand(10, months=0)


def test_a_thousand_people_generate_quickly() -> None:
    started = time.perf_counter()
    small = generate_brand(1000, seed=5, end=END)

    assert time.perf_counter() - started < 2.0
    assert 15 < small.event_count() / 1000 < 45
