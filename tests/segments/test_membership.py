"""Membership as users see it: who is in a segment, since when, and a log of every entry and exit
with the definition version, the run and the mode; refreshing twice over the same data logs
nothing; pages walk every member once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from profiles.profilekit import Ledger
from quanyu.errors import QueryTimeout
from quanyu.platform import Platform
from quanyu.segments.event_groups import EventGroupSpec
from quanyu.segments.membership import log_page, members_page, refresh_membership, refresh_workspace
from quanyu.segments.saved import SegmentCreate, SegmentUpdate
from quanyu.segments.schedule import run_schedule
from segments.segmentkit import BOUGHT_LAST_30, NOT_REACHED_30, NOW, rematerialise
from testkit import Tenant


def save(platform: Platform, ws: str, name: str, definition: dict[str, Any]) -> str:
    return str(platform.segments.create(ws, SegmentCreate(name=name, definition=definition), "test")["id"])


def log_of(platform: Platform, ws: str, sid: str) -> list[tuple[str, str, int, str]]:
    items = log_page(platform.warehouse, ws, sid, limit=1000)["items"]
    return sorted((i["profile_id"], i["kind"], i["version"], i["mode"]) for i in items)


def members_of(platform: Platform, ws: str, sid: str) -> set[str]:
    return {m["profile_id"] for m in members_page(platform.warehouse, ws, sid, limit=1000)["items"]}


def test_entries_exits_and_versions_are_logged(platform: Platform, tenant: Tenant, shop: Ledger) -> None:
    ws = tenant.workspace_id
    sid = save(platform, ws, "近30天购买 Bought in 30 days", BOUGHT_LAST_30)

    first = refresh_membership(platform.warehouse, platform.segments, ws, sid, now=NOW, mode="scheduled")
    assert (first.members, first.entered, first.exited, first.version) == (3, 3, 0, 1)
    assert members_of(platform, ws, sid) == {"prof_li", "prof_han", "prof_evil"}
    assert log_of(platform, ws, sid) == [
        ("prof_evil", "entered", 1, "scheduled"),
        ("prof_han", "entered", 1, "scheduled"),
        ("prof_li", "entered", 1, "scheduled"),
    ]

    # Three weeks on: li's and evil's orders are older than 30 days, han's is not.
    later = refresh_membership(platform.warehouse, platform.segments, ws, sid, now=NOW + timedelta(days=21))
    assert (later.members, later.entered, later.exited) == (1, 0, 2)
    assert members_of(platform, ws, sid) == {"prof_han"}

    # A new version (orders of 200 or more in 90 days) lets li back in under version 2.
    wider = {"conditions": [{"event": "Order Completed", "window": {"last": 90, "unit": "day"},
                             "sum": {"property": "amount", "op": "gte", "value": 200}}]}  # fmt: skip
    platform.segments.update(ws, sid, SegmentUpdate(definition=wider), "test")
    again = refresh_membership(platform.warehouse, platform.segments, ws, sid, now=NOW + timedelta(days=21))
    assert (again.version, again.entered, again.exited) == (2, 1, 0)
    assert log_of(platform, ws, sid)[-3:] == [
        ("prof_li", "entered", 1, "scheduled"),
        ("prof_li", "entered", 2, "on_demand"),
        ("prof_li", "exited", 1, "on_demand"),
    ]
    li = next(m for m in members_page(platform.warehouse, ws, sid)["items"] if m["profile_id"] == "prof_li")
    assert li["version"] == 2 and li["since"].startswith("2026-05-21") and li["name"] == "李雷"
    assert li["city"] == "上海" and li["order_count"] == 2 and li["revenue"] == 200.0

    shown = platform.segments.get(ws, sid)["membership"]
    assert shown == {
        "members": 2,
        "refreshed_at": again.at.isoformat(),
        "refreshed_version": 2,
        "error": None,
    }


def test_a_second_refresh_over_the_same_data_logs_nothing(
    platform: Platform, tenant: Tenant, shop: Ledger
) -> None:
    ws = tenant.workspace_id
    sid = save(platform, ws, "近30天购买 Bought in 30 days", BOUGHT_LAST_30)
    refresh_membership(platform.warehouse, platform.segments, ws, sid, now=NOW)
    before = log_page(platform.warehouse, ws, sid, limit=1000)["items"]
    repeat = refresh_membership(platform.warehouse, platform.segments, ws, sid, now=NOW + timedelta(hours=1))
    assert (repeat.entered, repeat.exited, repeat.members) == (0, 0, 3)
    assert log_page(platform.warehouse, ws, sid, limit=1000)["items"] == before

    # New data: mei orders; only her entry is logged.
    shop.order("mei", 59, 66.0, source_type="mini_program")
    rematerialise(shop)
    step = refresh_membership(platform.warehouse, platform.segments, ws, sid, now=NOW + timedelta(hours=2))
    assert (step.entered, step.exited) == (1, 0)
    assert len(log_page(platform.warehouse, ws, sid, limit=1000)["items"]) == len(before) + 1


def test_what_counts_as_a_touch_is_the_workspaces_event_group(
    platform: Platform, tenant: Tenant, shop: Ledger
) -> None:
    ws = tenant.workspace_id
    groups = platform.segments.event_groups
    groups.put(ws, "touch", EventGroupSpec(events=["Message Delivered"]), "test")
    sid = save(platform, ws, "30天未触达 Not reached in 30 days", NOT_REACHED_30)
    refresh_membership(platform.warehouse, platform.segments, ws, sid, now=NOW)
    assert members_of(platform, ws, sid) == {"prof_li", "prof_mei", "prof_evil"}

    # The brand decides browsing the mini-program counts as reaching someone too.
    groups.put(ws, "touch", EventGroupSpec(events=["Message Delivered", "Page Viewed"]), "test")
    moved = refresh_membership(platform.warehouse, platform.segments, ws, sid, now=NOW)
    assert (moved.entered, moved.exited) == (0, 1)
    assert members_of(platform, ws, sid) == {"prof_li", "prof_evil"}


def test_pages_walk_every_member_and_log_entry_once(platform: Platform, tenant: Tenant, shop: Ledger) -> None:
    ws = tenant.workspace_id
    for i in range(23):
        shop.order(f"extra{i:02d}", 50, 10.0 + i)
    rematerialise(shop)
    sid = save(platform, ws, "近30天购买 Bought in 30 days", BOUGHT_LAST_30)
    refresh_membership(platform.warehouse, platform.segments, ws, sid, now=NOW)

    seen: list[str] = []
    cursor = None
    while True:
        page = members_page(platform.warehouse, ws, sid, limit=5, cursor=cursor)
        assert page["total"] == 26 and len(page["items"]) <= 5
        seen += [m["profile_id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(set(seen)) == 26

    refresh_membership(platform.warehouse, platform.segments, ws, sid, now=NOW + timedelta(days=26))
    entries: list[tuple[str, str]] = []
    cursor = None
    while True:
        page = log_page(platform.warehouse, ws, sid, limit=4, cursor=cursor)
        entries += [(e["profile_id"], e["kind"]) for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(entries) == len(set(entries)) == 26 + 26  # everyone entered, then left (orders ≤ day 55)
    assert {k for _, k in entries[:26]} == {"exited"}  # newest first


def test_refreshing_a_workspace_keeps_going_past_a_failing_segment(
    platform: Platform, tenant: Tenant, shop: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tenant.workspace_id
    good = save(platform, ws, "A 近30天购买", BOUGHT_LAST_30)
    slow = save(platform, ws, "B 慢 slow", {"conditions": [{"trait": "city", "op": "eq", "value": "上海"}]})
    real = platform.warehouse.execute

    def execute(expr: Any, timeout: float | None = None) -> Any:
        if "上海" in str(expr.compile()) and timeout is not None:
            raise QueryTimeout("too slow")
        return real(expr, timeout=timeout)

    monkeypatch.setattr(platform.warehouse, "execute", execute)
    done = refresh_workspace(platform.warehouse, platform.segments, ws, now=NOW, mode="scheduled")
    assert [r["segment_id"] for r in done["refreshed"]] == [good]
    assert [(f["segment_id"], f["code"]) for f in done["failed"]] == [(slow, "segment_timeout")]
    assert "QUANYU_SEGMENT_TIMEOUT_SECONDS" in platform.segments.get(ws, slow)["membership"]["error"]
    assert platform.segments.get(ws, good)["membership"]["members"] == 3


def test_the_schedule_refreshes_every_segment_until_stopped(
    platform: Platform, tenant: Tenant, shop: Ledger
) -> None:
    ws = tenant.workspace_id
    sid = save(platform, ws, "买过 Ever bought", {"conditions": [{"event": "Order Completed"}]})
    stop = threading.Event()
    worker = threading.Thread(
        target=run_schedule,
        args=(stop, 0.05, lambda: platform.warehouse, platform.segments, lambda: [ws], 5.0),
    )
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while platform.segments.get(ws, sid)["membership"]["members"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=20)
    assert not worker.is_alive()
    assert platform.segments.get(ws, sid)["membership"]["members"] == 3
    assert {e["mode"] for e in log_page(platform.warehouse, ws, sid)["items"]} == {"scheduled"}
