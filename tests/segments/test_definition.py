"""The definition language as users write it: every condition kind parses, a bad node is refused
with the JSON path a console can point at, documents are bounded, and the JSON Schema served to
clients accepts what the parser accepts (a golden file keeps it stable)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from crowd import ISSUE_EXAMPLE

from quanyu.errors import InvalidInput
from quanyu.segments.definition import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_LIST,
    MAX_TEXT,
    Absolute,
    CalendarWindow,
    Definition,
    EventCondition,
    Group,
    IdentifierCondition,
    NotCondition,
    ReachableCondition,
    Rolling,
    SegmentCondition,
    SequenceCondition,
    TagCondition,
    TraitCondition,
    json_schema,
    parse_definition,
)

GOLDEN = Path(__file__).parent.parent / "golden" / "segments" / "schema.json"
EXAMPLES = Path(__file__).parent.parent.parent / "docs" / "examples" / "segments"


def refusal(document: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_definition(document)
    return caught.value


def paths(document: Any) -> list[str]:
    error = refusal(document)
    assert error.code == "invalid_segment"
    return [d["path"] for d in error.details]


def one(condition: dict[str, Any]) -> Any:
    return parse_definition({"conditions": [condition]}).conditions[0]


# ---------------------------------------------------------------------------------------------
# Every kind parses


def test_the_issue_example_parses_into_its_kinds() -> None:
    d = parse_definition(ISSUE_EXAMPLE)
    assert isinstance(d, Definition) and d.version == 1 and d.match == "all"
    kinds = [type(c) for c in d.conditions]
    assert kinds == [TraitCondition, EventCondition, NotCondition, IdentifierCondition, TagCondition, Group]
    event = d.conditions[1]
    assert isinstance(event, EventCondition)
    assert event.names == ["Order Completed"] and isinstance(event.window, Rolling)
    assert event.count is not None and (event.count.op, event.count.value) == ("gte", 2)
    negated = d.conditions[2]
    assert isinstance(negated, NotCondition) and isinstance(negated.not_, EventCondition)
    assert negated.not_.names == ["Message Delivered", "Coupon Sent"]
    assert isinstance(negated.not_.window, CalendarWindow)
    nested = d.conditions[5]
    assert isinstance(nested, Group) and nested.match == "any"
    assert isinstance(nested.conditions[0], SegmentCondition)


@pytest.mark.parametrize(
    ("condition", "kind"),
    [
        ({"trait": "revenue", "op": "between", "value": [100, 500]}, TraitCondition),
        ({"trait": "birthday", "op": "anniversary_within", "value": {"days": 7}}, TraitCondition),
        ({"trait": "last_seen", "op": "within", "value": {"calendar": "last_month"}}, TraitCondition),
        ({"identifier": "phone", "op": "eq", "value": "+86 138-0000-1111"}, IdentifierCondition),
        ({"identifier": "email", "op": "not_exists"}, IdentifierCondition),
        ({"tag": "高价值"}, TagCondition),
        ({"reachable": "sms"}, ReachableCondition),
        ({"segment": "seg_1"}, SegmentCondition),
        ({"event_group": "touch", "window": {"last": 30}}, EventCondition),
        ({"type": "page", "event": "/menu"}, EventCondition),
        ({"event": "Order Completed", "channel": ["tmall"], "source_type": ["tmall"], "source_id": ["src_1"],
          "sum": {"property": "amount", "op": "gte", "value": 1000}}, EventCondition),
        ({"event": "Order Completed", "avg": {"property": "amount", "value": 1},
          "min": {"property": "amount", "op": "lt", "value": 10}, "max": {"property": "amount", "value": 9}},
         EventCondition),
        ({"event": "Order Completed", "first_time": {"before": {"days_ago": 365}},
          "last_time": {"within": {"from": "2026-01-01", "to": "2026-02-01"}}}, EventCondition),
        ({"sequence": {"steps": [{"event": "Product Added"}, {"event": "Order Completed"}],
                       "within": {"value": 3, "unit": "day"}, "then": "did_not",
                       "window": {"last": 7}}}, SequenceCondition),
        ({"not": {"not": {"tag": "VIP"}}}, NotCondition),
        ({"match": "any", "conditions": [{"tag": "a"}, {"tag": "b"}]}, Group),
    ],
)  # fmt: skip
def test_every_condition_kind_parses(condition: dict[str, Any], kind: type) -> None:
    parsed = one(condition)
    assert type(parsed) is kind
    # It survives its own JSON form: what is stored is what is compiled later.
    again = parse_definition(json.loads(parse_definition({"conditions": [condition]}).model_dump_json(
        by_alias=True, exclude_none=True)))  # fmt: skip
    assert again.conditions[0] == parsed


def test_windows_are_told_apart_by_their_keys() -> None:
    rolling = one({"event": "x", "window": {"last": 2, "unit": "week"}})
    calendar = one({"event": "x", "window": {"calendar": "this_year"}})
    absolute = one({"event": "x", "window": {"from": "2026-03-01"}})
    assert isinstance(rolling.window, Rolling) and rolling.window.unit == "week"
    assert isinstance(calendar.window, CalendarWindow)
    assert isinstance(absolute.window, Absolute) and absolute.window.to is None
    assert absolute.window.from_ == "2026-03-01"


def test_defaults_are_what_the_docs_say() -> None:
    d = parse_definition({"conditions": [{"trait": "city", "value": "上海"}, {"identifier": "phone"},
                                         {"event": "x", "window": {"last": 3}, "count": {"value": 2}}]})  # fmt: skip
    trait, identifier, event = d.conditions
    assert isinstance(trait, TraitCondition) and trait.op == "eq"
    assert isinstance(identifier, IdentifierCondition) and identifier.op == "exists"
    assert isinstance(event, EventCondition) and isinstance(event.window, Rolling)
    assert event.window.unit == "day" and event.count is not None and event.count.op == "gte"
    assert d.match == "all"


def test_a_parsed_definition_is_returned_as_it_is() -> None:
    d = parse_definition(ISSUE_EXAMPLE)
    assert parse_definition(d) is d


# ---------------------------------------------------------------------------------------------
# Bad nodes, with their path


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"conditions": [{"tag": "a"}, {"event": "x", "where": [{"property": "a", "op": "like"}]}]},
         "conditions[1].where[0].op"),
        ({"conditions": [{"tag": "a"}, {"tag": "b"}, {"not": {"event": "x", "window": {"last": 0}}}]},
         "conditions[2].not.window.last"),
        ({"conditions": [{"not": {"event": "x", "window": {"calendar": "next_week"}}}]},
         "conditions[0].not.window.calendar"),
        ({"conditions": [{"event": "x", "window": {"last": 3, "unit": "days"}}]}, "conditions[0].window.unit"),
        ({"conditions": [{"event": "x", "window": {}}]}, "conditions[0].window"),
        ({"conditions": [{"event": "x", "window": {"from": 20260301}}]}, "conditions[0].window.from"),
        ({"conditions": [{"trait": "city", "op": "regex", "value": "."}]}, "conditions[0].op"),
        ({"conditions": [{"trait": "city", "oops": 1}]}, "conditions[0].oops"),
        ({"conditions": [{"identifier": "phone", "op": "eq", "value": 13800001111}]}, "conditions[0].value"),
        ({"conditions": [{"bogus": 1}]}, "conditions[0]"),
        ({"conditions": ["tag"]}, "conditions[0]"),
        ({"conditions": [{"match": "any"}]}, "conditions[0].conditions"),
        ({"conditions": [{"match": "any", "conditions": [{"tag": "a"}, {"tag": ""}]}]},
         "conditions[0].conditions[1].tag"),
        ({"conditions": []}, "conditions"),
        ({"match": "some", "conditions": [{"tag": "a"}]}, "match"),
        ({"version": 2, "conditions": [{"tag": "a"}]}, "version"),
        ({"conditions": [{"event": "x", "count": {"op": "gte", "value": -1}}]}, "conditions[0].count.value"),
        ({"conditions": [{"event": "x", "count": {"op": "about", "value": 1}}]}, "conditions[0].count.op"),
        ({"conditions": [{"event": "x", "sum": {"property": "amount", "value": "lots"}}]},
         "conditions[0].sum.value"),
        ({"conditions": [{"event": "x", "max": {"property": "amount", "value": float("inf")}}]},
         "conditions[0].max.value"),
        ({"conditions": [{"event": "x", "first_time": {}}]}, "conditions[0].first_time"),
        ({"conditions": [{"event": "x", "last_time": {"before": 5}}]}, "conditions[0].last_time.before"),
        ({"conditions": [{"event": 5}]}, "conditions[0].event"),
        ({"conditions": [{"event": ["a", 5]}]}, "conditions[0].event[1]"),
        ({"conditions": [{"event": []}]}, "conditions[0].event"),
        ({"conditions": [{"event": "x", "event_group": "g"}]}, "conditions[0]"),
        ({"conditions": [{"where": [{"property": "a"}]}]}, "conditions[0]"),
        ({"conditions": [{"event": "x", "channel": "tmall"}]}, "conditions[0].channel"),
        ({"conditions": [{"sequence": {"steps": [{"event": "a"}], "within": {"value": 3}}}]},
         "conditions[0].sequence.steps"),
        ({"conditions": [{"sequence": {"steps": [{"event": "a"}, {"event": "b"}, {"event": "c"}],
                                       "within": {"value": 3}, "then": "did_not"}}]}, "conditions[0].sequence"),
        ({"conditions": [{"sequence": {"steps": [{"event": "a"}, {"type": "identify"}],
                                       "within": {"value": 3}}}]}, "conditions[0].sequence.steps[1].type"),
        ({"conditions": [{"sequence": {"steps": [{"event": "a"}, {"event": "b"}], "within": {"value": 0}}}]},
         "conditions[0].sequence.within.value"),
        ({"conditions": [{"tag": "a"}], "name": "x"}, "name"),
    ],
)  # fmt: skip
def test_a_bad_node_is_refused_with_its_path(document: dict[str, Any], path: str) -> None:
    assert path in paths(document)
    error = refusal(document)
    assert f"at {error.details[0]['path']}" in error.message  # the message names the first path


def test_paths_never_carry_pydantic_union_tags() -> None:
    for document in (
        {"conditions": [{"event": 5}]},
        {"conditions": [{"event": "x", "first_time": {"after": [1]}}]},
        {"conditions": [{"not": {"event": "x", "window": {"last": "a"}}}]},
        {"conditions": [{"sequence": {"steps": [{"event": 1}, {"event": "b"}], "within": {"value": 1}}}]},
    ):
        for path in paths(document):
            assert "~" not in path and "[str" not in path and ".str" not in path, path


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"conditions": [{"event": "x\x00y"}]}, "conditions[0].event"),
        ({"conditions": [{"event": ["a", "b\nc"]}]}, "conditions[0].event[1]"),
        ({"conditions": [{"tag": "a"}, {"trait": "city", "value": "\x1b[31m"}]}, "conditions[1].value"),
        ({"conditions": [{"trait": "city", "op": "in", "value": ["a", "b\x7f"]}]}, "conditions[0].value[1]"),
        ({"conditions": [{"trait": "x", "value": {"k\x00": 1}}]}, "conditions[0].value"),
        (
            {"conditions": [{"event": "x", "where": [{"property": "a", "value": "\u0085"}]}]},
            "conditions[0].where[0].value",
        ),
        ({"conditions": [{"identifier": "phone", "op": "eq", "value": "138\ud800"}]}, "conditions[0].value"),
        ({"conditions": [{"segment": "seg\t1"}]}, "conditions[0].segment"),
    ],
)
def test_control_characters_are_refused_wherever_they_are(document: dict[str, Any], path: str) -> None:
    assert paths(document) == [path]


def test_printable_unicode_is_text_like_any_other() -> None:
    for text in (
        "上海 市",
        "O'Brien",
        "\\",
        "emoji 🍵‍🔥",
        "\u00a0nbsp",
        "\u200bzero width",
        "'; DROP TABLE events; --",
    ):
        parse_definition({"conditions": [{"trait": "city", "value": text}, {"event": text}]})


def test_a_document_that_is_not_an_object_is_refused() -> None:
    for document in ("conditions", [{"tag": "a"}], None, 3):
        assert paths(document) == ["(root)"]


# ---------------------------------------------------------------------------------------------
# Bounds


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"tag": "x"}
    for _ in range(depth):
        node = {"match": "any", "conditions": [node]}
    return {"conditions": [node]}


def test_groups_nest_at_most_max_depth() -> None:
    parse_definition(nested(MAX_DEPTH))
    assert refusal(nested(MAX_DEPTH + 1)).code == "segment_too_large"
    nots: dict[str, Any] = {"tag": "x"}
    for _ in range(MAX_DEPTH + 1):
        nots = {"not": nots}
    assert refusal({"conditions": [nots]}).code == "segment_too_large"


def test_a_deep_hostile_document_is_refused_cheaply() -> None:
    node: dict[str, Any] = {"tag": "x"}
    for _ in range(100_000):  # deeper than Python's recursion limit: the check walks without recursing
        node = {"not": node}
    assert refusal({"conditions": [node]}).code == "segment_too_large"


def test_conditions_lists_and_texts_are_bounded() -> None:
    many = [{"tag": f"t{i}"} for i in range(MAX_CONDITIONS + 1)]
    assert refusal({"conditions": many}).code == "segment_too_large"
    parse_definition({"conditions": many[:MAX_CONDITIONS]})
    spread = {
        "conditions": [{"match": "any", "conditions": many[:60]}, {"match": "any", "conditions": many[60:]}]
    }
    assert refusal(spread).code == "segment_too_large"  # counted across groups
    values = [str(i) for i in range(MAX_LIST + 1)]
    assert (
        refusal({"conditions": [{"trait": "city", "op": "in", "value": values}]}).code == "segment_too_large"
    )
    parse_definition({"conditions": [{"trait": "city", "op": "in", "value": values[:MAX_LIST]}]})
    text = "长" * (MAX_TEXT + 1)
    assert refusal({"conditions": [{"trait": "city", "value": text}]}).code == "segment_too_large"
    parse_definition({"conditions": [{"trait": "city", "value": text[:MAX_TEXT]}]})


def test_field_sizes_are_bounded() -> None:
    assert paths({"conditions": [{"event": "x", "where": [{"property": "a"}] * 21}]}) == [
        "conditions[0].where"
    ]
    assert paths({"conditions": [{"event": [f"e{i}" for i in range(51)]}]}) == ["conditions[0].event"]
    assert paths({"conditions": [{"event": "x", "window": {"last": 100_001}}]}) == [
        "conditions[0].window.last"
    ]
    assert paths({"conditions": [{"tag": "t" * 65}]}) == ["conditions[0].tag"]


# ---------------------------------------------------------------------------------------------
# JSON Schema


def test_the_json_schema_is_a_valid_schema_that_accepts_the_examples() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(ISSUE_EXAMPLE)) == []
    documented = sorted(EXAMPLES.glob("*.json"))
    assert documented, "docs/examples/segments holds the documented examples"
    for path in documented:
        document = json.loads(path.read_text())
        assert list(validator.iter_errors(document)) == [], path.name
        parse_definition(document)


@pytest.mark.parametrize(
    "document",
    [
        {"conditions": []},
        {"conditions": [{}]},
        {"conditions": [{"bogus": 1}]},
        {"conditions": [{"event": "x", "window": {}}]},
        {"conditions": [{"event": "x", "first_time": {}}]},
        {"conditions": [{"event": "x", "where": [{"property": "a", "op": "like"}]}]},
        {"conditions": [{"trait": "city", "op": "regex"}]},
        {"conditions": [{"tag": "a"}], "match": "some"},
    ],
)
def test_the_json_schema_refuses_what_the_parser_refuses(document: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    assert list(validator.iter_errors(document)), document
    with pytest.raises(InvalidInput):
        parse_definition(document)


def test_the_json_schema_matches_golden_file() -> None:
    """The schema is served to clients (GET /api/v1/segments/schema): a change is a contract
    change. Review it, then regenerate with QUANYU_REGENERATE_GOLDEN=1."""
    text = json.dumps(json_schema(), indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if not GOLDEN.exists() or os.environ.get("QUANYU_REGENERATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), (
        "segment JSON Schema changed: review, then regenerate with QUANYU_REGENERATE_GOLDEN=1"
    )
