"""The compiler against a real DuckDB warehouse: each condition answers with the people a
marketer would expect, and every mistake is refused with the path of the bad node.

The town (`town`): evaluation at day 60 after T0 = 2026-04-30 00:00 UTC, 08:00 in Shanghai; the
workspace's March runs from day -1/3 to day 30 2/3, April from there to day 60 2/3.

| person | what they did |
|---|---|
| ann | 上海, gold, age 30, vip, birthday 05-03; Tmall orders day 10 (120) and day 50 (80); messaged day 58; phone; tag VIP |
| bob | 杭州, silver, age "45", not vip; JD order day 55 (300); mini-program /menu day 40; coupon day 20; email |
| cai | 北京; store visit day 5 and POS order day 6 (58) at SH01; an official account openid |
| dan | no traits; mini-program /coupons day 59.9 |
| eve | 上海市; cart day 30, Tmall order day 31 (88), cart day 58.5 |
| fay | a nickname with quotes; cart day 40; followed the official account day 41 (store QR, properties) |
| gus | Tmall orders day -20 (1000) and day 61 (10, a skewed clock) |
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from crowd import NOW, World

from profiles.profilekit import T0, Ledger
from quanyu.errors import InvalidInput
from quanyu.profiles import refresh
from quanyu.segments.compiler import (
    MAX_COMPILED,
    MAX_SEGMENT_DEPTH,
    compile_segment,
    members,
    segment_context,
)
from quanyu.segments.definition import parse_definition

EVERYONE = {"ann", "bob", "cai", "dan", "eve", "fay", "gus"}
BUYERS = {"ann", "bob", "cai", "eve", "gus"}


@pytest.fixture(scope="module")
def town() -> Iterator[World]:
    w = World.empty()
    w.event("ann", 1, "website", "Signed Up", traits={"city": "上海", "member_level": "gold", "age": 30,
            "vip": True, "birthday": "1990-05-03", "joined": "2026-04-20"})  # fmt: skip
    w.order("ann", 10, 120.0)
    w.order("ann", 50, 80.0)
    w.event("ann", 58, "wechat_oa", "Message Delivered")
    w.identify("ann", "phone", "+86 138-0000-1111")
    w.tag("ann", "VIP")
    w.event("bob", 2, "website", "Signed Up", traits={"city": "杭州", "member_level": "silver", "age": "45",
            "vip": False, "birthday": "1985-06-30"})  # fmt: skip
    w.order("bob", 55, 300.0, "jd")
    w.event("bob", 40, "mini_program", None, page="/menu")
    w.event("bob", 20, "wechat_oa", "Coupon Sent")
    w.identify("bob", "email", "Bob@Example.com")
    w.event("cai", 5, "pos", "Store Visited", store_id="SH01", traits={"city": "北京"})
    w.order("cai", 6, 58.0, "pos", store_id="SH01")
    w.identify("cai", "wechat_openid", "oWX_cai_0001", scope="wx_app1")
    w.event("dan", 59.9, "mini_program", None, page="/coupons")
    w.event("eve", 30, "tmall", "Product Added", traits={"city": "上海市"})
    w.order("eve", 31, 88.0)
    w.event("eve", 58.5, "tmall", "Product Added")
    w.event("fay", 40, "mini_program", "Product Added", traits={"nickname": "O'Brien \"; DROP"})
    w.event("fay", 41, "wechat_oa", "Official Account Followed",
            properties={"scene": "store_qr", "store_id": "SH02", "a.b": "dot", "count": 3, "flag": True,
                        "empty": None, "$.scene": "path"})  # fmt: skip
    w.order("gus", -20, 1000.0)
    w.order("gus", 61, 10.0)
    w.segments["seg_buyers"] = parse_definition({"conditions": [{"event": "Order Completed"}]})
    w.segments["seg_shanghai"] = parse_definition(
        {"conditions": [{"trait": "city", "op": "contains", "value": "上海"}]}
    )
    w.segments["seg_sh_buyers"] = parse_definition(
        {"conditions": [{"segment": "seg_buyers"}, {"segment": "seg_shanghai"}]}
    )
    w.segments["seg_a"] = parse_definition({"conditions": [{"tag": "VIP"}, {"segment": "seg_b"}]})
    w.segments["seg_b"] = parse_definition({"match": "any", "conditions": [{"segment": "seg_a"}]})
    w.segments["seg_self"] = parse_definition({"conditions": [{"not": {"segment": "seg_self"}}]})
    w.build()
    assert w.people() == EVERYONE
    yield w
    w.close()


def one(town: World, condition: dict[str, Any], **kw: Any) -> set[str]:
    return town.members({"conditions": [condition]}, **kw)


def refused(town: World, definition: dict[str, Any], **kw: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        town.members(definition, **kw)
    assert caught.value.code == "invalid_segment"
    return caught.value


def path_of_refusal(town: World, condition: dict[str, Any], **kw: Any) -> str:
    error = refused(town, {"conditions": [condition]}, **kw)
    assert len(error.details) == 1
    path: str = error.details[0]["path"]
    assert f"at {path}:" in error.message
    return path


# ---------------------------------------------------------------------------------------------
# Traits: text


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"trait": "city", "op": "eq", "value": "上海"}, {"ann"}),
        ({"trait": "city", "op": "neq", "value": "上海"}, EVERYONE - {"ann"}),  # no city is "not 上海"
        ({"trait": "city", "op": "in", "value": ["上海", "杭州"]}, {"ann", "bob"}),
        ({"trait": "city", "op": "not_in", "value": ["上海", "杭州"]}, EVERYONE - {"ann", "bob"}),
        ({"trait": "city", "op": "contains", "value": "上海"}, {"ann", "eve"}),
        ({"trait": "city", "op": "not_contains", "value": "上海"}, EVERYONE - {"ann", "eve"}),
        ({"trait": "city", "op": "starts_with", "value": "上"}, {"ann", "eve"}),
        ({"trait": "city", "op": "exists"}, {"ann", "bob", "cai", "eve"}),
        ({"trait": "city", "op": "not_exists"}, {"dan", "fay", "gus"}),
        ({"trait": "traits.city", "op": "eq", "value": "北京"}, {"cai"}),
        ({"trait": "member_level", "op": "gt", "value": "h"}, {"bob"}),  # text order: silver > h > gold
        ({"trait": "nickname", "op": "eq", "value": "O'Brien \"; DROP"}, {"fay"}),
        ({"trait": "nickname", "op": "contains", "value": "'"}, {"fay"}),
        ({"trait": "city", "op": "contains", "value": "%"}, set()),  # a LIKE wildcard is a character
        ({"trait": "city", "op": "starts_with", "value": "_"}, set()),
    ],
)
def test_text_traits(town: World, condition: dict[str, Any], expected: set[str]) -> None:
    assert one(town, condition) == expected


# Traits: numbers, booleans, dates


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"trait": "age", "op": "eq", "value": 30}, {"ann"}),
        ({"trait": "age", "op": "gt", "value": 40}, {"bob"}),  # "45" sent as text still compares as a number
        ({"trait": "age", "op": "gte", "value": 30}, {"ann", "bob"}),
        ({"trait": "age", "op": "lt", "value": 45}, {"ann"}),
        ({"trait": "age", "op": "lte", "value": 45}, {"ann", "bob"}),
        ({"trait": "age", "op": "neq", "value": 30}, EVERYONE - {"ann"}),
        ({"trait": "age", "op": "between", "value": [18, 30]}, {"ann"}),
        ({"trait": "age", "op": "between", "value": [30, 45]}, {"ann", "bob"}),  # inclusive
        ({"trait": "age", "op": "in", "value": [45, 46]}, {"bob"}),
        ({"trait": "age", "op": "eq", "value": "45"}, {"bob"}),  # text to text
        ({"trait": "city", "op": "gt", "value": 3}, set()),  # not a number: fails, never errors
        ({"trait": "vip", "op": "eq", "value": True}, {"ann"}),
        ({"trait": "vip", "op": "eq", "value": False}, {"bob"}),
        ({"trait": "vip", "op": "neq", "value": True}, EVERYONE - {"ann"}),
        ({"trait": "joined", "op": "within", "value": {"last": 30, "unit": "day"}}, {"ann"}),
        ({"trait": "joined", "op": "within", "value": {"calendar": "last_month"}}, set()),
        ({"trait": "joined", "op": "not_within", "value": {"last": 5}}, {"ann"}),  # only people with the date
        ({"trait": "joined", "op": "gt", "value": {"days_ago": 30}}, {"ann"}),
        ({"trait": "joined", "op": "lt", "value": {"days_ago": 30}}, set()),
        ({"trait": "birthday", "op": "lt", "value": "1988-01-01"}, {"bob"}),  # ISO dates order as text
        ({"trait": "birthday", "op": "anniversary_within", "value": {"days": 7}}, {"ann"}),  # 05-03
        ({"trait": "birthday", "op": "anniversary_within", "value": {"days": 2}}, set()),
        ({"trait": "birthday", "op": "anniversary_within", "value": {"days": 61}}, {"ann", "bob"}),
    ],
)
def test_number_boolean_and_date_traits(town: World, condition: dict[str, Any], expected: set[str]) -> None:
    assert one(town, condition) == expected


def test_a_date_trait_is_a_day_in_the_workspaces_zone() -> None:
    """A sign-up date of 1 April is in April wherever the workspace is: read as midnight UTC it
    would be 31 March in New York."""
    from zoneinfo import ZoneInfo

    w = World.empty()
    w.event("apr1", 1, "website", "Signed Up", traits={"joined": "2026-04-01"})
    w.event("mar31", 1, "website", "Signed Up", traits={"joined": "2026-03-31"})
    w.event("stamped", 1, "website", "Signed Up", traits={"joined": "2026-04-01T02:00:00Z"})
    w.build()
    april = {"trait": "joined", "op": "within", "value": {"calendar": "this_month"}}
    for zone in ("America/New_York", "Asia/Shanghai", "UTC", "Pacific/Auckland"):
        assert one(w, april, timezone=ZoneInfo(zone)) >= {"apr1"}, zone
        assert "mar31" not in one(w, april, timezone=ZoneInfo(zone)), zone
    # A time keeps its offset: 02:00 UTC on 1 April is 31 March 22:00 in New York.
    assert one(w, april, timezone=ZoneInfo("America/New_York")) == {"apr1"}
    assert one(w, april, timezone=ZoneInfo("Asia/Shanghai")) == {"apr1", "stamped"}
    since = {"trait": "joined", "op": "gte", "value": {"days_ago": 29}}  # 1 April 00:00 UTC
    assert one(w, since, timezone=ZoneInfo("UTC")) == {"apr1", "stamped"}
    w.close()


def test_anniversaries_count_from_the_workspaces_today() -> None:
    w = World.empty()
    w.event("leap", 1, "website", "Signed Up", traits={"birthday": "1992-02-29"})
    w.event("mar1", 1, "website", "Signed Up", traits={"birthday": "1990-03-01"})
    w.event("dec31", 1, "website", "Signed Up", traits={"birthday": "1990-12-31"})
    w.event("jan1", 1, "website", "Signed Up", traits={"birthday": "1990-01-01"})
    w.build()
    birthday = {"trait": "birthday", "op": "anniversary_within", "value": {"days": 1}}
    feb28 = T0.replace(year=2027, month=2, day=27, hour=20)  # 28 Feb 04:00 in Shanghai, a common year
    assert one(w, birthday, now=feb28) == {"leap", "mar1"}  # born on 29 Feb: celebrated on the 28th
    leap_feb28 = T0.replace(year=2028, month=2, day=27, hour=20)
    assert one(w, birthday, now=leap_feb28) == {"leap"}  # 28 and 29 Feb in a leap year
    new_year = T0.replace(year=2026, month=12, day=30, hour=17)  # 31 Dec 01:00 in Shanghai
    assert one(w, birthday, now=new_year) == {"dec31", "jan1"}  # across the year end
    today_only = {"trait": "birthday", "op": "anniversary_within", "value": {"days": 0}}
    # 16:00 UTC on 30 December is already the 31st in Shanghai; an hour earlier it is not.
    assert one(w, today_only, now=new_year - timedelta(hours=1)) == {"dec31"}
    assert one(w, today_only, now=new_year - timedelta(hours=2)) == set()
    w.close()


# Computed fields of the profile


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"trait": "revenue", "op": "gte", "value": 200}, {"ann", "bob", "gus"}),
        ({"trait": "order_count", "op": "eq", "value": 2}, {"ann", "gus"}),
        ({"trait": "order_count", "op": "in", "value": [1]}, {"bob", "cai", "eve"}),
        (
            {"trait": "order_count", "op": "not_in", "value": [1, 2]},
            {"dan", "fay"},
        ),  # no orders: 0, not 1 or 2
        ({"trait": "revenue", "op": "neq", "value": 200}, EVERYONE - {"ann"}),
        (
            {"trait": "revenue", "op": "lte", "value": 88},
            {"cai", "eve", "dan", "fay"},
        ),  # no orders: revenue 0
        ({"trait": "revenue", "op": "lt", "value": 88}, {"cai", "dan", "fay"}),
        ({"trait": "revenue", "op": "gt", "value": 1000}, {"gus"}),
        ({"trait": "order_count", "op": "gt", "value": 0}, BUYERS),
        ({"trait": "event_count", "op": "between", "value": [3, 4]}, {"ann", "bob", "eve"}),
        ({"trait": "avg_order_value", "op": "lt", "value": 90}, {"cai", "eve"}),
        ({"trait": "avg_order_value", "op": "exists"}, BUYERS),
        (
            {"trait": "last_purchase_at", "op": "within", "value": {"calendar": "this_month"}},
            {"ann", "bob", "eve"},
        ),
        ({"trait": "last_purchase_at", "op": "within", "value": {"calendar": "last_month"}}, {"cai"}),
        ({"trait": "last_purchase_at", "op": "not_within", "value": {"last": 30}}, {"cai"}),
        ({"trait": "first_purchase_at", "op": "lt", "value": "2026-03-01"}, {"gus"}),
        ({"trait": "first_seen", "op": "lt", "value": {"days_ago": 58}}, {"ann", "gus"}),
        ({"trait": "first_seen", "op": "between", "value": ["2026-03-01", "2026-03-04"]}, {"ann", "bob"}),
        ({"trait": "preferred_channel", "op": "eq", "value": "tmall"}, {"ann", "eve", "gus"}),
        (
            {"trait": "preferred_channel", "op": "in", "value": ["pos", "jd"]},
            {"bob", "cai"},
        ),  # bob: ties → latest
        ({"trait": "offline", "op": "eq", "value": True}, {"cai"}),
        ({"trait": "online", "op": "eq", "value": False}, {"cai"}),
        ({"trait": "in_public_domain", "op": "neq", "value": True}, {"cai", "dan", "fay"}),
        ({"trait": "channels", "op": "contains", "value": "pos"}, {"cai"}),
        ({"trait": "channels", "op": "eq", "value": "jd"}, {"bob"}),
        ({"trait": "channels", "op": "in", "value": ["pos", "jd"]}, {"bob", "cai"}),
        ({"trait": "channels", "op": "not_in", "value": ["tmall", "mini_program"]}, {"cai"}),
        ({"trait": "channels", "op": "not_contains", "value": "tmall"}, {"bob", "cai", "dan", "fay"}),
        ({"trait": "reachable_channels", "op": "exists"}, {"ann", "bob", "cai"}),
        ({"trait": "reachable_channels", "op": "not_exists"}, {"dan", "eve", "fay", "gus"}),
        ({"trait": "rfm_segment", "op": "exists"}, BUYERS),
    ],
)
def test_computed_fields(town: World, condition: dict[str, Any], expected: set[str]) -> None:
    assert one(town, condition) == expected


@pytest.mark.parametrize(
    ("condition", "path"),
    [
        ({"trait": "revenue", "op": "contains", "value": "1"}, "conditions[0].op"),
        ({"trait": "revenue", "op": "gte", "value": "lots"}, "conditions[0].value"),
        ({"trait": "revenue", "op": "gte", "value": True}, "conditions[0].value"),
        ({"trait": "revenue", "op": "gte"}, "conditions[0].value"),
        ({"trait": "revenue", "op": "anniversary_within", "value": {"days": 3}}, "conditions[0].op"),
        ({"trait": "revenue", "op": "within", "value": {"last": 3}}, "conditions[0].op"),
        ({"trait": "offline", "op": "gt", "value": True}, "conditions[0].op"),
        ({"trait": "offline", "op": "eq", "value": "yes"}, "conditions[0].value"),
        ({"trait": "channels", "op": "gt", "value": "a"}, "conditions[0].op"),
        ({"trait": "channels", "op": "contains", "value": 3}, "conditions[0].value"),
        ({"trait": "preferred_channel", "op": "within", "value": {"last": 3}}, "conditions[0].op"),
        ({"trait": "last_seen", "op": "gt", "value": "last tuesday"}, "conditions[0].value"),
        ({"trait": "last_seen", "op": "gt", "value": 5}, "conditions[0].value"),
        ({"trait": "last_seen", "op": "within", "value": {"last": 0}}, "conditions[0].value.last"),
        ({"trait": "last_seen", "op": "within", "value": {"calendar": "someday"}}, "conditions[0].value.calendar"),
        ({"trait": "last_seen", "op": "within", "value": {"from": "2026-04-01", "to": "2026-03-01"}},
         "conditions[0].value.to"),
        ({"trait": "birthday", "op": "anniversary_within", "value": 7}, "conditions[0].value"),
        ({"trait": "birthday", "op": "anniversary_within", "value": {"days": 367}}, "conditions[0].value"),
        ({"trait": "age", "op": "between", "value": [1, 2, 3]}, "conditions[0].value"),
        ({"trait": "age", "op": "between", "value": 3}, "conditions[0].value"),
        ({"trait": "city", "op": "in", "value": []}, "conditions[0].value"),
        ({"trait": "city", "op": "in", "value": "上海"}, "conditions[0].value"),
        ({"trait": "city", "op": "in", "value": ["上海", 3]}, "conditions[0].value"),
        ({"trait": "city", "op": "eq", "value": {"nested": "object"}}, "conditions[0].value"),
        ({"trait": "city", "op": "eq", "value": None}, "conditions[0].value"),
        ({"trait": "city", "op": "eq", "value": [1]}, "conditions[0].value"),
        ({"trait": "city", "op": "exists", "value": "x"}, "conditions[0].value"),
        ({"trait": "city", "op": "eq", "value": "a\x07b"}, "conditions[0].value"),
        ({"trait": "$.city", "op": "eq", "value": "x"}, "conditions[0].trait"),
        ({"trait": "traits.city name", "op": "eq", "value": "x"}, "conditions[0].trait"),
        ({"trait": "traits.", "op": "exists"}, "conditions[0].trait"),
        ({"trait": "city'--", "op": "exists"}, "conditions[0].trait"),
    ],
)  # fmt: skip
def test_bad_trait_conditions_name_the_node(town: World, condition: dict[str, Any], path: str) -> None:
    assert path_of_refusal(town, condition) == path


def test_paths_reach_into_groups(town: World) -> None:
    definition = {"conditions": [{"tag": "VIP"}, {"match": "any", "conditions": [
        {"trait": "city", "value": "上海"}, {"not": {"trait": "revenue", "op": "gte", "value": "x"}}]}]}  # fmt: skip
    error = refused(town, definition)
    assert error.details[0]["path"] == "conditions[1].conditions[1].not.value"


# ---------------------------------------------------------------------------------------------
# Identifiers, tags, reachability


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"identifier": "phone", "op": "exists"}, {"ann"}),
        ({"identifier": "phone", "op": "not_exists"}, EVERYONE - {"ann"}),
        ({"identifier": "phone", "op": "eq", "value": "+86 138-0000-1111"}, {"ann"}),
        ({"identifier": "phone", "op": "eq", "value": "13800001111"}, {"ann"}),
        ({"identifier": "phone", "op": "eq", "value": "008613800001111"}, {"ann"}),
        (
            {"identifier": "phone", "op": "eq", "value": "１３８００００１１１１"},
            {"ann"},
        ),  # full-width digits
        ({"identifier": "phone", "op": "eq", "value": "13800002222"}, set()),
        ({"identifier": "email", "op": "eq", "value": "BOB@example.COM "}, {"bob"}),
        ({"identifier": "user_id", "op": "eq", "value": "cai"}, {"cai"}),
        ({"identifier": "user_id", "op": "exists"}, EVERYONE),
        ({"identifier": "wechat_openid", "op": "exists"}, {"cai"}),
        ({"identifier": "wechat_openid", "op": "eq", "value": "oWX_cai_0001", "scope": "wx_app1"}, {"cai"}),
        # An openid means nothing outside its app: the same value in another app is someone else.
        ({"identifier": "wechat_openid", "op": "eq", "value": "oWX_cai_0001", "scope": "wx_other"}, set()),
        ({"identifier": "wechat_openid", "op": "exists", "scope": "wx_app1"}, {"cai"}),
        ({"identifier": "wechat_openid", "op": "exists", "scope": "wx_other"}, set()),
        ({"tag": "VIP"}, {"ann"}),
        ({"tag": "vip"}, set()),
        ({"tag": "O'Neil\"s"}, set()),
        ({"not": {"tag": "VIP"}}, EVERYONE - {"ann"}),
        ({"reachable": "sms"}, {"ann"}),
        ({"reachable": "email"}, {"bob"}),
        ({"reachable": "wechat_oa"}, {"cai"}),
        ({"reachable": "push"}, set()),
        ({"not": {"reachable": "sms"}}, EVERYONE - {"ann"}),
    ],
)
def test_identifiers_tags_and_reachability(
    town: World, condition: dict[str, Any], expected: set[str]
) -> None:
    assert one(town, condition) == expected


@pytest.mark.parametrize(
    ("condition", "path"),
    [
        ({"identifier": "qq", "op": "exists"}, "conditions[0].identifier"),
        ({"identifier": "phone", "op": "eq", "value": "12"}, "conditions[0].value"),
        ({"identifier": "phone", "op": "eq"}, "conditions[0].value"),
        ({"identifier": "phone", "op": "exists", "value": "13800001111"}, "conditions[0].value"),
        ({"identifier": "email", "op": "eq", "value": "not an email"}, "conditions[0].value"),
        ({"identifier": "user_id", "op": "eq", "value": "\x00"}, "conditions[0].value"),
        ({"identifier": "wechat_openid", "op": "eq", "value": "oWX_cai_0001"}, "conditions[0].scope"),
        ({"identifier": "phone", "op": "exists", "scope": "wx_app1"}, "conditions[0].scope"),
        ({"reachable": "fax"}, "conditions[0].reachable"),
        ({"reachable": "wechat"}, "conditions[0].reachable"),
        ({"tag": "a\x01b"}, "conditions[0].tag"),
    ],
)
def test_bad_identifier_tag_and_channel_conditions_name_the_node(
    town: World, condition: dict[str, Any], path: str
) -> None:
    assert path_of_refusal(town, condition) == path


def test_unknown_identifier_type_lists_the_known_ones(town: World) -> None:
    error = refused(town, {"conditions": [{"identifier": "qq"}]})
    assert "phone" in error.message and "'qq'" in error.message


# ---------------------------------------------------------------------------------------------
# Events: what, where, when


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"event": "Order Completed"}, BUYERS),
        ({"event": ["Store Visited", "Coupon Sent"]}, {"bob", "cai"}),
        ({"event": "order completed"}, set()),  # names are exact
        ({"event_group": "touch"}, {"ann", "bob"}),
        ({"event_group": "orders", "channel": ["tmall"]}, {"ann", "eve", "gus"}),
        ({"type": "page"}, {"bob", "dan"}),
        ({"type": "page", "event": "/menu"}, {"bob"}),
        ({"type": "page", "event": "Order Completed"}, set()),  # a page's name, not a track event
        ({"type": "track", "event": "Product Added"}, {"eve", "fay"}),
        ({"event": "Order Completed", "channel": ["jd", "pos"]}, {"bob", "cai"}),
        ({"event": "Order Completed", "source_type": ["pos"]}, {"cai"}),
        ({"event": "Order Completed", "source_id": ["src_tmall"]}, {"ann", "eve", "gus"}),
        ({"event": "Order Completed", "channel": ["douyin"]}, set()),
    ],
)
def test_event_names_groups_types_and_sources(
    town: World, condition: dict[str, Any], expected: set[str]
) -> None:
    assert one(town, condition) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ([{"property": "amount", "op": "gte", "value": 100}], {"ann", "bob", "gus"}),
        ([{"property": "amount", "op": "between", "value": [50, 90]}], {"ann", "cai", "eve"}),
        ([{"property": "amount", "op": "lt", "value": 100}, {"property": "channel", "op": "eq", "value": "tmall"}],
         {"ann", "eve", "gus"}),
        ([{"property": "store_id", "op": "eq", "value": "SH01"}], {"cai"}),
        ([{"property": "store_id", "op": "exists"}], {"cai"}),
        ([{"property": "currency", "op": "not_exists"}], BUYERS),
        ([{"property": "source_type", "op": "in", "value": ["jd", "pos"]}], {"bob", "cai"}),
        ([{"property": "order_id", "op": "starts_with", "value": "o"}], BUYERS),
    ],
)  # fmt: skip
def test_where_on_typed_columns(town: World, where: list[dict[str, Any]], expected: set[str]) -> None:
    assert one(town, {"event": "Order Completed", "where": where}) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"property": "scene", "op": "eq", "value": "store_qr"}, {"fay"}),
        ({"property": "scene", "op": "neq", "value": "article"}, {"fay"}),
        ({"property": "scene", "op": "in", "value": ["article", "search"]}, set()),
        ({"property": "store_id", "op": "eq", "value": "SH02"}, {"fay"}),  # the property, not the column
        ({"property": "a.b", "op": "eq", "value": "dot"}, {"fay"}),  # a key with a dot is one key
        ({"property": "count", "op": "gt", "value": 2}, {"fay"}),
        ({"property": "count", "op": "eq", "value": 3}, {"fay"}),
        ({"property": "count", "op": "eq", "value": "3"}, {"fay"}),
        ({"property": "flag", "op": "eq", "value": True}, {"fay"}),
        ({"property": "flag", "op": "eq", "value": False}, set()),
        ({"property": "empty", "op": "exists"}, set()),  # a JSON null is no value
        ({"property": "empty", "op": "not_exists"}, {"fay"}),
        ({"property": "missing", "op": "not_exists"}, {"fay"}),
        ({"property": "scene", "op": "contains", "value": "qr"}, {"fay"}),
        ({"property": "scene", "op": "not_contains", "value": "qr"}, set()),
    ],
)
def test_where_on_properties(town: World, where: dict[str, Any], expected: set[str]) -> None:
    assert one(town, {"event": "Official Account Followed", "where": [where]}) == expected


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ({"last": 30, "unit": "day"}, {"ann", "bob", "eve", "gus"}),  # gus's skewed future order counts
        ({"last": 10, "unit": "day"}, {"ann", "bob", "gus"}),  # ann's day 50 is exactly 10 days back
        ({"last": 2, "unit": "month"}, {"ann", "bob", "cai", "eve", "gus"}),  # since 28 Feb 08:00 local
        ({"last": 7, "unit": "week"}, {"ann", "bob", "eve", "gus"}),  # since day 11
        ({"last": 239, "unit": "hour"}, {"bob", "gus"}),
        ({"last": 100_000, "unit": "minute"}, {"ann", "bob", "cai", "eve", "gus"}),
        ({"calendar": "this_month"}, {"ann", "bob", "eve"}),  # eve's day 31 is 1 April 08:00 there
        ({"calendar": "last_month"}, {"ann", "cai"}),
        ({"calendar": "today"}, set()),
        ({"calendar": "this_year"}, {"ann", "bob", "cai", "eve", "gus"}),
        ({"calendar": "last_year"}, set()),
        ({"from": "2026-03-01", "to": "2026-03-15"}, {"ann", "cai"}),
        ({"from": "2026-04-30"}, {"gus"}),
        ({"to": "2026-03-01"}, {"gus"}),
        ({"from": "2026-03-11T07:59:59"}, {"ann", "bob", "eve", "gus"}),  # ann's day 10 is 08:00 local
        ({"from": "2026-03-11T08:00:00+08:00"}, {"ann", "bob", "eve", "gus"}),
        ({"from": "2026-03-11T00:00:01Z"}, {"ann", "bob", "eve", "gus"}),
        ({"from": "2026-03-11T00:00:00Z"}, {"ann", "bob", "eve", "gus"}),
    ],
)
def test_event_windows(town: World, window: dict[str, Any], expected: set[str]) -> None:
    assert one(town, {"event": "Order Completed", "window": window}) == expected


def test_a_calendar_window_is_decided_in_the_workspaces_zone(town: World) -> None:
    orders_this_month = {"event": "Order Completed", "window": {"calendar": "this_month"}}
    from zoneinfo import ZoneInfo

    # In UTC, eve's order (1 April 00:00) is in April and gus's (1 May 00:00) is not.
    assert one(town, orders_this_month, timezone=ZoneInfo("UTC")) == {"ann", "bob", "eve"}
    # In New York eve orders on 31 March 20:00, and gus on 30 April 20:00.
    new_york = ZoneInfo("America/New_York")
    assert one(town, orders_this_month, timezone=new_york) == {"ann", "bob", "gus"}
    assert one(
        town, {"event": "Order Completed", "window": {"calendar": "last_month"}}, timezone=new_york
    ) == {
        "ann",
        "cai",
        "eve",
    }


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ({"count": {"op": "gte", "value": 2}}, {"ann", "gus"}),
        ({"count": {"op": "gt", "value": 1}}, {"ann", "gus"}),
        ({"count": {"op": "eq", "value": 1}}, {"bob", "cai", "eve"}),
        # Tests that zero events satisfy hold for people who never did it.
        ({"count": {"op": "lte", "value": 1}}, {"bob", "cai", "eve", "dan", "fay"}),
        ({"count": {"op": "lt", "value": 2}}, {"bob", "cai", "eve", "dan", "fay"}),
        ({"count": {"op": "eq", "value": 0}}, {"dan", "fay"}),
        ({"count": {"op": "lte", "value": 0}}, {"dan", "fay"}),
        ({"count": {"op": "gte", "value": 0}}, EVERYONE),
        ({"count": {"op": "neq", "value": 1}}, {"ann", "gus", "dan", "fay"}),
        ({"count": {"op": "neq", "value": 0}}, BUYERS),
        ({"count": {"op": "gt", "value": 0}}, BUYERS),
        ({"count": {"op": "lt", "value": 0}}, set()),
        ({"sum": {"property": "amount", "op": "gte", "value": 200}}, {"ann", "bob", "gus"}),
        (
            {"sum": {"property": "amount", "op": "lt", "value": 100}},
            {"cai", "eve"},
        ),  # not those without orders
        ({"avg": {"property": "amount", "op": "lt", "value": 100}}, {"cai", "eve"}),
        ({"avg": {"property": "amount", "op": "eq", "value": 100}}, {"ann"}),
        ({"min": {"property": "amount", "op": "lt", "value": 50}}, {"gus"}),
        ({"max": {"property": "amount", "op": "gte", "value": 300}}, {"bob", "gus"}),
        ({"max": {"property": "amount", "op": "neq", "value": 300}}, {"ann", "cai", "eve", "gus"}),
        (
            {"count": {"op": "gte", "value": 2}, "sum": {"property": "amount", "op": "gte", "value": 500}},
            {"gus"},
        ),
        ({"first_time": {"before": {"days_ago": 45}}}, {"ann", "cai", "gus"}),
        ({"first_time": {"within": {"calendar": "this_month"}}}, {"bob", "eve"}),
        ({"last_time": {"within": {"last": 7}}}, {"bob", "gus"}),
        ({"last_time": {"after": "2026-04-25"}}, {"bob", "gus"}),
        ({"last_time": {"before": {"days_ago": 30}}}, {"cai"}),
        ({"first_time": {"after": "2026-03-01"}, "last_time": {"before": "2026-04-01"}}, {"cai"}),
    ],
)
def test_counts_aggregates_and_first_last_times(
    town: World, test: dict[str, Any], expected: set[str]
) -> None:
    assert one(town, {"event": "Order Completed", **test}) == expected


def test_counts_and_aggregates_apply_after_the_filters(town: World) -> None:
    base = {"event": "Order Completed", "window": {"last": 30}, "where": [{"property": "amount", "op": "lt",
                                                                            "value": 100}]}  # fmt: skip
    assert one(town, {**base, "count": {"op": "gte", "value": 1}}) == {"ann", "eve", "gus"}
    assert one(town, {**base, "count": {"op": "eq", "value": 0}}) == {"bob", "cai", "dan", "fay"}
    assert one(town, {**base, "sum": {"property": "amount", "op": "gte", "value": 80}}) == {"ann", "eve"}
    followed = {"event": "Official Account Followed", "sum": {"property": "count", "op": "eq", "value": 3}}
    assert one(town, followed) == {"fay"}  # a numeric property of `properties`


@pytest.mark.parametrize(
    ("condition", "path"),
    [
        ({"event_group": "vip_events"}, "conditions[0].event_group"),
        ({"event": "x", "where": [{"property": "amount", "op": "gte", "value": "lots"}]}, "conditions[0].where[0].value"),
        ({"event": "x", "where": [{"property": "amount", "op": "contains", "value": "1"}]}, "conditions[0].where[0].op"),
        ({"event": "x", "where": [{"property": "x", "op": "exists"}, {"property": "bad key", "op": "exists"}]},
         "conditions[0].where[1].property"),
        ({"event": "x", "where": [{"property": "$.scene", "op": "eq", "value": "path"}]},
         "conditions[0].where[0].property"),  # a key, never a JSON path
        ({"event": "x", "where": [{"property": "scene", "op": "in", "value": []}]}, "conditions[0].where[0].value"),
        ({"event": "x", "where": [{"property": "scene", "op": "eq", "value": "\n"}]}, "conditions[0].where[0].value"),
        ({"event": "x", "sum": {"property": "store_id", "value": 1}}, "conditions[0].sum.property"),
        ({"event": "x", "avg": {"property": "a b", "value": 1}}, "conditions[0].avg.property"),
        ({"event": "x", "channel": ["tmall", "\x1b"]}, "conditions[0].channel[1]"),
        ({"event": "x", "window": {"from": "soon"}}, "conditions[0].window.from"),
        ({"event": "x", "first_time": {"within": {"from": "2026-02-01", "to": "2026-01-01"}}},
         "conditions[0].first_time.within.to"),
        ({"event": "x", "last_time": {"before": {"days": 3}}}, "conditions[0].last_time.before"),
        ({"event": "x", "last_time": {"after": "next week"}}, "conditions[0].last_time.after"),
        ({"event": "x\x00y"}, "conditions[0].event"),
        ({"sequence": {"steps": [{"event": "a"}, {"event_group": "nope"}], "within": {"value": 1}}},
         "conditions[0].sequence.steps[1].event_group"),
        ({"sequence": {"steps": [{"event": "a"}, {"event": "b"}], "within": {"value": 1},
                       "window": {"to": "x"}}}, "conditions[0].sequence.window.to"),
    ],
)  # fmt: skip
def test_bad_event_conditions_name_the_node(town: World, condition: dict[str, Any], path: str) -> None:
    assert path_of_refusal(town, condition) == path


def test_unknown_event_group_inside_not_names_the_path_and_the_known_groups(town: World) -> None:
    error = refused(town, {"conditions": [{"tag": "VIP"}, {"not": {"event_group": "touches"}}]})
    assert error.details[0]["path"] == "conditions[1].not.event_group"
    assert "touch" in error.message and "orders" in error.message


# ---------------------------------------------------------------------------------------------
# Sequences


def test_sequences_did(town: World) -> None:
    cart_then_order = {"sequence": {"steps": [{"event": "Product Added"}, {"event": "Order Completed"}],
                                    "within": {"value": 3, "unit": "day"}}}  # fmt: skip
    assert one(town, cart_then_order) == {"eve"}
    tight = {"sequence": {**cart_then_order["sequence"], "within": {"value": 12, "unit": "hour"}}}
    assert one(town, tight) == set()  # a day apart
    order_then_cart = {"sequence": {"steps": [{"event": "Order Completed"}, {"event": "Product Added"}],
                                    "within": {"value": 1, "unit": "month"}}}  # fmt: skip
    assert one(town, order_then_cart) == {"eve"}  # day 31 → 58.5
    three = {"sequence": {"steps": [{"event": "Product Added"}, {"event": "Order Completed"},
                                    {"event": "Product Added"}], "within": {"value": 4, "unit": "week"}}}  # fmt: skip
    assert one(town, three) == {"eve"}
    in_window = {"sequence": {**cart_then_order["sequence"], "window": {"last": 7}}}
    assert one(town, in_window) == set()  # eve's first cart is older; her last is not followed
    followed_by_page = {"sequence": {"steps": [{"event": "Coupon Sent"}, {"type": "page", "event": "/menu"}],
                                     "within": {"value": 30}}}  # fmt: skip
    assert one(town, followed_by_page) == {"bob"}


def test_sequences_did_not_wait_for_the_gap_to_pass(town: World) -> None:
    abandoned = {"sequence": {"steps": [{"event": "Product Added"}, {"event": "Order Completed"}],
                              "within": {"value": 3, "unit": "day"}, "then": "did_not"}}  # fmt: skip
    # fay's cart (day 40) was never followed by an order; eve's second cart (day 58.5) is 1.5 days old.
    assert one(town, abandoned) == {"fay"}
    assert one(town, abandoned, now=NOW + timedelta(days=1.4)) == {"fay"}
    assert one(town, abandoned, now=NOW + timedelta(days=1.5)) == {"fay", "eve"}  # exactly 3 days after
    # At day 31.5 fay has not added anything yet and eve ordered a day after her cart.
    assert one(town, abandoned, now=T0 + timedelta(days=31.5)) == set()
    recent = {"sequence": {**abandoned["sequence"], "window": {"last": 15}}}
    assert one(town, recent, now=NOW + timedelta(days=2)) == {"eve"}


# ---------------------------------------------------------------------------------------------
# Composition: not, any, all, nested segments


def test_groups_and_not(town: World) -> None:
    touched = {"event_group": "touch"}
    assert one(town, {"not": touched}) == EVERYONE - {"ann", "bob"}
    assert one(town, {"not": {"not": touched}}) == {"ann", "bob"}
    either = {"match": "any", "conditions": [{"tag": "VIP"}, {"trait": "city", "value": "北京"}]}
    assert one(town, either) == {"ann", "cai"}
    assert town.members({"conditions": [either, {"event": "Order Completed", "channel": ["pos"]}]}) == {"cai"}
    assert town.members({"match": "any", "conditions": [touched, {"trait": "city", "value": "北京"}]}) == {
        "ann",
        "bob",
        "cai",
    }


def test_nested_segments_are_inlined(town: World) -> None:
    assert one(town, {"segment": "seg_buyers"}) == BUYERS
    assert one(town, {"segment": "seg_sh_buyers"}) == {"ann", "eve"}
    assert one(town, {"not": {"segment": "seg_sh_buyers"}}) == EVERYONE - {"ann", "eve"}
    assert town.members({"conditions": [{"segment": "seg_buyers"}, {"segment": "seg_buyers"}]}) == BUYERS


def test_cycles_are_refused_with_a_path(town: World) -> None:
    error = refused(town, {"conditions": [{"segment": "seg_a"}]})
    assert error.code == "invalid_segment"
    assert "seg_a → seg_b → seg_a" in error.message
    assert error.details[0]["path"].startswith("conditions[0]")
    assert error.details[0]["path"].endswith(".segment")
    error = refused(town, {"conditions": [{"tag": "x"}, {"segment": "seg_self"}]})
    assert "seg_self → seg_self" in error.message
    assert error.details[0]["path"].startswith("conditions[1]")


def test_segment_references_are_bounded(town: World) -> None:
    """A chain of references deeper than MAX_SEGMENT_DEPTH is refused, and so are segments that
    each use the one before three times (inlined, the query would triple at every step)."""
    saved = dict(town.segments)
    for i in range(MAX_SEGMENT_DEPTH + 1):
        inner = [{"tag": "VIP"}] if i == 0 else [{"segment": f"seg_chain{i - 1}"}]
        town.segments[f"seg_chain{i}"] = parse_definition({"conditions": inner})
        inner = [{"tag": "VIP"}] if i == 0 else [{"segment": f"seg_thrice{i - 1}"}] * 3
        town.segments[f"seg_thrice{i}"] = parse_definition({"match": "any", "conditions": inner})
    try:
        assert one(town, {"segment": f"seg_chain{MAX_SEGMENT_DEPTH - 1}"}) == {"ann"}
        error = refused(town, {"conditions": [{"segment": f"seg_chain{MAX_SEGMENT_DEPTH}"}]})
        assert error.details[0]["path"].endswith(".segment") and "seg_chain0" in error.message
        assert one(town, {"not": {"segment": "seg_thrice5"}}) == EVERYONE - {"ann"}  # 607 conditions
        with pytest.raises(InvalidInput) as caught:
            town.members({"conditions": [{"segment": "seg_thrice6"}]})  # 1,822 conditions
        assert caught.value.code == "segment_too_large" and str(MAX_COMPILED) in caught.value.message
        assert caught.value.details[0]["path"].startswith("conditions[0]")
    finally:
        town.segments.clear()
        town.segments.update(saved)


def test_unknown_segment_is_refused_with_a_path(town: World) -> None:
    assert path_of_refusal(town, {"not": {"segment": "seg_nope"}}) == "conditions[0].not.segment"


def test_an_error_inside_a_nested_segment_names_the_reference(town: World) -> None:
    town.segments["seg_broken"] = parse_definition({"conditions": [{"event_group": "nope"}]})
    try:
        error = refused(town, {"conditions": [{"tag": "VIP"}, {"segment": "seg_broken"}]})
    finally:
        del town.segments["seg_broken"]
    path = error.details[0]["path"]
    assert path.startswith("conditions[1]") and "seg_broken" in path and path.endswith("event_group")


# ---------------------------------------------------------------------------------------------
# The workspace filter and the members' rows


def test_other_workspaces_are_never_seen() -> None:
    w = World.empty("ws_mine")
    w.order("ann", 10, 100.0)
    w.build()
    other = Ledger(w.warehouse, "ws_theirs")
    other.order("ann", 11, 999.0)
    other.add("zed", 12, "pos", "Store Visited")
    other.store()
    refresh(w.warehouse, "ws_theirs", now=NOW)
    assert w.members({"conditions": [{"event": "Order Completed"}]}) == {"ann"}
    assert (
        w.members({"conditions": [{"event": "Order Completed", "count": {"op": "gte", "value": 2}}]}) == set()
    )
    assert w.members({"conditions": [{"event": "Store Visited", "count": {"op": "eq", "value": 0}}]}) == {
        "ann"
    }
    assert w.members({"conditions": [{"trait": "revenue", "op": "gt", "value": 500}]}) == set()
    assert w.members({"conditions": [{"not": {"tag": "x"}}]}) == {"ann"}
    w.close()


def test_members_returns_the_profile_rows(town: World) -> None:
    ctx = segment_context(town.warehouse, town.workspace_id, now=NOW, event_groups={})
    definition = parse_definition({"conditions": [{"tag": "VIP"}]})
    rows = town.warehouse.execute(members(definition, ctx)).to_pylist()
    assert [r["profile_id"] for r in rows] == ["prof_ann"]
    assert rows[0]["traits"] and rows[0]["revenue"] == 200.0
    assert compile_segment(definition, ctx).columns == ("profile_id",)


def test_compiling_reads_nothing_and_is_deterministic(town: World) -> None:
    import ibis

    ctx = segment_context(town.warehouse, town.workspace_id, now=NOW, event_groups={"touch": ["Coupon Sent"]})
    definition = parse_definition({"conditions": [{"not": {"event_group": "touch", "window": {"last": 30}}}]})
    assert ibis.to_sql(compile_segment(definition, ctx)) == ibis.to_sql(compile_segment(definition, ctx))
