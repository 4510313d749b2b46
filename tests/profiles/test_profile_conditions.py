"""The condition spec shared by tag rules and search: checking, bounds, and literals that stay literals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import orjson
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quanyu.errors import InvalidInput
from quanyu.profiles import parse_match, parse_rule, search
from quanyu.profiles.compile import check
from quanyu.profiles.view import search_query
from quanyu.warehouse.base import Replace
from quanyu.warehouse.duckdb import DuckDBWarehouse
from quanyu.warehouse.schema import PROFILES

WS = "ws_conditions"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _error(spec: dict[str, Any], allow_tags: bool = False) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        check(parse_match(spec), allow_tags=allow_tags)
    return caught.value


def one(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"all": [{"field": field, "op": op, **({"value": value} if value is not None else {})}]}


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (one("revnue", ">=", 1000), "unknown field 'revnue'"),
        (one("tags", "contains", "VIP"), "unknown field 'tags'"),
        (one("traits.$.a", "=", "x"), "invalid trait name"),
        (one("traits.a'b", "=", "x"), "invalid trait name"),
        (one("in_private_domain", ">", 1), "operator '>' does not apply to in_private_domain"),
        (one("preferred_channel", "<", "tmall"), "operator '<' does not apply"),
        (one("revenue", ">=", "1000"), "revenue 需要数值 / needs a number"),
        (one("revenue", ">=", True), "needs a number"),
        (one("preferred_channel", "=", 5), "needs a text value"),
        (one("preferred_channel", "=", "a\x00b"), "control characters"),
        (one("online", "=", "yes"), "needs true or false"),
        (one("last_purchase_at", "<", "yesterday"), "needs an ISO-8601 time"),
        (one("last_purchase_at", "<", {"days_ago": -1}), "needs an ISO-8601 time"),
        (one("revenue", "is_null", 5), "takes no value"),
        (one("preferred_channel", "in", []), "non-empty list"),
        (one("preferred_channel", "in", "tmall"), "non-empty list"),
        (one("traits.level", "in", ["金卡", 3]), "all be texts or all numbers"),
    ],
)
def test_checking_names_the_problem_and_where(spec: dict[str, Any], says: str) -> None:
    error = _error(spec)
    assert error.code == "invalid_condition"
    assert says in error.message and error.message.startswith("all[0]:")


def test_nested_paths_and_tags_in_search() -> None:
    spec = {"any": [one("revenue", ">", 1), {"all": [one("revenue", ">", 1), one("oops", "=", "x")]}]}
    assert _error(spec).message.startswith("any[1].all[1].all[0]:")
    check(parse_match(one("tags", "contains", "VIP")), allow_tags=True)


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({"all": [], "any": []}, "invalid_condition"),
        ({"all": []}, "invalid_condition"),
        ({"all": [{"field": "revenue", "op": "≥", "value": 1}]}, "invalid_condition"),
        ({"all": [{"field": "revenue", "op": ">", "value": 1, "extra": 1}]}, "invalid_condition"),
        ({"all": [{"field": "revenue", "op": "in", "value": list(range(1001))}]}, "condition_too_large"),
        ({"all": [{"field": "traits.a", "op": "=", "value": "x" * 257}]}, "condition_too_large"),
        ({"all": [{"field": "revenue", "op": ">", "value": 1}] * 101}, "condition_too_large"),
    ],
)
def test_malformed_or_oversized_specs_are_refused(spec: dict[str, Any], code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_match(spec)
    assert caught.value.code == code


def test_nesting_is_bounded_without_recursion() -> None:
    spec: dict[str, Any] = {"all": [{"field": "revenue", "op": ">", "value": 1}]}
    for _ in range(4):
        spec = {"any": [spec]}
    parse_match(spec)  # five levels
    deep: dict[str, Any] = spec
    for _ in range(10_000):
        deep = {"all": [deep]}
    with pytest.raises(InvalidInput) as caught:
        parse_match(deep)
    assert caught.value.code == "condition_too_large"


@pytest.mark.parametrize("tag", ["", "   ", "a\nb", "x" * 65])
def test_tag_names(tag: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rule({"tag": tag, "all": [{"field": "revenue", "op": ">", "value": 1}]})
    assert caught.value.code == "invalid_tag"
    assert (
        parse_rule({"tag": " 高价值 ", "all": [{"field": "revenue", "op": ">", "value": 1}]}).tag == "高价值"
    )


# ----------------------------------------------------------------------------------------------
# Evaluation over stored profiles


def _profile(pid: str, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {name: None for name in PROFILES.names}
    base.update(workspace_id=WS, profile_id=pid, traits="{}", trait_sources=[], identifiers=[], channels=[],
                channel_activity=[], reachable_channels=[], tags=[], order_count=0, revenue=0.0)  # fmt: skip
    base.update(values)
    return base


def _store(warehouse: DuckDBWarehouse, rows: list[dict[str, Any]]) -> None:
    warehouse.write([Replace("profiles", WS, pa.Table.from_pylist(rows, schema=PROFILES.to_pyarrow()))])


def _found(warehouse: DuckDBWarehouse, spec: dict[str, Any], **kw: Any) -> list[str]:
    page = search(warehouse, WS, spec, limit=500, now=NOW, **kw)
    return [p["profile_id"] for p in page["profiles"]]


@pytest.fixture
def shop() -> Any:
    warehouse = DuckDBWarehouse(":memory:")
    _store(warehouse, [
        _profile("p1", revenue=1500.0, order_count=3, preferred_channel="tmall", tags=["VIP"],
                 traits='{"city": "杭州", "age": 31}', channels=["tmall", "wechat_oa"],
                 last_purchase_at=NOW - timedelta(days=10), in_private_domain=True),
        _profile("p2", revenue=200.0, order_count=1, preferred_channel="jd", traits='{"city": "上海", "age": "45"}',
                 last_purchase_at=NOW - timedelta(days=200), channels=["jd"]),
        _profile("p3", preferred_channel=None, traits='{"city": null}', in_private_domain=False),
    ])  # fmt: skip
    yield warehouse
    warehouse.close()


BIG_ON_MARKETPLACES = {
    "all": [
        {"field": "revenue", "op": ">=", "value": 1000},
        {"field": "preferred_channel", "op": "in", "value": ["tmall", "jd"]},
    ]
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (BIG_ON_MARKETPLACES, ["p1"]),
        (one("preferred_channel", "!=", "tmall"), ["p2", "p3"]),  # a missing value is "not tmall"
        (one("preferred_channel", "not_in", ["jd"]), ["p1", "p3"]),
        (one("preferred_channel", "is_null"), ["p3"]),
        (one("traits.city", "=", "杭州"), ["p1"]),
        (one("traits.city", "is_null"), ["p3"]),
        (one("traits.age", ">", 40), ["p2"]),  # "45" is compared as a number
        (one("traits.city", "contains", "海"), ["p2"]),
        (one("channels", "contains", "wechat_oa"), ["p1"]),
        (one("channels", "in", ["jd", "douyin"]), ["p2"]),
        (one("channels", "not_in", ["jd"]), ["p1", "p3"]),
        (one("channels", "is_null"), ["p3"]),
        (one("last_purchase_at", "<", {"days_ago": 90}), ["p2"]),
        (one("last_purchase_at", ">=", "2026-05-01"), ["p1"]),
        (one("in_private_domain", "=", False), ["p3"]),
        ({"any": [one("order_count", "=", 3), one("revenue", "<", 300)]}, ["p1", "p2", "p3"]),
        (one("tags", "contains", "VIP"), ["p1"]),
    ],
)
def test_search_by_condition(shop: DuckDBWarehouse, spec: dict[str, Any], expected: list[str]) -> None:
    assert _found(shop, spec) == expected


def test_search_by_tag_and_pages(shop: DuckDBWarehouse) -> None:
    assert _found(shop, None, tags=["VIP"]) == ["p1"]  # type: ignore[arg-type]
    first = search(shop, WS, limit=2)
    assert [p["profile_id"] for p in first["profiles"]] == ["p1", "p2"]
    assert first["profiles"][0]["traits"] == {"city": "杭州", "age": 31}
    rest = search(shop, WS, limit=2, cursor=first["next_cursor"])
    assert [p["profile_id"] for p in rest["profiles"]] == ["p3"] and rest["next_cursor"] is None
    with pytest.raises(InvalidInput):
        search(shop, WS, cursor="not a cursor")
    with pytest.raises(InvalidInput):
        search(shop, WS, limit=0)


# ----------------------------------------------------------------------------------------------
# Injection-looking text stays a literal

_NASTY = st.sampled_from(["'; DROP TABLE profiles; --", "' OR '1'='1", "\\'", "$.a", "/a", '"', "%", "_",
                          "' || (SELECT 1) || '", "tmall'--", "🍵'", "a\\nb"])  # fmt: skip
_TEXT = st.one_of(_NASTY, st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=40))


def _literals(sql: str) -> list[str]:
    return [
        lit.this
        for lit in sqlglot.parse_one(sql, read="duckdb").find_all(sqlglot.exp.Literal)
        if lit.is_string
    ]


@pytest.fixture(scope="module")
def bare() -> Any:
    warehouse = DuckDBWarehouse(":memory:")
    yield warehouse
    warehouse.close()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_TEXT, other=_TEXT)
def test_text_stays_a_literal(bare: DuckDBWarehouse, value: str, other: str) -> None:
    traits = orjson.dumps({"city": value}).decode()
    _store(bare, [_profile("hit", preferred_channel=value, traits=traits),
                  _profile("miss", preferred_channel=other + "x", traits="{}")])  # fmt: skip
    for spec in (one("preferred_channel", "=", value), one("traits.city", "=", value),
                 one("preferred_channel", "in", [value, "jd"])):  # fmt: skip
        query = search_query(bare.table("profiles"), WS, parse_match(spec), [], 10, None, NOW)
        assert value in _literals(str(ibis.to_sql(query, dialect="duckdb")))  # a literal, exactly the value
        assert _found(bare, spec) == ["hit"]
    if value:
        assert "hit" in _found(bare, one("preferred_channel", "contains", value))


_KEYS = st.sampled_from(["a.b", "名字", "$.x", "/x", "a[0]", "a'b", "-x", "x-y_1", "a.b.c"])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.one_of(_KEYS, st.text(max_size=70)))
def test_trait_keys_are_a_checked_lookup_never_a_path(bare: DuckDBWarehouse, key: str) -> None:
    nested = {"a": {"b": "nested"}, "x": "w"}  # what a path `a.b` would reach instead
    _store(bare, [_profile("hit", traits=orjson.dumps({**nested, key: "v"}).decode())])
    try:
        found = _found(bare, one(f"traits.{key}", "=", "v"))
    except InvalidInput as exc:
        assert "invalid trait name" in exc.message
    else:
        assert found == ["hit"]


def test_nothing_runs_but_the_query(shop: DuckDBWarehouse) -> None:
    assert _found(shop, one("preferred_channel", "=", "'; DELETE FROM profiles; --")) == []
    assert len(search(shop, WS)["profiles"]) == 3
