"""The SQL the compiler writes: golden files per dialect, and DuckDB plans that read little.

Golden files (tests/golden/segments/<definition>.<dialect>.sql) are compiled against unbound
tables with the warehouse's schemas and a fixed evaluation moment, so they change only when
the compiler does. Review a change, then regenerate with QUANYU_REGENERATE_GOLDEN=1 (a missing
file is written on the first run).

PostgreSQL and Spark compile every definition here, but the result is a record of shape, not a
query to run there: trait and property keys are read with DuckDB's `json_extract_string`
(declared as a builtin), which neither engine has.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import pytest
import sqlglot
from crowd import EVENT_GROUPS, ISSUE_EXAMPLE, World, restaurant

from quanyu.segments.compiler import SegmentContext, compile_segment, segment_context
from quanyu.segments.definition import parse_definition
from quanyu.warehouse.schema import PERSON_EVENTS, PROFILES

GOLDEN = Path(__file__).parent.parent / "golden" / "segments"
EXAMPLES = Path(__file__).parent.parent.parent / "docs" / "examples" / "segments"
DIALECTS = ("duckdb", "postgres", "pyspark")
NOW = datetime(2026, 4, 30, tzinfo=UTC)


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return document


DEFINITIONS: dict[str, dict[str, Any]] = {
    "issue_example": ISSUE_EXAMPLE,
    "profile_fields": {
        "match": "any",
        "conditions": [
            {"trait": "revenue", "op": "between", "value": [100, 500]},
            {"trait": "last_purchase_at", "op": "not_within", "value": {"calendar": "last_month"}},
            {"trait": "birthday", "op": "anniversary_within", "value": {"days": 7}},
            {"trait": "channels", "op": "not_in", "value": ["pos", "jd"]},
            {"identifier": "phone", "op": "eq", "value": "+86 138-0000-1111"},
            {"reachable": "wecom"},
            {"trait": "city", "op": "neq", "value": "x'; DROP TABLE profiles; --"},
        ],
    },
    "abandoned_cart": {
        "conditions": [
            {"sequence": {"steps": [{"event": "Product Added"}, {"event": "Order Completed"}],
                          "within": {"value": 3, "unit": "day"}, "then": "did_not", "window": {"last": 30}}},
        ],
    },
    "bought_then_reviewed": {
        "conditions": [
            {"sequence": {"steps": [{"event": "Order Completed", "channel": ["tmall"]},
                                    {"type": "page", "event": "/review"}, {"event": "Review Submitted"}],
                          "within": {"value": 2, "unit": "week"}}},
        ],
    },
    "first_and_last_purchase": {
        "conditions": [
            {"event_group": "orders", "first_time": {"before": {"days_ago": 365}},
             "last_time": {"within": {"from": "2026-01-01", "to": "2026-04-01"}},
             "avg": {"property": "amount", "op": "gte", "value": 200}},
        ],
    },
    **{name: example(name) for name in (
        "winback_rolling_30_days_touch", "winback_this_month_any_activity", "bought_twice_in_90_days_no_touch_in_30",
        "followed_via_store_qr_never_bought", "high_value_tmall_never_in_store",
    )},
}  # fmt: skip

# Constructs a dialect cannot compile, with the error it gives (none at present: every
# definition above compiles for every dialect). An entry here is checked, not skipped.
UNSUPPORTED: dict[tuple[str, str], type[Exception]] = {}


class _SparkOptions(ibis.config.Config):
    """The options the PySpark backend registers when pyspark is installed (it is not here);
    Ibis's Spark compiler reads them."""

    treat_nan_as_null: bool = False


@pytest.fixture
def spark_options(monkeypatch: pytest.MonkeyPatch) -> None:
    if ibis.options.pyspark is None:
        monkeypatch.setattr(ibis.options, "pyspark", _SparkOptions())


def golden_context() -> SegmentContext:
    return SegmentContext(
        workspace_id="ws_golden",
        now=NOW,
        timezone=ZoneInfo("Asia/Shanghai"),
        profiles=ibis.table(PROFILES, name="profiles"),
        events=ibis.table(PERSON_EVENTS, name="person_events"),
        event_groups=EVENT_GROUPS,
        segments={
            "seg_123": parse_definition(
                {"conditions": [{"event": "Order Completed", "window": {"last": 90}}]}
            )
        }.get,
    )


@pytest.mark.usefixtures("spark_options")
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_sql_matches_golden_file(name: str, dialect: str) -> None:
    expr = compile_segment(parse_definition(DEFINITIONS[name]), golden_context())
    if (name, dialect) in UNSUPPORTED:
        with pytest.raises(UNSUPPORTED[(name, dialect)]):
            ibis.to_sql(expr, dialect=dialect)
        return
    sql = str(ibis.to_sql(expr, dialect=dialect)).strip() + "\n"
    sqlglot.parse_one(sql, read="spark" if dialect == "pyspark" else dialect)  # well-formed
    path = GOLDEN / f"{name}.{dialect}.sql"
    if not path.exists() or os.environ.get("QUANYU_REGENERATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    assert sql == path.read_text(), (
        f"SQL changed: review {path.name}, then regenerate with QUANYU_REGENERATE_GOLDEN=1"
    )


