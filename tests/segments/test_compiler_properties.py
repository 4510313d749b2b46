"""Property-based tests of the compiler (hypothesis) on a small restaurant brand in DuckDB:

- random definitions (bounded depth, every condition kind) compile and run;
- every condition is two-valued, and NOT / ANY / ALL behave as set complement, union and
  intersection (NOT(NOT x) = x, x AND NOT x = ∅, x OR NOT x = everyone, De Morgan, one-item
  groups);
- hostile text in every string position stays data: the query answers as it does for a harmless
  string, each payload is exactly one string literal of the SQL, and the tables survive; text
  with control characters is refused with the path of the node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import ibis
import pytest
import sqlglot
from crowd import CITIES, EVENT_GROUPS, STORES, World, restaurant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quanyu.errors import InvalidInput
from quanyu.segments.compiler import compile_segment, predicate, segment_context
from quanyu.segments.definition import MAX_DEPTH, parse_definition


def budget(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


NAMES = ["Order Completed", "Store Visited", "Official Account Followed", "QR Scanned", "Signed Up", "Coupon Sent",
         "Message Delivered", "Never Happened"]  # fmt: skip
CALENDARS = [
    "today",
    "yesterday",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "this_year",
    "last_year",
]
CMP = ["eq", "neq", "gt", "gte", "lt", "lte"]


@pytest.fixture(scope="module")
def diners() -> Iterator[World]:
    world = restaurant(11, people=80)
    world.segments["seg_buyers"] = parse_definition({"conditions": [{"event": "Order Completed"}]})
    world.segments["seg_city"] = parse_definition(
        {"match": "any", "conditions": [{"trait": "city", "value": "上海"}, {"tag": "VIP"}]}
    )
    yield world
    world.close()


# ---------------------------------------------------------------------------------------------
# Random definitions

windows = st.one_of(
    st.builds(lambda n, u: {"last": n, "unit": u}, st.integers(1, 400),
              st.sampled_from(["minute", "hour", "day", "week", "month"])),
    st.sampled_from([{"calendar": c} for c in CALENDARS]),
    st.sampled_from([{"from": "2026-03-01"}, {"to": "2026-04-01"},
                     {"from": "2026-02-01", "to": "2026-03-15T12:00:00"}, {"from": "2026-04-01T00:00:00Z"}]),
)  # fmt: skip
moments = st.one_of(
    st.builds(lambda n: {"days_ago": n}, st.integers(0, 200)),
    st.sampled_from(["2026-03-01", "2026-04-15T08:00:00+08:00"]),
)
amounts = st.integers(0, 1200)


def texts(op: str) -> st.SearchStrategy[Any]:
    if op in ("in", "not_in"):
        return st.lists(st.sampled_from(CITIES), min_size=1, max_size=3)
    return st.sampled_from([*CITIES, "上", "海"])


text_traits = st.sampled_from(
    ["eq", "neq", "in", "not_in", "contains", "not_contains", "starts_with"]
).flatmap(lambda op: texts(op).map(lambda v: {"trait": "city", "op": op, "value": v}))
trait_leaves = st.one_of(
    text_traits,
    st.builds(lambda t, op: {"trait": t, "op": op}, st.sampled_from(["city", "age", "revenue", "channels"]),
              st.sampled_from(["exists", "not_exists"])),
    st.builds(lambda t, op, v: {"trait": t, "op": op, "value": v},
              st.sampled_from(["age", "revenue", "order_count", "event_count", "net_revenue"]), st.sampled_from(CMP),
              amounts),
    st.builds(lambda lo, span: {"trait": "age", "op": "between", "value": [lo, lo + span]},
              st.integers(15, 70), st.integers(0, 20)),
    st.builds(lambda t, op, w: {"trait": t, "op": op, "value": w},
              st.sampled_from(["last_seen", "first_seen", "last_purchase_at"]), st.sampled_from(["within", "not_within"]),
              windows),
    st.builds(lambda t, op, m: {"trait": t, "op": op, "value": m},
              st.sampled_from(["last_seen", "first_purchase_at"]), st.sampled_from(["gt", "lt", "gte"]), moments),
    st.builds(lambda op, v: {"trait": "channels", "op": op, "value": v}, st.sampled_from(["in", "not_in"]),
              st.lists(st.sampled_from(["pos", "tmall", "mini_program", "wechat_oa", "jd"]), min_size=1, max_size=3)),
    st.builds(lambda v: {"trait": "member_level", "op": "in", "value": v},
              st.lists(st.sampled_from(["gold", "silver", "none"]), min_size=1, max_size=2)),
    st.builds(lambda f, v: {"trait": f, "op": "eq", "value": v}, st.sampled_from(["offline", "online"]), st.booleans()),
    st.builds(lambda d: {"trait": "birthday", "op": "anniversary_within", "value": {"days": d}}, st.integers(0, 30)),
)  # fmt: skip
profile_leaves = st.one_of(
    st.builds(lambda op: {"identifier": "phone", "op": op}, st.sampled_from(["exists", "not_exists"])),
    st.just({"tag": "VIP"}),
    st.sampled_from([{"reachable": "sms"}, {"reachable": "wechat_oa"}]),
    st.sampled_from([{"segment": "seg_buyers"}, {"segment": "seg_city"}]),
)
wheres = st.lists(
    st.one_of(
        st.builds(lambda op, v: {"property": "amount", "op": op, "value": v}, st.sampled_from(CMP), amounts),
        st.builds(lambda v: {"property": "store_id", "op": "in", "value": v},
                  st.lists(st.sampled_from(STORES), min_size=1, max_size=2)),
        st.sampled_from([{"property": "scene", "op": "eq", "value": "store_qr"},
                         {"property": "scene", "op": "exists"}, {"property": "qr_type", "op": "neq", "value": "table"},
                         {"property": "presence", "op": "eq", "value": "offline"}]),
    ),
    max_size=2,
)  # fmt: skip


@st.composite
def event_leaves(draw: st.DrawFn) -> dict[str, Any]:
    what = draw(st.sampled_from(["event", "events", "group", "page"]))
    c: dict[str, Any] = {
        "event": {"event": draw(st.sampled_from(NAMES))},
        "events": {"event": draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3))},
        "group": {"event_group": draw(st.sampled_from(sorted(EVENT_GROUPS)))},
        "page": {"type": "page", **draw(st.sampled_from([{}, {"event": "/menu"}]))},
    }[what]
    if draw(st.booleans()):
        c["window"] = draw(windows)
    if where := draw(wheres):
        c["where"] = where
    if draw(st.integers(0, 3)) == 0:
        c["channel"] = draw(
            st.lists(st.sampled_from(["pos", "tmall", "mini_program", "wechat_oa"]), min_size=1)
        )
    test = draw(st.sampled_from(["none", "count", "sum", "avg", "min", "max", "first_time", "last_time"]))
    if test == "count":
        c["count"] = {"op": draw(st.sampled_from(CMP)), "value": draw(st.integers(0, 4))}
    elif test in ("sum", "avg", "min", "max"):
        c[test] = {"property": "amount", "op": draw(st.sampled_from(CMP)), "value": draw(amounts)}
    elif test in ("first_time", "last_time"):
        c[test] = draw(st.one_of(st.builds(lambda w: {"within": w}, windows),
                                 st.builds(lambda m: {"before": m}, moments),
                                 st.builds(lambda m: {"after": m}, moments)))  # fmt: skip
    return c


@st.composite
def sequences(draw: st.DrawFn) -> dict[str, Any]:
    then = draw(st.sampled_from(["did", "did_not"]))
    size = 2 if then == "did_not" else draw(st.integers(2, 3))
    steps = [{"event": draw(st.sampled_from(NAMES[:6]))} for _ in range(size)]
    within = {"value": draw(st.integers(1, 40)), "unit": draw(st.sampled_from(["hour", "day"]))}
    spec: dict[str, Any] = {"steps": steps, "then": then, "within": within}
    if draw(st.booleans()):
        spec["window"] = draw(windows)
    return {"sequence": spec}


leaves = st.one_of(trait_leaves, profile_leaves, event_leaves(), sequences())


def conditions(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    if depth == 0:
        return leaves
    inner = conditions(depth - 1)
    return st.one_of(
        leaves,
        inner.map(lambda c: {"not": c}),
        st.builds(lambda m, cs: {"match": m, "conditions": cs}, st.sampled_from(["all", "any"]),
                  st.lists(inner, min_size=1, max_size=3)),
    )  # fmt: skip


def definitions(depth: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda m, cs: {"match": m, "conditions": cs}, st.sampled_from(["all", "any"]),
                     st.lists(conditions(depth), min_size=1, max_size=3))  # fmt: skip


@budget(60)
@given(definition=definitions())
def test_random_definitions_compile_and_run(diners: World, definition: dict[str, Any]) -> None:
    members = diners.members(definition)
    assert members <= diners.people()


def test_the_strategies_stay_inside_the_nesting_bound() -> None:
    assert MAX_DEPTH >= 3 + 1  # definitions(3) nests at most 4 groups/nots below the root


# ---------------------------------------------------------------------------------------------
# Boolean algebra, as sets


def evaluate(world: World, named: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """Every named condition in one query: a column per condition over the workspace's profiles.
    Each must be true or false for every profile, never NULL (so NOT is the set complement)."""
    ctx = segment_context(world.warehouse, world.workspace_id, now=world.now, event_groups=EVENT_GROUPS,
                          segments=world.segments.get)  # fmt: skip
    profiles = ctx.profiles.filter(ctx.profiles.workspace_id == world.workspace_id)
    columns = {
        name: predicate(parse_definition({"conditions": [c]}), ctx, profiles).name(name)
        for name, c in named.items()
    }
    rows = world.warehouse.execute(profiles.select("profile_id", **columns)).to_pylist()
    for row in rows:
        for name in named:
            assert row[name] in (True, False), f"{name} is NULL for {row['profile_id']}: {named[name]}"
    return {name: {r["profile_id"].removeprefix("prof_") for r in rows if r[name]} for name in named}


def no(c: dict[str, Any]) -> dict[str, Any]:
    return {"not": c}


def every(*cs: dict[str, Any]) -> dict[str, Any]:
    return {"match": "all", "conditions": list(cs)}


def some(*cs: dict[str, Any]) -> dict[str, Any]:
    return {"match": "any", "conditions": list(cs)}


@budget(50)
@given(x=conditions(2))
def test_not_is_the_complement(diners: World, x: dict[str, Any]) -> None:
    everyone = diners.people()
    s = evaluate(diners, {"x": x, "not_x": no(x), "not_not_x": no(no(x)), "x_and_not_x": every(x, no(x)),
                          "x_or_not_x": some(x, no(x)), "all_of_x": every(x), "any_of_x": some(x)})  # fmt: skip
    assert s["not_x"] == everyone - s["x"]
    assert s["not_not_x"] == s["x"]
    assert s["x_and_not_x"] == set()
    assert s["x_or_not_x"] == everyone
    assert s["all_of_x"] == s["any_of_x"] == s["x"]


@budget(40)
@given(x=conditions(2), y=conditions(2))
def test_any_is_union_all_is_intersection_and_de_morgan_holds(
    diners: World, x: dict[str, Any], y: dict[str, Any]
) -> None:
    everyone = diners.people()
    s = evaluate(diners, {"x": x, "y": y, "any": some(x, y), "all": every(x, y), "not_all": no(every(x, y)),
                          "any_not": some(no(x), no(y)), "not_any": no(some(x, y)), "all_not": every(no(x), no(y))})  # fmt: skip
    assert s["any"] == s["x"] | s["y"]
    assert s["all"] == s["x"] & s["y"]
    assert s["not_all"] == s["any_not"] == everyone - (s["x"] & s["y"])
    assert s["not_any"] == s["all_not"] == everyone - (s["x"] | s["y"])


def test_evaluate_agrees_with_compile_segment(diners: World) -> None:
    """The one-query evaluation above answers as the public compile path does."""
    named = {"a": {"event": "Order Completed", "count": {"op": "lte", "value": 1}},
             "b": {"not": {"event_group": "touch", "window": {"last": 30}}}, "c": {"trait": "city", "op": "neq",
                                                                                  "value": "上海"}}  # fmt: skip
    together = evaluate(diners, named)
    for name, condition in named.items():
        assert together[name] == diners.members({"conditions": [condition]})


# ---------------------------------------------------------------------------------------------
# Hostile text stays data

HARMLESS = "harmless"
SENTINEL = "雪"  # no stored value holds it (so no accidental match), and it is a word character (a valid key)
PAYLOADS = [
    "'; DROP TABLE events; --",
    "' OR '1'='1",
    "x' UNION SELECT profile_id FROM profiles --",
    '"; DROP TABLE profiles; --',
    "\\",
    "\\'",
    "''",
    "$$; DROP TABLE events; $$",
    "%_*",
    "$.city",
    "上海' --",
    "\u202e🍵'🔥",
    "a" * 180,  # long, within every bound
    "store_qr.a-b",  # a valid key: reaches the SQL as one
]

# Every string position of the language (a position takes the text and gives a definition), and
# the one SQL literal the text must become: itself, `/key` for a key (a JSON pointer to one
# key), or None where it is normalised first (identifier values, tags).
POSITIONS: dict[str, tuple[Callable[[str], dict[str, Any]], str | None]] = {
    "trait_eq": (lambda s: {"trait": "city", "op": "eq", "value": s}, "{}"),
    "trait_neq": (lambda s: {"trait": "city", "op": "neq", "value": s}, "{}"),
    "trait_in": (lambda s: {"trait": "city", "op": "in", "value": ["上海", s]}, "{}"),
    "trait_contains": (lambda s: {"trait": "city", "op": "contains", "value": s}, "{}"),
    "trait_starts_with": (lambda s: {"trait": "city", "op": "starts_with", "value": s}, "{}"),
    "trait_between": (lambda s: {"trait": "city", "op": "between", "value": [s, s + "z"]}, "{}"),
    "trait_key": (lambda s: {"trait": s, "op": "exists"}, "/{}"),
    "computed_text": (lambda s: {"trait": "preferred_channel", "op": "eq", "value": s}, "{}"),
    "list_field": (lambda s: {"trait": "channels", "op": "contains", "value": s}, "{}"),
    "identifier_value": (lambda s: {"identifier": "user_id", "op": "eq", "value": s}, None),
    "tag": (lambda s: {"tag": s}, None),
    "event_name": (lambda s: {"event": s}, "{}"),
    "event_names": (lambda s: {"event": ["Order Completed", s], "count": {"op": "gte", "value": 9}}, "{}"),
    "page_name": (lambda s: {"type": "page", "event": s}, "{}"),
    "channel": (lambda s: {"event": "Order Completed", "channel": [s]}, "{}"),
    "source_type": (lambda s: {"event": "Order Completed", "source_type": [s]}, "{}"),
    "source_id": (lambda s: {"event": "Order Completed", "source_id": [s]}, "{}"),
    "where_property": (
        lambda s: {"event": "Order Completed", "where": [{"property": s, "op": "exists"}]},
        "/{}",
    ),
    "where_value": (
        lambda s: {"event": "Order Completed", "where": [{"property": "scene", "value": s}]},
        "{}",
    ),
    "where_column": (
        lambda s: {"event": "Order Completed", "where": [{"property": "store_id", "value": s}]},
        "{}",
    ),
    "where_in": (
        lambda s: {"event": "Order Completed", "where": [{"property": "order_id", "op": "in", "value": [s]}]},
        "{}",
    ),
    "sum_property": (lambda s: {"event": "Order Completed", "sum": {"property": s, "value": 1}}, "/{}"),
    "count_where": (
        lambda s: {
            "event": "Order Completed",
            "where": [{"property": "scene", "value": s}],
            "count": {"op": "lte", "value": 0},
        },
        "{}",
    ),
    "sequence_step": (
        lambda s: {
            "sequence": {
                "steps": [{"event": "Order Completed"}, {"event": s}],
                "within": {"value": 3},
                "then": "did_not",
            }
        },
        "{}",
    ),
    "negated": (
        lambda s: {"not": {"match": "any", "conditions": [{"trait": "city", "value": s}, {"event": s}]}},
        "{}",
    ),
}


# Positions where some text is refused as data: keys must be word characters, identifier values
# and tags must survive normalisation. Everywhere else any printable text is a value.
REFUSABLE = {"trait_key", "where_property", "sum_property", "identifier_value", "tag"}


def run(world: World, condition: dict[str, Any]) -> tuple[set[str] | str, list[str]]:
    """The members (or "refused") and the string literals of the SQL that found them."""
    ctx = segment_context(world.warehouse, world.workspace_id, now=world.now, event_groups=EVENT_GROUPS)
    try:
        expr = compile_segment(parse_definition({"conditions": [condition]}), ctx)
    except InvalidInput as exc:
        assert exc.code in ("invalid_segment", "segment_too_large"), exc.code
        return "refused", []
    tree = sqlglot.parse_one(ibis.to_sql(expr, dialect="duckdb"), read="duckdb")
    found = {pid.removeprefix("prof_") for pid in world.warehouse.execute(expr).column(0).to_pylist()}
    return found, [lit.this for lit in tree.find_all(sqlglot.exp.Literal) if lit.is_string]


def table_sizes(world: World) -> dict[str, int]:
    return {name: world.warehouse.execute(world.warehouse.table(name).count())
            for name in ("events", "profiles", "person_events", "identity_nodes")}  # fmt: skip


_baselines: dict[tuple[str, str], set[str] | str] = {}


def check_stays_data(world: World, position: str, payload: str) -> None:
    build, form = POSITIONS[position]
    if (world.workspace_id, position) not in _baselines:
        _baselines[(world.workspace_id, position)] = run(world, build(HARMLESS + SENTINEL))[0]
    text = payload + SENTINEL
    got, literals = run(world, build(text))
    if got == "refused":
        assert position in REFUSABLE, (position, payload)
        return  # refused as data (an invalid name or key), never run
    assert got == _baselines[(world.workspace_id, position)], (position, payload)
    if form is not None:
        assert form.format(text) in literals, (position, payload)


@pytest.fixture(scope="module")
def sizes(diners: World) -> dict[str, int]:
    return table_sizes(diners)


@pytest.mark.parametrize("position", sorted(POSITIONS))
def test_classic_payloads_stay_data_in_every_position(
    diners: World, sizes: dict[str, int], position: str
) -> None:
    """All the payloads of a position in one query: a column per payload, each must find whom
    the harmless text finds, and each payload must be one literal of the SQL."""
    build, form = POSITIONS[position]
    ctx = segment_context(diners.warehouse, diners.workspace_id, now=diners.now, event_groups=EVENT_GROUPS)
    profiles = ctx.profiles.filter(ctx.profiles.workspace_id == diners.workspace_id)
    columns = {
        "baseline": predicate(parse_definition({"conditions": [build(HARMLESS + SENTINEL)]}), ctx, profiles)
    }
    for i, payload in enumerate(PAYLOADS):
        try:
            test = predicate(parse_definition({"conditions": [build(payload + SENTINEL)]}), ctx, profiles)
        except InvalidInput as exc:  # refused as data (an invalid key or name), never run
            assert exc.code == "invalid_segment" and position in REFUSABLE, (position, payload)
            continue
        columns[f"p{i}"] = test
    expr = profiles.select("profile_id", **{name: test.name(name) for name, test in columns.items()})
    rows = diners.warehouse.execute(expr).to_pylist()
    for name in columns:
        assert [r[name] for r in rows] == [r["baseline"] for r in rows], (position, PAYLOADS[int(name[1:])])
    if form is not None:
        tree = sqlglot.parse_one(ibis.to_sql(expr, dialect="duckdb"), read="duckdb")
        literals = {lit.this for lit in tree.find_all(sqlglot.exp.Literal) if lit.is_string}
        for name in columns.keys() - {"baseline"}:
            assert form.format(PAYLOADS[int(name[1:])] + SENTINEL) in literals, (position, name)
    assert table_sizes(diners) == sizes  # nothing dropped, nothing written


@budget(60)
@given(
    position=st.sampled_from(sorted(POSITIONS)),
    payload=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40),
)
def test_any_printable_text_stays_data(diners: World, position: str, payload: str) -> None:
    check_stays_data(diners, position, payload)


@budget(80)
@given(
    position=st.sampled_from(sorted(POSITIONS)),
    before=st.text(max_size=10),
    control=st.characters(whitelist_categories=("Cc",)),
    after=st.text(max_size=10),
)
def test_control_characters_are_refused_in_every_position(
    diners: World, position: str, before: str, control: str, after: str
) -> None:
    condition = POSITIONS[position][0](before + control + after)
    with pytest.raises(InvalidInput) as caught:
        parse_definition({"conditions": [condition]})
    assert caught.value.code in ("invalid_segment", "segment_too_large")
    if caught.value.code == "invalid_segment":
        assert caught.value.details[0]["path"].startswith("conditions[0]")
