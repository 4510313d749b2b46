"""Real-time entry as users depend on it: which segments the pipeline decides as events arrive
(and why, node by node), people entering and leaving them within the drain that brought their
events, without any scheduled refresh; scheduled segments left to the schedule; nothing logged
twice; one broken segment never stopping the pipeline; the signal stream and its cursor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import sqlglot

from profiles.profilekit import Brand
from quanyu.errors import InvalidInput
from quanyu.platform import Platform
from quanyu.segments import realtime
from quanyu.segments.definition import parse_definition
from quanyu.segments.membership import log_page, members_page, refresh_membership, refresh_people
from quanyu.segments.realtime import mode_of
from quanyu.segments.saved import SegmentCreate, SegmentUpdate
from quanyu.segments.signals import Signal, signals_page
from testkit import Tenant

RECENT = {"last": 30, "unit": "day"}
REDEEMED = {"event": "Coupon Redeemed", "where": [{"property": "amount", "op": "gte", "value": 50}]}
# Redeemed a coupon worth 50 or more in the last 30 days, and lives in 上海.
SHANGHAI_REDEEMERS = {
    "conditions": [{**REDEEMED, "window": RECENT}, {"trait": "city", "op": "eq", "value": "上海"}]
}
TWICE = {"conditions": [{**REDEEMED, "count": {"op": "gte", "value": 2}}]}


def _mode(conditions: list[dict[str, Any]], **segments: dict[str, Any]) -> tuple[str, list[str]]:
    parsed = {sid: parse_definition(d) for sid, d in segments.items()}
    mode, reasons = mode_of(parse_definition({"conditions": conditions}), parsed.get)
    for r in reasons:  # every reason is bilingual: Chinese, then " / ", then English
        assert " / " in r.message and any("\u4e00" <= ch <= "\u9fff" for ch in r.message), r
    return mode, [r.path for r in reasons]


# ---------------------------------------------------------------------------------------------
# Which mode


@pytest.mark.parametrize(
    "condition",
    [
        {"trait": "city", "op": "in", "value": ["上海", "杭州"]},
        {"trait": "revenue", "op": "gte", "value": 1000},
        {"trait": "last_purchase_at", "op": "gte", "value": "2026-01-01"},
        {"trait": "member_level", "op": "exists"},
        {"identifier": "phone", "op": "exists"},
        {"tag": "VIP"},
        {"reachable": "sms"},
        {"not": {"tag": "VIP"}},
        {"not": {"trait": "city", "op": "eq", "value": "上海"}},
        {"event": "Order Completed"},
        {"event": ["Order Completed", "Order Paid"], "channel": ["tmall"], "source_type": ["tmall"]},
        {"type": "page", "event": "商品详情"},
        {"event_group": "touch"},
        {**REDEEMED, "count": {"op": "gte", "value": 1}},  # the same as "did it"
        {"match": "any", "conditions": [{"tag": "VIP"}, {"event": "Order Completed"}]},
    ],
)
def test_conditions_decided_by_one_event_are_realtime(condition: dict[str, Any]) -> None:
    assert _mode([condition]) == ("realtime", ["(root)"])


def test_a_rolling_window_is_realtime_and_says_who_handles_its_expiry() -> None:
    mode, paths = _mode([{"tag": "VIP"}, {**REDEEMED, "window": RECENT}])
    assert (mode, paths) == ("realtime", ["(root)", "conditions[1].window"])


@pytest.mark.parametrize(
    ("condition", "path"),
    [
        ({**REDEEMED, "count": {"op": "gte", "value": 2}}, "conditions[0].count"),
        ({**REDEEMED, "count": {"op": "eq", "value": 0}}, "conditions[0].count"),
        ({**REDEEMED, "sum": {"property": "amount", "op": "gte", "value": 500}}, "conditions[0].sum"),
        ({**REDEEMED, "avg": {"property": "amount", "op": "gte", "value": 50}}, "conditions[0].avg"),
        ({**REDEEMED, "min": {"property": "amount", "op": "gte", "value": 50}}, "conditions[0].min"),
        ({**REDEEMED, "max": {"property": "amount", "op": "gte", "value": 50}}, "conditions[0].max"),
        ({**REDEEMED, "first_time": {"within": RECENT}}, "conditions[0].first_time"),
        ({**REDEEMED, "last_time": {"before": {"days_ago": 30}}}, "conditions[0].last_time"),
        ({**REDEEMED, "window": {"calendar": "this_month"}}, "conditions[0].window"),
        ({**REDEEMED, "window": {"from": "2026-03-01", "to": "2026-04-01"}}, "conditions[0].window"),
        ({"event": "Order Completed", "where": [{"property": "due", "op": "lt", "value": {"days_ago": 0}}]},
         "conditions[0].where[0].value"),
        ({"not": {"event": "Order Completed"}}, "conditions[0].not"),
        ({"not": {"event_group": "touch", "window": RECENT}}, "conditions[0].not"),
        ({"not": {"match": "any", "conditions": [{"tag": "VIP"}, {"event": "Order Completed"}]}},
         "conditions[0].not"),
        ({"not": {**REDEEMED, "count": {"op": "gte", "value": 3}}}, "conditions[0].not.count"),
        ({"sequence": {"steps": [{"event": "Product Added"}, {"event": "Order Completed"}],
                       "within": {"value": 3, "unit": "day"}, "then": "did_not"}}, "conditions[0].sequence"),
        ({"trait": "last_seen", "op": "within", "value": RECENT}, "conditions[0].op"),
        ({"trait": "last_seen", "op": "not_within", "value": RECENT}, "conditions[0].op"),
        ({"trait": "birthday", "op": "anniversary_within", "value": {"days": 7}}, "conditions[0].op"),
        ({"trait": "last_purchase_at", "op": "lt", "value": {"days_ago": 90}}, "conditions[0].value"),
        ({"trait": "rfm_segment", "op": "eq", "value": "champions"}, "conditions[0].trait"),
    ],
)  # fmt: skip
def test_conditions_that_change_with_time_or_history_are_scheduled(
    condition: dict[str, Any], path: str
) -> None:
    assert _mode([{"tag": "VIP"}, {"match": "any", "conditions": [{"reachable": "sms"}, condition]}]) == (
        "scheduled",
        [path.replace("conditions[0]", "conditions[1].conditions[1]", 1)],
    )


def test_every_scheduled_node_is_named() -> None:
    mode, paths = _mode([{**REDEEMED, "count": {"op": "gte", "value": 2}, "window": {"calendar": "today"}},
                         {"not": {"event": "Order Completed"}}])  # fmt: skip
    assert mode == "scheduled"
    assert paths == ["conditions[0].count", "conditions[0].window", "conditions[1].not"]


def test_segments_used_are_classified_through_their_definitions() -> None:
    assert _mode([{"segment": "seg_live"}], seg_live={"conditions": [{"event": "Order Completed"}]}) == (
        "realtime",
        ["(root)"],
    )
    assert _mode([{"tag": "VIP"}, {"segment": "seg_twice"}], seg_twice=TWICE) == (
        "scheduled",
        ["conditions[1]<seg_twice>.conditions[0].count"],
    )
    # Two levels down, and a `not` around a segment made of events.
    assert _mode([{"segment": "seg_outer"}], seg_outer={"conditions": [{"segment": "seg_twice"}]},
                 seg_twice=TWICE)[1] == ["conditions[0]<seg_outer>.conditions[0]<seg_twice>.conditions[0].count"]  # fmt: skip
    assert _mode(
        [{"not": {"segment": "seg_buyers"}}], seg_buyers={"conditions": [{"event": "Order Completed"}]}
    ) == (
        "scheduled",
        ["conditions[0].not"],
    )
    assert _mode([{"not": {"segment": "seg_vip"}}], seg_vip={"conditions": [{"tag": "VIP"}]})[0] == "realtime"
    assert _mode([{"segment": "seg_gone"}]) == ("scheduled", ["conditions[0].segment"])


# ---------------------------------------------------------------------------------------------
# In the pipeline


def save(platform: Platform, ws: str, name: str, definition: dict[str, Any]) -> str:
    return str(platform.segments.create(ws, SegmentCreate(name=name, definition=definition), "test")["id"])


def log_of(platform: Platform, ws: str, sid: str) -> list[tuple[str, str, str]]:
    items = log_page(platform.warehouse, ws, sid, limit=1000)["items"]
    return sorted((i["profile_id"], i["kind"], i["mode"]) for i in reversed(items))


def members_of(platform: Platform, ws: str, sid: str) -> set[str]:
    return {m["profile_id"] for m in members_page(platform.warehouse, ws, sid, limit=1000)["items"]}


def identify(user: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "traits": traits}


def redeemed(user: str, amount: float) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": "Coupon Redeemed", "properties": {"amount": amount}}


@pytest.fixture
def brand(platform: Platform, tenant: Tenant) -> Brand:
    return Brand(platform, tenant.workspace_id)


def test_an_event_enters_and_a_trait_change_exits_without_a_scheduled_refresh(
    platform: Platform, brand: Brand
) -> None:
    ws = brand.workspace_id
    sid = save(platform, ws, "上海领券 Shanghai redeemers", SHANGHAI_REDEEMERS)
    heard: list[Signal] = []
    platform.segments.signals.subscribe(heard.extend)

    brand.send("mini_program", identify("u-li", city="上海"), redeemed("u-li", 30))  # too small
    brand.send("mini_program", identify("u-han", city="杭州"), redeemed("u-han", 80))  # wrong city
    assert members_of(platform, ws, sid) == set() and not heard

    brand.send("mini_program", redeemed("u-li", 60))
    li = brand.profile_of("u-li")
    assert members_of(platform, ws, sid) == {li}
    assert log_of(platform, ws, sid) == [(li, "entered", "realtime")]
    assert [(s.signal, s.profile_id, s.mode) for s in heard] == [("segment_entered", li, "realtime")]
    shown = platform.segments.get(ws, sid)
    assert shown["mode"] == "realtime" and shown["membership"]["members"] == 1

    brand.send("crm", identify("u-li", city="北京"))  # moved away: a trait, no coupon
    assert members_of(platform, ws, sid) == set()
    assert log_of(platform, ws, sid) == [(li, "entered", "realtime"), (li, "exited", "realtime")]
    assert [s.signal for s in heard] == ["segment_entered", "segment_exited"]
    assert platform.segments.get(ws, sid)["membership"]["members"] == 0

    # The scheduled refresh agrees with what the pipeline decided: nothing to change.
    done = refresh_membership(platform.warehouse, platform.segments, ws, sid, mode="scheduled")
    assert (done.entered, done.exited, done.members) == (0, 0, 0)


def test_scheduled_segments_are_left_to_the_schedule(platform: Platform, brand: Brand) -> None:
    ws = brand.workspace_id
    twice = save(platform, ws, "两次 Twice", TWICE)
    once = save(platform, ws, "一次 Once", {"conditions": [REDEEMED]})
    brand.send("mini_program", redeemed("u-li", 60), redeemed("u-li", 70))
    li = brand.profile_of("u-li")
    assert members_of(platform, ws, once) == {li}
    assert members_of(platform, ws, twice) == set() and log_of(platform, ws, twice) == []

    refresh_membership(platform.warehouse, platform.segments, ws, twice, mode="scheduled")
    assert log_of(platform, ws, twice) == [(li, "entered", "scheduled")]


def test_running_the_stage_again_logs_nothing_new(platform: Platform, brand: Brand) -> None:
    ws = brand.workspace_id
    sid = save(platform, ws, "上海领券 Shanghai redeemers", SHANGHAI_REDEEMERS)
    brand.send("mini_program", identify("u-li", city="上海"), redeemed("u-li", 60))
    brand.send("mini_program", identify("u-mei", city="上海"), redeemed("u-mei", 90))
    before = log_of(platform, ws, sid)
    assert len(before) == 2

    # The identity stage takes the same batches in again (as after a crash before it recorded
    # them): stitch, profile refresh and realtime segments run again and change nothing.
    platform.warehouse.query(sqlglot.parse_one("DELETE FROM identity_batches"), {})
    assert platform.pipeline.drain().people["batches"] > 0
    done = platform.realtime.on_profiles(platform.warehouse, ws, [brand.profile_of("u-li")])
    assert [(r.entered, r.exited) for r in done] == [(0, 0)]
    assert log_of(platform, ws, sid) == before


def test_one_broken_segment_does_not_stop_the_pipeline(
    platform: Platform, brand: Brand, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = brand.workspace_id
    broken = save(platform, ws, "坏的 Broken", {"conditions": [REDEEMED]})
    fine = save(platform, ws, "好的 Fine", {"conditions": [REDEEMED]})
    real = realtime.refresh_people

    def flaky(
        warehouse: Any, store: Any, workspace_id: str, segment_id: str, ids: Sequence[str], **kw: Any
    ) -> Any:
        if segment_id == broken:
            raise InvalidInput("模拟故障 / simulated failure", code="segment_timeout")
        return real(warehouse, store, workspace_id, segment_id, ids, **kw)

    monkeypatch.setattr(realtime, "refresh_people", flaky)
    brand.send("mini_program", redeemed("u-li", 60))
    li = brand.profile_of("u-li")
    assert members_of(platform, ws, fine) == {li} and members_of(platform, ws, broken) == set()
    error = platform.segments.get(ws, broken)["membership"]["error"]
    assert "realtime evaluation failed" in error and "simulated failure" in error
    assert platform.pipeline.drain().batches == 0  # the queue is empty: the drain went through

    # Even a failure before any segment is looked at (the store unreachable) is only logged.
    def down(_ws: str) -> Any:
        raise RuntimeError("operational store unreachable")

    monkeypatch.setattr(platform.segments, "live_definitions", down)
    brand.send("mini_program", redeemed("u-mei", 60))
    assert brand.profile_of("u-mei")  # stitched and processed all the same

    # Mended: the next event enters, and the error is cleared.
    monkeypatch.undo()
    brand.send("mini_program", redeemed("u-han", 60))
    assert brand.profile_of("u-han") in members_of(platform, ws, broken)
    assert platform.segments.get(ws, broken)["membership"]["error"] is None


def test_a_segment_that_becomes_scheduled_leaves_the_pipeline(platform: Platform, brand: Brand) -> None:
    ws = brand.workspace_id
    sid = save(platform, ws, "领券 Redeemers", {"conditions": [REDEEMED]})
    brand.send("mini_program", redeemed("u-li", 60))
    platform.segments.update(ws, sid, SegmentUpdate(definition=TWICE), "test")
    assert platform.segments.get(ws, sid)["mode"] == "scheduled"
    brand.send("mini_program", redeemed("u-mei", 60))
    assert members_of(platform, ws, sid) == {brand.profile_of("u-li")}  # mei waits for the schedule


def test_a_segment_changed_or_deleted_meanwhile_is_left_alone(platform: Platform, brand: Brand) -> None:
    ws = brand.workspace_id
    sid = save(platform, ws, "领券 Redeemers", {"conditions": [REDEEMED]})
    brand.send("mini_program", redeemed("u-li", 60))
    li = brand.profile_of("u-li")
    stale = parse_definition({"conditions": [{"tag": "nobody"}]})
    platform.segments.update(ws, sid, SegmentUpdate(description="v2"), "test")  # version 2 now

    # A run still holding version 1's definition (read before the change) writes nothing.
    done = refresh_people(platform.warehouse, platform.segments, ws, sid, [li], version=1, definition=stale)
    assert (done.entered, done.exited) == (0, 0) and members_of(platform, ws, sid) == {li}
    platform.segments.delete(ws, sid, "test")
    done = refresh_people(platform.warehouse, platform.segments, ws, sid, [li], version=2, definition=stale)
    assert (done.entered, done.exited) == (0, 0) and len(log_of(platform, ws, sid)) == 1


# ---------------------------------------------------------------------------------------------
# Signals


def test_signals_page_oldest_first_across_modes(platform: Platform, brand: Brand) -> None:
    ws = brand.workspace_id
    redeemers = save(platform, ws, "领券 Redeemers", {"conditions": [REDEEMED]})
    shanghai = save(
        platform, ws, "上海 Shanghai", {"conditions": [{"trait": "city", "op": "eq", "value": "上海"}]}
    )
    brand.send("mini_program", identify("u-li", city="上海"), redeemed("u-li", 60))
    brand.send("mini_program", redeemed("u-mei", 60))
    twice = save(platform, ws, "两次 Twice", TWICE)
    brand.send("mini_program", redeemed("u-mei", 70))
    refresh_membership(platform.warehouse, platform.segments, ws, twice, mode="scheduled")
    li, mei = brand.profile_of("u-li"), brand.profile_of("u-mei")

    everything = signals_page(platform.warehouse, ws, limit=1000)["items"]
    assert sorted(
        (s["signal"], s["segment_id"], s["profile_id"], s["mode"]) for s in everything[:2]
    ) == sorted(
        [("segment_entered", redeemers, li, "realtime"), ("segment_entered", shanghai, li, "realtime")]
    )
    assert [(s["segment_id"], s["profile_id"], s["mode"]) for s in everything[2:]] == [
        (redeemers, mei, "realtime"),
        (twice, mei, "scheduled"),
    ]

    # Page by page with the cursor: the same signals, once each; then polling finds nothing.
    seen, cursor = [], None
    while True:
        page = signals_page(platform.warehouse, ws, cursor, limit=1)
        assert page["next_cursor"]
        if not page["items"]:
            break
        seen += page["items"]
        cursor = page["next_cursor"]
    assert seen == everything
    assert signals_page(platform.warehouse, ws, cursor)["items"] == []
    brand.send("crm", identify("u-li", city="北京"))
    later = signals_page(platform.warehouse, ws, cursor)["items"]
    assert [(s["signal"], s["segment_id"]) for s in later] == [("segment_exited", shanghai)]

    only = signals_page(platform.warehouse, ws, segment_id=twice)["items"]
    assert [s["profile_id"] for s in only] == [mei]
    with pytest.raises(InvalidInput, match="cursor"):
        signals_page(platform.warehouse, ws, "not-a-cursor")


def test_a_subscriber_that_fails_changes_nothing(platform: Platform, brand: Brand) -> None:
    ws = brand.workspace_id
    sid = save(platform, ws, "领券 Redeemers", {"conditions": [REDEEMED]})
    heard: list[str] = []

    def bad(_signals: Sequence[Signal]) -> None:
        raise RuntimeError("subscriber bug")

    platform.segments.signals.subscribe(bad)
    cancel = platform.segments.signals.subscribe(lambda signals: heard.extend(s.profile_id for s in signals))
    brand.send("mini_program", redeemed("u-li", 60))
    assert heard == [brand.profile_of("u-li")] and len(log_of(platform, ws, sid)) == 1
    cancel()
    brand.send("mini_program", redeemed("u-mei", 60))
    assert len(heard) == 1 and len(log_of(platform, ws, sid)) == 2


def test_modes_are_worked_out_from_saved_definitions(platform: Platform, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    twice = save(platform, ws, "两次 Twice", TWICE)
    uses = save(platform, ws, "上海两次 Shanghai twice", {"conditions": [{"tag": "VIP"}, {"segment": twice}]})
    listed = {s["id"]: s for s in platform.segments.all(ws)}
    assert listed[uses]["mode"] == "scheduled"
    assert [r["path"] for r in listed[uses]["reasons"]] == [f"conditions[1]<{twice}>.conditions[0].count"]
    # The segment it uses becomes realtime: so does this one.
    platform.segments.update(ws, twice, SegmentUpdate(definition={"conditions": [REDEEMED]}), "test")
    assert platform.segments.get(ws, uses)["mode"] == "realtime"


def test_known_people_enter_as_soon_as_their_event_is_stored(
    platform: Platform, brand: Brand, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path: no stitch and no profile refresh needed for someone the graph knows."""
    ws = brand.workspace_id
    sid = save(platform, ws, "领券 redeemers", {"conditions": [
        {"event": "Coupon Redeemed", "where": [{"property": "amount", "op": "gte", "value": 50}]}]})  # fmt: skip
    brand.send("mini_program", identify("u-known", city="上海"))
    known = brand.profile_of("u-known")

    # From here on the drain stores events but the identity stage does nothing.
    stage = platform.pipeline.identity
    monkeypatch.setattr(stage, "run", _Idle)
    brand.send("mini_program", redeemed("u-known", 80), redeemed("u-new", 90), redeemed("u-known", 10))
    assert members_of(platform, ws, sid) == {known}  # the new person waits for the stitch
    assert log_of(platform, ws, sid) == [(known, "entered", "realtime")]

    # A later small redemption, on the fast path, never makes anyone leave.
    brand.send("mini_program", redeemed("u-known", 5))
    assert log_of(platform, ws, sid) == [(known, "entered", "realtime")]

    monkeypatch.undo()
    brand.send("mini_program", identify("u-new", city="杭州"))  # the stitch takes u-new in
    assert members_of(platform, ws, sid) == {known, brand.profile_of("u-new")}


class _Idle:
    def public(self) -> dict[str, int]:
        return {}