def test_golden_files_belong_to_a_definition() -> None:
    expected = {f"{name}.{dialect}.sql" for name in DEFINITIONS for dialect in DIALECTS}
    assert {p.name for p in GOLDEN.glob("*.sql")} == expected - {f"{n}.{d}.sql" for n, d in UNSUPPORTED}


def test_the_sql_holds_the_workspace_filter_and_bound_literals() -> None:
    sql = ibis.to_sql(compile_segment(parse_definition(DEFINITIONS["profile_fields"]), golden_context()))
    tree = sqlglot.parse_one(sql, read="duckdb")
    literals = [lit.this for lit in tree.find_all(sqlglot.exp.Literal) if lit.is_string]
    assert "ws_golden" in literals
    assert "x'; DROP TABLE profiles; --" in literals  # one literal, quoted by the SQL compiler
    assert "13800001111" in literals  # the phone as stored: normalised before it is bound


# ---------------------------------------------------------------------------------------------
# DuckDB plans: narrow scans, filters pushed into them


@pytest.fixture(scope="module")
def diners() -> Iterator[World]:
    world = restaurant(5, people=40)
    yield world
    world.close()


def plan(world: World, definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of the DuckDB plan (EXPLAIN in JSON)."""
    ctx = segment_context(world.warehouse, world.workspace_id, now=world.now, event_groups=EVENT_GROUPS)
    sql = ibis.to_sql(compile_segment(parse_definition(definition), ctx), dialect="duckdb")
    explain = sqlglot.exp.Command(this="EXPLAIN (FORMAT json)", expression=sqlglot.exp.Literal.string(sql))
    stack = json.loads(world.warehouse.query(explain, {}).column(1)[0].as_py())
    nodes: list[dict[str, Any]] = []
    while stack:
        node = stack.pop()
        stack.extend(node.get("children", []))
        nodes.append(node)
    return nodes


def scans(world: World, definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The table scans of the DuckDB plan: table, projected columns, filters."""
    found: list[dict[str, Any]] = []
    for node in plan(world, definition):
        if node.get("name") == "SEQ_SCAN":
            info = node["extra_info"]
            listed = [info.get(k, []) for k in ("Projections", "Filters")]
            columns, filters = ([v] if isinstance(v, str) else list(v) for v in listed)
            found.append({"table": info["Table"].rsplit(".", 1)[-1], "columns": columns, "filters": filters})
    return found


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_every_scan_is_narrow_and_filtered_to_the_workspace(diners: World, name: str) -> None:
    definition = DEFINITIONS[name]
    if name == "issue_example":  # seg_123 is not saved in this world
        definition = {**definition, "conditions": definition["conditions"][:5]}
    # No CTE: DuckDB would materialise it (every event of the workspace) instead of scanning with
    # each condition's filters.
    assert not [n for n in plan(diners, definition) if n.get("name", "").startswith("CTE")]
    found = scans(diners, definition)
    assert {s["table"] for s in found} <= {"profiles", "person_events"}
    for scan in found:
        assert f"workspace_id='{diners.workspace_id}'" in scan["filters"], scan
        if scan["table"] == "person_events":  # the person and what the condition tests, never whole rows
            assert len(scan["columns"]) <= 3, scan
        else:  # the fields the definition names, never the wide columns nobody tests
            assert not {"channel_activity", "trait_sources", "updated_at"} & set(scan["columns"]), scan


def test_event_filters_are_scan_filters(diners: World) -> None:
    found = scans(diners, example("high_value_tmall_never_in_store"))
    events = [s for s in found if s["table"] == "person_events"]
    filters = [f for s in events for f in s["filters"]]
    assert "channel='tmall'" in filters and "event='Order Completed'" in filters
    assert "presence='offline'" in filters  # a property test on a typed column, bare
    orders = next(s for s in events if "channel='tmall'" in s["filters"])
    assert sorted(orders["columns"]) == ["amount", "profile_id"]


def test_time_windows_are_bare_bounds_the_scan_can_skip_by(diners: World) -> None:
    found = scans(diners, example("bought_twice_in_90_days_no_touch_in_30"))
    bounds = [
        f for s in found if s["table"] == "person_events" for f in s["filters"] if f.startswith("timestamp>=")
    ]
    assert len(bounds) == 2, found  # the 90-day and the 30-day window
    calendar = scans(diners, example("winback_this_month_any_activity"))
    month = (
        "timestamp>='2026-03-31 16:00:00+00'::TIMESTAMP WITH TIME ZONE AND timestamp<'2026-04-30 16:00:00+00'"
    )
    events = [s for s in calendar if s["table"] == "person_events"]
    assert len(events) == 3 and all(any(f.startswith(month) for f in s["filters"]) for s in events), calendar
