"""The webhook mapping's JSON-path subset: property tests (format → parse round trip, never an
exception other than JsonPathError on any text) and the documented examples."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quanyu.connectors.jsonpath import (
    MAX_STEPS,
    Index,
    JsonPathError,
    Key,
    Path,
    Wildcard,
    format_path,
    parse,
)

steps = st.lists(
    st.one_of(
        st.builds(Key, st.text(min_size=0, max_size=12)),
        st.builds(Index, st.integers(min_value=-999, max_value=999_999)),
        st.just(Wildcard()),
    ),
    max_size=MAX_STEPS,
)


@settings(deadline=None)  # a loaded CI machine must not fail a pure function on time
@given(steps)
def test_format_then_parse_round_trips(path_steps: list[Any]) -> None:
    text = format_path(path_steps)
    assert parse(text).steps == tuple(path_steps)


@settings(deadline=None)  # a loaded CI machine must not fail a pure function on time
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_a_located_error(text: str) -> None:
    try:
        path = parse(text)
    except JsonPathError as err:
        assert 0 <= err.position <= max(len(text), 1)
        return
    # What parses is canonicalised by formatting and parses again to the same steps.
    assert parse(format_path(path.steps)).steps == path.steps


@settings(deadline=None)  # a loaded CI machine must not fail a pure function on time
@given(st.text(max_size=40).map(lambda t: "$" + t))
def test_dollar_prefixed_text_never_raises_anything_else(text: str) -> None:
    with contextlib.suppress(JsonPathError):
        parse(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)


@settings(deadline=None)  # a loaded CI machine must not fail a pure function on time
@given(json_values, steps.filter(lambda s: not any(isinstance(x, Wildcard) for x in s)))
def test_get_agrees_with_find_without_wildcards(doc: Any, path_steps: list[Any]) -> None:
    path = Path(tuple(path_steps))
    found, value = path.get(doc)
    hits = path.find(doc)
    assert found == bool(hits)
    if found:
        assert hits[0][1] == value
        # The reported location leads back to the same value.
        assert parse(hits[0][0]).get(doc) == (True, value)


@settings(deadline=None)  # a loaded CI machine must not fail a pure function on time
@given(json_values)
def test_wildcard_locations_lead_back_to_their_values(doc: Any) -> None:
    for where, value in parse("$[*][*]").find(doc):
        assert parse(where).get(doc) == (True, value)


def test_examples() -> None:
    doc = {"data": {"orders": [{"id": "A1", "买家": {"phone": "138"}}, {"id": "A2", "a.b": 1}]}}
    assert parse("$.data.orders[*].id").find(doc) == [
        ("$.data.orders[0].id", "A1"),
        ("$.data.orders[1].id", "A2"),
    ]
    assert parse("$.data.orders[0].买家.phone").get(doc) == (True, "138")
    assert parse("$['data']['orders'][1]['a.b']").get(doc) == (True, 1)
    assert parse("$.data.orders[-1].id").find(doc) == [("$.data.orders[1].id", "A2")]
    assert parse("$.data.nothing").get(doc) == (False, None)
    assert parse("$").get(doc) == (True, doc)
    assert format_path(parse('$["it\'s"]').steps) == "$['it\\'s']"


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("data.x", 0),
        ("$.", 2),
        ("$.a[", 4),
        ("$.a[x]", 4),
        ("$.a['b", 3),
        ("$.a b", 3),
        ("$..a", 2),
        ("$.a[?(@.x)]", 4),
        ("$.a[01]", 4),
        ("$.a[1:2]", 4),
        ("$.__import__('os')", 12),
    ],
)
def test_refused_with_the_position(text: str, position: int) -> None:
    with pytest.raises(JsonPathError) as info:
        parse(text)
    assert info.value.position == position


def test_bounded() -> None:
    with pytest.raises(JsonPathError):
        parse("$" + ".a" * (MAX_STEPS + 1))
    with pytest.raises(JsonPathError):
        parse("$." + "a" * 600)
