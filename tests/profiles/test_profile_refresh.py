"""Refreshing some profiles gives them exactly the rows a full refresh would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profilekit import Ledger, row_of

from quanyu.profiles import refresh
from quanyu.warehouse.duckdb import DuckDBWarehouse

NOW = datetime(2026, 9, 1, tzinfo=UTC)
RULES: list[dict[str, Any]] = [
    {"tag": "高价值", "all": [{"field": "rfm_monetary", "op": ">=", "value": 4}]},
    {"tag": "全渠道", "all": [{"field": "in_public_domain", "op": "=", "value": True},
                            {"field": "in_private_domain", "op": "=", "value": True}]},
    {"tag": "沉睡", "any": [{"field": "last_seen", "op": "<", "value": {"days_ago": 150}},
                          {"field": "traits.level", "op": "=", "value": "休眠"}]},
]  # fmt: skip
_SOURCES = ["website", "tmall", "jd", "pos", "crm", "wechat_oa", "douyin", "youzan"]
_event = st.tuples(
    st.sampled_from(_SOURCES),
    st.floats(0, 120, allow_nan=False),
    st.one_of(st.none(), st.floats(1, 2000, allow_nan=False)),  # an order's amount, or a visit
    st.one_of(st.none(), st.sampled_from(["金卡", "普通", "休眠"])),
)
_history = st.dictionaries(st.sampled_from("abcdefg"), st.lists(_event, min_size=1, max_size=5), min_size=2)


def _play(ledger: Ledger, person: str, events: list[tuple[str, float, float | None, str | None]]) -> None:
    for source, at, amount, level in events:
        traits = {"level": level} if level else None
        if amount is None:
            ledger.add(person, at, source, traits=traits)
        else:
            ledger.order(person, at, amount, source, traits=traits)


def _rows(ledger: Ledger, person: str) -> dict[str, Any] | None:
    row = row_of(ledger.warehouse, ledger.workspace_id, f"prof_{person}")
    return None if row is None else {k: v for k, v in row.items() if k != "updated_at"}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=_history, person=st.sampled_from("abcdefg"), more=st.lists(_event, min_size=1, max_size=3))
def test_incremental_equals_full(history: dict[str, list[Any]], person: str, more: list[Any]) -> None:
    warehouse = DuckDBWarehouse(":memory:")
    ledger = Ledger(warehouse)
    try:
        for who, events in sorted(history.items()):
            _play(ledger, who, events)
        ledger.store()
        refresh(warehouse, ledger.workspace_id, rules=RULES, now=NOW)
        _play(ledger, person, more)  # new data for one person (maybe a new one)
        ledger.store()
        refresh(warehouse, ledger.workspace_id, [f"prof_{person}"], rules=RULES, now=NOW)
        incremental = _rows(ledger, person)
        refresh(warehouse, ledger.workspace_id, rules=RULES, now=NOW)
        assert incremental == _rows(ledger, person)
        assert incremental is not None
    finally:
        warehouse.close()


def test_refreshing_an_unknown_id_removes_nothing_else(ledger: Ledger) -> None:
    ledger.order("a", 1, 10.0)
    ledger.add("b", 2)
    ledger.store()
    refresh(ledger.warehouse, ledger.workspace_id)
    result = refresh(ledger.warehouse, ledger.workspace_id, ["prof_nobody"])
    assert (result.profiles, result.removed) == (0, 1)
    assert _rows(ledger, "a") is not None and _rows(ledger, "b") is not None
    assert refresh(ledger.warehouse, "ws_other").profiles == 0
