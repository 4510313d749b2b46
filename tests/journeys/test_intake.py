"""Journeys fed by the real pipeline: events collected, stored and stitched start journeys, end
waits, count goals, apply exit criteria and record consent; segment signals and the calendar
start journeys; condition steps ask the warehouse; tag and trait steps land on the profile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from profiles.profilekit import Brand, day
from quanyu.channels.sink import read_sink
from quanyu.journeys.clock import ManualClock
from quanyu.platform import Platform
from quanyu.segments.membership import refresh_membership
from quanyu.segments.saved import SegmentCreate
from quanyu.store.models import ConsentState, Enrollment
from testkit import Tenant

# The brand's events happen on 2026-03-01 (profilekit.T0); the journeys' clock starts just before.
START = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai


@pytest.fixture
def brand(platform: Platform, tenant: Tenant) -> Brand:
    platform.journeys.clock = ManualClock(START)
    return Brand(platform, tenant.workspace_id)


def _track(user: str, event: str, at: float, **props: Any) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": event, "timestamp": day(at), "properties": props}


def _journey(brand: Brand, definition: dict[str, Any]) -> str:
    made = brand.platform.journeys.saved.create(brand.workspace_id, definition, "test", publish=True)
    return str(made["id"])


def _run(brand: Brand, **advance: float) -> dict[str, Any]:
    clock = brand.platform.journeys.clock
    assert isinstance(clock, ManualClock)
    if advance:
        clock.advance(timedelta(**advance))
    return brand.platform.journeys.run_once(brand.platform.warehouse)


def _sink(brand: Brand) -> list[dict[str, Any]]:
    return read_sink(brand.platform.settings.data_dir / "sink" / f"{brand.workspace_id}.jsonl")


def _enrollments(brand: Brand, journey_id: str) -> list[Any]:
    e = Enrollment.__table__
    with brand.platform.engine.connect() as conn:
        return list(conn.execute(select(e).where(e.c.journey_id == journey_id).order_by(e.c.id)))


def _send(text: str, nxt: str | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {
        "type": "send",
        "channel": "sink",
        "purpose": "transactional",
        "content": {"text": text},
    }
    if nxt:
        node["next"] = nxt
    return node


def test_event_trigger_with_property_filter(brand: Brand) -> None:
    jid = _journey(brand, {"name": "pro welcome", "start": "hi", "nodes": {"hi": _send("欢迎 {{ event.plan }} 用户")},
                           "trigger": {"type": "event", "event": "Signed Up",
                                       "where": [{"property": "plan", "op": "eq", "value": "pro"}]}})  # fmt: skip
    brand.send(
        "website", _track("u1", "Signed Up", 0.01, plan="pro"), _track("u2", "Signed Up", 0.01, plan="free")
    )
    _run(brand)
    assert [e.profile_id for e in _enrollments(brand, jid)] == [brand.profile_of("u1")]
    assert [line["content"]["text"] for line in _sink(brand)] == ["欢迎 pro 用户"]
    # The same events read again (a restart) enroll nobody twice.
    brand.platform.journeys.intake_once(brand.platform.warehouse)
    assert len(_enrollments(brand, jid)) == 1


def test_wechat_follow_with_scene(brand: Brand) -> None:
    jid = _journey(brand, {"name": "store follow", "start": "hi", "nodes": {"hi": _send("门店欢迎")},
                           "trigger": {"type": "wechat", "on": "follow", "scene_prefix": "store_"}})  # fmt: skip
    brand.send("wechat_oa", _track("a", "Official Account Followed", 0.01, scene="store_sh001"),
               _track("b", "Official Account Followed", 0.01, scene="campaign_tea"),
               _track("c", "QR Scanned", 0.01, scene="store_sh001"))  # fmt: skip
    _run(brand)
    assert [e.profile_id for e in _enrollments(brand, jid)] == [brand.profile_of("a")]


def test_wait_for_event_resumes_or_times_out(brand: Brand) -> None:
    nodes = {"wait": {"type": "wait_for_event", "event": "Order Completed", "timeout": {"hours": 2},
                      "next": "thanks", "timeout_next": "remind"},
             "thanks": _send("感谢下单"), "remind": _send("购物车还有商品")}  # fmt: skip
    jid = _journey(brand, {"name": "cart", "start": "wait", "nodes": nodes,
                           "trigger": {"type": "event", "event": "Checkout Started"}})  # fmt: skip
    brand.send(
        "mini_program", _track("buyer", "Checkout Started", 0.13), _track("browser", "Checkout Started", 0.13)
    )
    _run(brand)
    brand.send("mini_program", _track("buyer", "Order Completed", 0.15, order_id="o1", revenue=99))
    _run(brand)
    assert [line["content"]["text"] for line in _sink(brand)] == ["感谢下单"]
    _run(brand, hours=2, minutes=1)
    texts = {line["profile_id"]: line["content"]["text"] for line in _sink(brand)}
    assert texts == {brand.profile_of("buyer"): "感谢下单", brand.profile_of("browser"): "购物车还有商品"}
    assert {e.exit_reason for e in _enrollments(brand, jid)} == {"completed"}


def test_goal_exits_and_exit_criterion_at_step_end(brand: Brand) -> None:
    nodes = {"wait": {"type": "wait", "duration": {"days": 3}, "next": "nudge"}, "nudge": _send("回来看看")}
    jid = _journey(brand, {"name": "nurture", "start": "wait", "nodes": nodes,
                           "trigger": {"type": "event", "event": "Signed Up"},
                           "goal": {"event": "Order Completed", "within_days": 7},
                           "exit": [{"event": "Account Closed", "when": "step_end"}]})  # fmt: skip
    brand.send("website", *[_track(u, "Signed Up", 0.13) for u in ("buys", "closes", "idle")])
    _run(brand)
    brand.send("website", _track("buys", "Order Completed", 1, order_id="o9", revenue=10),
               _track("closes", "Account Closed", 1))  # fmt: skip
    _run(brand)
    rows = {e.profile_id: e for e in _enrollments(brand, jid)}
    buys, closes, idle = (brand.profile_of(u) for u in ("buys", "closes", "idle"))
    assert rows[buys].exit_reason == "goal" and rows[buys].goal_at is not None
    assert rows[closes].status == "active" and rows[closes].exit_pending  # leaves when the wait ends
    _run(brand, days=3, minutes=1)
    rows = {e.profile_id: e for e in _enrollments(brand, jid)}
    assert rows[closes].exit_reason == "exit_criteria" and rows[idle].exit_reason == "completed"
    assert [line["profile_id"] for line in _sink(brand)] == [idle]
    stats = brand.platform.journeys.saved.get(brand.workspace_id, jid)
    assert stats["status"] == "live"


def test_consent_events_are_recorded(brand: Brand) -> None:
    brand.send("h5", _track("x", "Consent Updated", 0.1, channel="sms", purpose="marketing", granted=True,
                            wording="我同意接收短信优惠"),
               {"type": "track", "userId": "y", "event": "Page Viewed", "timestamp": day(0.1),
                "context": {"consent": {"categoryPreferences": {"Advertising": False, "Analytics": True}}}})  # fmt: skip
    _run(brand)
    c = ConsentState.__table__
    with brand.platform.engine.connect() as conn:
        rows = {(r.subject, r.channel, r.purpose): (r.granted, r.source) for r in conn.execute(select(c))}
    x, y = brand.profile_of("x"), brand.profile_of("y")
    assert rows[(x, "sms", "marketing")] == (True, "event")
    assert rows[(y, "*", "marketing")] == (False, "segment_consent")
    assert rows[(y, "*", "analytics")] == (True, "segment_consent")


def test_condition_step_asks_the_warehouse(brand: Brand) -> None:
    nodes = {"bought": {"type": "condition", "if": {"conditions": [{"trait": "order_count", "op": "gt", "value": 0}]},
                        "yes": "vip", "no": "first"}, "vip": _send("老客专享"), "first": _send("首单优惠")}  # fmt: skip
    _journey(brand, {"name": "branch", "start": "bought", "nodes": nodes,
                     "trigger": {"type": "event", "event": "Coupon Requested"}})  # fmt: skip
    brand.send("mini_program", _track("old", "Order Completed", 0.05, order_id="o1", revenue=50))
    brand.send("mini_program", _track("old", "Coupon Requested", 0.1), _track("new", "Coupon Requested", 0.1))
    _run(brand)
    texts = {line["profile_id"]: line["content"]["text"] for line in _sink(brand)}
    assert texts == {brand.profile_of("old"): "老客专享", brand.profile_of("new"): "首单优惠"}


def test_tag_and_trait_steps_land_on_the_profile(brand: Brand) -> None:
    nodes = {"tag": {"type": "tag", "add": ["新客"], "next": "trait"},
             "trait": {"type": "set_trait", "traits": {"welcome_stage": "sent"}}}  # fmt: skip
    _journey(brand, {"name": "mark", "start": "tag", "nodes": nodes,
                     "trigger": {"type": "event", "event": "Signed Up"}})  # fmt: skip
    brand.send("website", {"type": "identify", "userId": "t1", "timestamp": day(0.1), "traits": {"phone": "13800001111"}},
               _track("t1", "Signed Up", 0.11))  # fmt: skip
    _run(brand)
    brand.platform.pipeline.drain()  # the trait change was queued as an identify message
    from profiles.profilekit import row_of

    row = row_of(brand.platform.warehouse, brand.workspace_id, brand.profile_of("t1"))
    assert row is not None
    import orjson

    traits = orjson.loads(row["traits"]) if isinstance(row["traits"], str) else row["traits"]
    assert traits.get("welcome_stage") == "sent"
    from quanyu.profiles.tags import profile_tags

    assert "新客" in {t["tag"] for t in profile_tags(brand.platform.warehouse, brand.workspace_id,
                                                     brand.profile_of("t1"))}  # fmt: skip


def test_segment_entered_starts_a_journey(brand: Brand) -> None:
    platform = brand.platform
    brand.send("tmall", _track("big", "Order Completed", 0.05, order_id="o1", revenue=900))
    seg = platform.segments.create(brand.workspace_id, SegmentCreate(
        name="高价值 High value", definition={"conditions": [{"trait": "revenue", "op": "gte", "value": 500}]}),
        "test")  # fmt: skip
    jid = _journey(brand, {"name": "vip care", "start": "hi", "nodes": {"hi": _send("VIP 关怀")},
                           "trigger": {"type": "segment", "segment_id": seg["id"], "on": "entered"}})  # fmt: skip
    _run(brand)  # the journey starts listening from now
    refresh_membership(platform.warehouse, platform.segments, brand.workspace_id, seg["id"])
    _run(brand)
    assert [e.profile_id for e in _enrollments(brand, jid)] == [brand.profile_of("big")]


def test_birthday_trigger_fires_once_a_day(brand: Brand) -> None:
    brand.send("website", {"type": "identify", "userId": "bday", "timestamp": day(0), "traits": {"birthday": "1990-03-01"}},
               {"type": "identify", "userId": "other", "timestamp": day(0), "traits": {"birthday": "1991-07-15"}})  # fmt: skip
    jid = _journey(brand, {"name": "生日 Birthday", "start": "hi", "nodes": {"hi": _send("生日快乐")},
                           "trigger": {"type": "date", "field": "birthday", "anniversary": True, "at": "10:00"},
                           "settings": {"reentry": {"mode": "always"}}})  # fmt: skip
    _run(brand)  # 11:00 Shanghai on 1 March: today's occurrence is due
    _run(brand, hours=1)
    assert [e.profile_id for e in _enrollments(brand, jid)] == [brand.profile_of("bday")]
    assert len(_sink(brand)) == 1


def test_the_awaited_event_in_the_same_batch_or_late_still_counts(brand: Brand) -> None:
    """A checkout and its order stored together, or the order stored after the journey had
    started waiting but timestamped earlier (a late SDK flush): the buyer gets no reminder."""
    nodes = {"wait": {"type": "wait_for_event", "event": "Order Completed", "timeout": {"hours": 2},
                      "next": "thanks", "timeout_next": "remind"},
             "thanks": _send("感谢下单"), "remind": _send("购物车还有商品")}  # fmt: skip
    _journey(brand, {"name": "cart", "start": "wait", "nodes": nodes,
                     "trigger": {"type": "event", "event": "Checkout Started"}})  # fmt: skip
    clock = brand.platform.journeys.clock
    assert isinstance(clock, ManualClock)
    clock.set(datetime(2026, 3, 1, 6, 0, tzinfo=UTC))  # processing runs hours after the events happened
    brand.send("mini_program", _track("together", "Checkout Started", 0.13),
               _track("together", "Order Completed", 0.14, order_id="o1", revenue=9))  # fmt: skip
    brand.send("mini_program", _track("late", "Checkout Started", 0.13))
    _run(brand)  # "late" is waiting now
    brand.send("mini_program", _track("late", "Order Completed", 0.14, order_id="o2", revenue=9))
    _run(brand)
    _run(brand, hours=3)
    texts = {line["profile_id"]: line["content"]["text"] for line in _sink(brand)}
    assert texts == {brand.profile_of("together"): "感谢下单", brand.profile_of("late"): "感谢下单"}


def test_a_weekly_schedule_starts_with_its_next_occurrence(brand: Brand) -> None:
    platform = brand.platform
    brand.send(
        "website", {"type": "identify", "userId": "m1", "timestamp": day(0), "traits": {"member": True}}
    )
    seg = platform.segments.create(brand.workspace_id, SegmentCreate(
        name="会员 Members", definition={"conditions": [{"trait": "member", "op": "eq", "value": True}]}), "test")  # fmt: skip
    refresh_membership(platform.warehouse, platform.segments, brand.workspace_id, seg["id"])
    clock = platform.journeys.clock
    assert isinstance(clock, ManualClock)
    clock.set(datetime(2026, 3, 4, 7, 0, tzinfo=UTC))  # Wednesday 15:00 in Shanghai
    jid = _journey(brand, {"name": "weekly", "start": "hi", "nodes": {"hi": _send("本周新品")},
                           "trigger": {"type": "schedule", "segment_id": seg["id"], "every": "week",
                                       "weekday": 1, "at": "10:00"},
                           "settings": {"reentry": {"mode": "always"}}})  # fmt: skip
    _run(brand)
    assert _enrollments(brand, jid) == []  # last Monday's occurrence has passed: not sent late
    _run(brand, days=5)  # Monday 15:00
    assert len(_enrollments(brand, jid)) == 1
    _run(brand, hours=1)
    assert len(_enrollments(brand, jid)) == 1  # once per occurrence
