"""Incremental stitching: batch by batch gives the same people as one full rebuild; merges and
splits are logged with their evidence; an operator can unmerge."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quanyu.identity.lookup import history, links_of, lookup, profile, timeline
from quanyu.identity.person_events import person_rows
from quanyu.identity.resolve import extend, rebuild, unmerge
from quanyu.warehouse.base import Append
from quanyu.warehouse.duckdb import DuckDBWarehouse
from quanyu.warehouse.schema import EVENTS

WS = "ws_test"
_SCHEMA = EVENTS.to_pyarrow()
_T0 = datetime(2026, 3, 1, tzinfo=UTC)
_ids = itertools.count()


def event(day: float, channel: str = "web", **ids: Any) -> dict[str, Any]:
    """An event row carrying identifiers: user_id, anonymous_id, phone, device, openid."""
    context: dict[str, Any] = {}
    if "device" in ids:
        context["device"] = {"id": ids.pop("device")}
    if "openid" in ids:
        context["externalIds"] = [{"type": "wechat_openid", "id": ids.pop("openid"), "app_id": "wx1"}]
    traits = {"phone": ids.pop("phone")} if "phone" in ids else {}
    return {
        "workspace_id": WS, "message_id": f"m{next(_ids):06d}", "type": "track", "event": "Viewed",
        "user_id": ids.pop("user_id", None), "anonymous_id": ids.pop("anonymous_id", None),
        "timestamp": _T0 + timedelta(days=day), "channel": channel, "source_type": channel,
        "traits": orjson.dumps(traits).decode(), "context": orjson.dumps(context).decode(), "batch_id": 0,
    }  # fmt: skip


def store(warehouse: DuckDBWarehouse, rows: list[dict[str, Any]], batch: int) -> None:
    for row in rows:
        row["batch_id"] = batch
    warehouse.write([Append("events", pa.Table.from_pylist(rows, schema=_SCHEMA))])


def batch_of(warehouse: DuckDBWarehouse, batch: int) -> Any:
    events = warehouse.table("events")
    return events.filter(events.workspace_id == WS, events.batch_id == batch)


def owners(warehouse: DuckDBWarehouse) -> dict[str, str]:
    nodes = warehouse.table("identity_nodes")
    rows = warehouse.execute(nodes.filter(nodes.workspace_id == WS).select("key", "profile_id")).to_pylist()
    return {r["key"]: r["profile_id"] for r in rows}


def person_events_of(warehouse: DuckDBWarehouse) -> list[tuple[str, str, str]]:
    """The stored person events as (message id, key, profile id), sorted."""
    table = warehouse.table("person_events")
    rows = warehouse.execute(table.filter(table.workspace_id == WS).select("message_id", "key", "profile_id"))
    return sorted(zip(*(rows.column(c).to_pylist() for c in rows.column_names), strict=True))


def attributed(warehouse: DuckDBWarehouse) -> list[tuple[str, str, str]]:
    """The same, derived from the events and the graph as they stand (what it must equal)."""
    t = warehouse.table
    rows = warehouse.execute(
        person_rows(t("events"), t("identity_event_keys"), t("identity_nodes"), WS).select(
            "message_id", "key", "profile_id"
        )
    )
    return sorted(zip(*(rows.column(c).to_pylist() for c in rows.column_names), strict=True))


@pytest.fixture
def warehouse() -> Any:
    wh = DuckDBWarehouse(":memory:")
    yield wh
    wh.close()


# Small pools so that random events collide: shared devices, people with several phones, …
_identifier = st.one_of(
    st.tuples(st.just("user_id"), st.sampled_from([f"u{i}" for i in range(6)])),
    st.tuples(st.just("anonymous_id"), st.sampled_from([f"a{i}" for i in range(10)])),
    st.tuples(st.just("phone"), st.sampled_from([f"1380000{i:04d}" for i in range(5)])),
    st.tuples(st.just("device"), st.sampled_from(["ipad-1", "ipad-2", "pc-3"])),
    st.tuples(st.just("openid"), st.sampled_from([f"o{i}" for i in range(6)])),
)
_event = st.tuples(st.integers(0, 40), st.lists(_identifier, min_size=1, max_size=3))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history_=st.lists(_event, min_size=1, max_size=25), cuts=st.lists(st.integers(0, 25), max_size=4))
def test_batch_by_batch_equals_one_rebuild(history_: list[Any], cuts: list[int]) -> None:
    rows = [event(day, **dict(ids)) for day, ids in history_]
    bounds = sorted({0, len(rows), *[min(c, len(rows)) for c in cuts]})
    inc, full = DuckDBWarehouse(":memory:"), DuckDBWarehouse(":memory:")
    try:
        for batch, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            store(inc, [dict(r) for r in rows[lo:hi]], batch)
            extend(inc, WS, batch_of(inc, batch))
        store(full, [dict(r) for r in rows], 0)
        rebuild(full, WS)
        assert owners(inc) == owners(full)
        # Person events follow every merge and split, batch by batch, and match a rebuild's.
        assert person_events_of(inc) == attributed(inc) == person_events_of(full)
        # Replaying a batch is a no-op.
        before = owners(inc)
        extend(inc, WS, batch_of(inc, 0))
        assert owners(inc) == before
        assert person_events_of(inc) == attributed(inc)
    finally:
        inc.close()
        full.close()


def test_a_phone_seen_on_wechat_and_tmall_merges_two_people_and_says_why(warehouse: DuckDBWarehouse) -> None:
    store(warehouse, [event(1, "wechat", openid="o-1", phone="13800001111"),
                      event(2, "tmall", user_id="tb-buyer-9", anonymous_id="tm-1")], 0)  # fmt: skip
    extend(warehouse, WS, batch_of(warehouse, 0))
    wechat, tmall = (
        lookup(warehouse, WS, "phone", "13800001111"),
        lookup(warehouse, WS, "user_id", "tb-buyer-9"),
    )
    assert wechat["profile_id"] != tmall["profile_id"]

    store(warehouse, [event(3, "tmall", user_id="tb-buyer-9", phone="13800001111")], 1)
    result = extend(warehouse, WS, batch_of(warehouse, 1))
    assert result.merges == 1 and result.merged_away == 1
    merged = lookup(warehouse, WS, "user_id", "tb-buyer-9")
    assert merged["profile_id"] == wechat["profile_id"]  # the earlier anchor survives
    assert profile(warehouse, WS, tmall["profile_id"])["redirected_from"] == tmall["profile_id"]
    log = history(warehouse, WS, merged["profile_id"])["items"]
    assert [c["kind"] for c in log] == ["merge"]
    assert "phone:13800001111" in log[0]["explanation"] and "tmall" in log[0]["explanation"]
    assert log[0]["reason"]["links"][0]["channel"] == "tmall"
    events = timeline(warehouse, WS, tmall["profile_id"], order="asc")["items"]
    assert [e["channel"] for e in events] == ["wechat", "tmall", "tmall"]


def test_unmerge_splits_the_person_and_stays_split(warehouse: DuckDBWarehouse) -> None:
    store(warehouse, [event(1, "web", user_id="alice", device="family-ipad"),
                      event(2, "web", anonymous_id="bob-cookie", device="family-ipad")], 0)  # fmt: skip
    extend(warehouse, WS, batch_of(warehouse, 0))
    pid = lookup(warehouse, WS, "user_id", "alice")["profile_id"]
    assert lookup(warehouse, WS, "anonymous_id", "bob-cookie")["profile_id"] == pid

    result = unmerge(
        warehouse,
        WS,
        [("anonymous_id:bob-cookie", "device_id:family-ipad")],
        "ops@brand",
        "两个人 / two people",
    )
    assert result.splits == 1
    assert lookup(warehouse, WS, "anonymous_id", "bob-cookie")["profile_id"] != pid
    assert person_events_of(warehouse) == attributed(warehouse)  # bob's events left alice
    assert lookup(warehouse, WS, "user_id", "alice")["profile_id"] == pid
    split = history(warehouse, WS, pid)["items"][0]
    assert split["kind"] == "split" and "ops@brand" in split["explanation"]
    statuses = {(i["a"], i["b"]): i["status"] for i in links_of(warehouse, WS, pid)["items"]}
    assert statuses[("anonymous_id:bob-cookie", "device_id:family-ipad")] == "excluded"

    # New evidence of the same wrong link does not undo the operator's decision, nor does a rebuild.
    store(warehouse, [event(3, "web", anonymous_id="bob-cookie", device="family-ipad")], 1)
    extend(warehouse, WS, batch_of(warehouse, 1))
    rebuild(warehouse, WS)
    assert lookup(warehouse, WS, "anonymous_id", "bob-cookie")["profile_id"] != pid


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.text(min_size=1, max_size=30).filter(lambda v: v.strip()))
def test_point_lookups_treat_any_value_as_data(value: str) -> None:
    """Quotes, SQL fragments, unicode: a lookup value is a literal in a tree, never SQL text."""
    from quanyu.errors import InvalidInput, NotFound

    wh = DuckDBWarehouse(":memory:")
    try:
        store(wh, [event(1, user_id=value), event(2, user_id="other")], 0)
        extend(wh, WS, batch_of(wh, 0))
        try:
            found = lookup(wh, WS, "user_id", value)
        except InvalidInput:
            return  # junk or blank after normalisation: refused, and clearly
        assert [i["type"] for i in found["identifiers"]] == ["user_id"]
        assert lookup(wh, WS, "user_id", "other")["profile_id"] != found["profile_id"]
        try:
            lookup(wh, WS, "user_id", value + "' OR '1'='1")
        except (NotFound, InvalidInput):
            pass
        else:
            raise AssertionError("an injected value found someone")
    finally:
        wh.close()


def test_a_warehouse_from_before_person_events_derives_them_once(tmp_path: Any) -> None:
    path = str(tmp_path / "old.duckdb")
    wh = DuckDBWarehouse(path)
    store(wh, [event(1, "web", user_id="alice", anonymous_id="c1"), event(2, "web", anonymous_id="c2")], 0)
    extend(wh, WS, batch_of(wh, 0))
    expected = person_events_of(wh)
    wh._cursor().execute("DROP TABLE person_events")  # as a file written by an older version
    wh.close()
    reopened = DuckDBWarehouse(path)
    try:
        assert person_events_of(reopened) == expected == attributed(reopened)
        assert len(expected) == 2
    finally:
        reopened.close()
