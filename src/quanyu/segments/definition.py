"""The segment definition language: JSON, validated by pydantic, versioned.

A definition is a group of conditions, `{"match": "all" | "any", "conditions": [...]}`. Each
condition is one of (told apart by the key it carries):

- `trait`: a merged trait or a computed field of the profile (`city`, `revenue`,
  `last_purchase_at`, `traits.city` to force the raw trait), with an operator;
- `identifier`: the person holds an identifier of a type (`exists`) or a given value (`eq`);
- `tag`: the person carries a tag;
- `reachable`: the person can be reached on a channel (`sms`, `email`, `wechat`, …);
- `segment`: membership of another saved segment (inlined; cycles are refused);
- `event` / `event_group` / `type`: the person did something, with property filters, a time
  window, channel and source filters, and tests on the count, a sum/avg/min/max of a property,
  or the first/last time;
- `sequence`: did A, then (did / did not do) B within a time;
- `not`: the negation of any condition;
- `match` + `conditions`: a nested group.

Times are resolved in the workspace's time zone when the definition is compiled (`windows`).
Field names and literal types are checked against the allow lists at compile time, with the
JSON path of the bad node (`compiler`). Sizes are bounded before pydantic sees a document.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic.config import JsonDict

from quanyu.errors import InvalidInput

SCHEMA_VERSION = 1
MAX_DEPTH = 6  # nested groups / not
MAX_CONDITIONS = 100
MAX_LIST = 1000
MAX_TEXT = 256
MAX_COUNT = 1_000_000_000

Unit = Literal["minute", "hour", "day", "week", "month"]
Calendar = Literal[
    "today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year", "last_year"
]
CompareOp = Literal["eq", "neq", "gt", "gte", "lt", "lte"]
TraitOp = Literal[
    "eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "not_contains", "starts_with",
    "exists", "not_exists", "between", "within", "not_within", "anniversary_within",
]  # fmt: skip
PropertyOp = Literal[
    "eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "not_contains", "starts_with",
    "exists", "not_exists", "between",
]  # fmt: skip
Scalar = str | int | float | bool


def _names_kind(value: Any) -> str:
    return "~list" if isinstance(value, list | tuple) else "~one"


# One event name or several. The union members are tagged ("~…", dropped from error paths) so a
# bad value is reported at `event`, not at pydantic's `event.list[str]`.
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Names = Annotated[
    Annotated[Name, Tag("~one")] | Annotated[list[Name], Tag("~list"), Field(min_length=1, max_length=50)],
    Discriminator(_names_kind),
]


def _moment_kind(value: Any) -> str:
    return "~relative" if isinstance(value, Mapping) else "~time"


# An ISO-8601 time or date, or `{"days_ago": N}`.
Moment = Annotated[
    Annotated[str, Tag("~time")] | Annotated[dict[str, int], Tag("~relative")], Discriminator(_moment_kind)
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------
# Windows


class Rolling(_Model):
    """The last N units, counted back from the moment the segment is evaluated."""

    last: int = Field(ge=1, le=100_000)
    unit: Unit = "day"


class CalendarWindow(_Model):
    """A calendar period in the workspace's time zone (weeks start on Monday)."""

    calendar: Calendar


class Absolute(_Model):
    """From `from` (inclusive) to `to` (exclusive); either may be left open. A date without a
    time means midnight in the workspace's time zone."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={"anyOf": [{"required": ["from"]}, {"required": ["to"]}]},
    )

    from_: str | None = Field(default=None, alias="from")
    to: str | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Absolute:
        if self.from_ is None and self.to is None:
            raise ValueError("an absolute window needs from, to or both (需要起止时间)")
        return self


def _window_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        if "last" in value:
            return "~rolling"
        if "calendar" in value:
            return "~calendar"
        return "~absolute"
    kinds: dict[type, str] = {Rolling: "~rolling", CalendarWindow: "~calendar"}
    return kinds.get(type(value), "~absolute")


Window = Annotated[
    Annotated[Rolling, Tag("~rolling")]
    | Annotated[CalendarWindow, Tag("~calendar")]
    | Annotated[Absolute, Tag("~absolute")],
    Discriminator(_window_kind),
]


class Span(_Model):
    """A length of time (a sequence's "within 3 days")."""

    value: int = Field(ge=1, le=100_000)
    unit: Unit = "day"


# ---------------------------------------------------------------------------------------------
# Profile conditions


class TraitCondition(_Model):
    """A trait or computed field compared with a value.

    `value` by operator: a scalar for eq/neq/gt/gte/lt/lte/contains/not_contains/starts_with; a
    list for in/not_in; `[low, high]` (inclusive) for between; a window for within/not_within
    (a time field in that window); `{"days": N}` for anniversary_within (the month and day come
    round within the next N days, today included: "birthday within 7 days"); nothing for
    exists/not_exists.
    """

    trait: str = Field(min_length=1, max_length=80)
    op: TraitOp = "eq"
    value: Any = None


class IdentifierCondition(_Model):
    """Holds an identifier of a type (`exists`), or this value (`eq`). For types scoped to an
    app (openids), `scope` names the app id: required with `eq`, since an openid means nothing
    outside its app; with `exists` it narrows to that app."""

    identifier: str = Field(min_length=1, max_length=64)
    op: Literal["exists", "not_exists", "eq"] = "exists"
    value: str | None = None
    scope: str | None = Field(default=None, min_length=1, max_length=64)


class TagCondition(_Model):
    tag: str = Field(min_length=1, max_length=64)


class ReachableCondition(_Model):
    """The person can be reached on `reachable`: sms, email, wechat_oa, mini_program, wecom or
    push (`profiles.identifiers.REACH`)."""

    reachable: str = Field(min_length=1, max_length=40)


class SegmentCondition(_Model):
    segment: str = Field(min_length=1, max_length=64)


# ---------------------------------------------------------------------------------------------
# Event conditions


class PropertyFilter(_Model):
    """A test on one event field: a column the warehouse keeps typed (amount, currency,
    order_id, store_id, guide_id, utm_*, …) or a key of the event's properties."""

    property: str = Field(min_length=1, max_length=80)
    op: PropertyOp = "eq"
    value: Any = None


class CountTest(_Model):
    op: CompareOp = "gte"
    value: int = Field(ge=0, le=MAX_COUNT)


class AggregateTest(_Model):
    property: str = Field(min_length=1, max_length=80)
    op: CompareOp = "gte"
    value: float = Field(allow_inf_nan=False)


class TimeTest(_Model):
    """When the first (or last) matching event happened: inside a window, or before / after a
    time (ISO-8601) or `{"days_ago": N}`."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "oneOf": [{"required": ["within"]}, {"required": ["before"]}, {"required": ["after"]}]
        },
    )

    within: Window | None = None
    before: Moment | None = None
    after: Moment | None = None

    @model_validator(mode="after")
    def _one(self) -> TimeTest:
        if sum(x is not None for x in (self.within, self.before, self.after)) != 1:
            raise ValueError("exactly one of within / before / after (三选一)")
        return self


_WHAT: JsonDict = {"anyOf": [{"required": ["event"]}, {"required": ["event_group"]}, {"required": ["type"]}]}


class EventCondition(_Model):
    """The person did something: by event name(s), a named event group, or a message type."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_WHAT)

    event: Names | None = None
    event_group: str | None = Field(default=None, max_length=64)
    type: Literal["track", "page", "screen", "identify", "group", "alias"] | None = None
    where: list[PropertyFilter] = Field(default_factory=list, max_length=20)
    window: Window | None = None
    channel: list[str] | None = Field(default=None, max_length=50)
    source_type: list[str] | None = Field(default=None, max_length=50)
    source_id: list[str] | None = Field(default=None, max_length=50)
    count: CountTest | None = None
    sum: AggregateTest | None = None
    avg: AggregateTest | None = None
    min: AggregateTest | None = None
    max: AggregateTest | None = None
    first_time: TimeTest | None = None
    last_time: TimeTest | None = None

    @model_validator(mode="after")
    def _what(self) -> EventCondition:
        if self.event is None and self.event_group is None and self.type is None:
            raise ValueError("an event condition needs event, event_group or type (需指定事件)")
        if self.event is not None and self.event_group is not None:
            raise ValueError("event and event_group exclude each other (二选一)")
        return self

    @property
    def names(self) -> list[str]:
        return [self.event] if isinstance(self.event, str) else list(self.event or [])


class SequenceStep(_Model):
    """One step of a sequence: an event condition without aggregate tests."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_WHAT)

    event: Names | None = None
    event_group: str | None = Field(default=None, max_length=64)
    type: Literal["track", "page", "screen"] | None = None
    where: list[PropertyFilter] = Field(default_factory=list, max_length=20)
    channel: list[str] | None = Field(default=None, max_length=50)
    source_type: list[str] | None = Field(default=None, max_length=50)
    source_id: list[str] | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _what(self) -> SequenceStep:
        if self.event is None and self.event_group is None and self.type is None:
            raise ValueError("a step needs event, event_group or type (需指定事件)")
        if self.event is not None and self.event_group is not None:
            raise ValueError("event and event_group exclude each other (二选一)")
        return self

    def as_event(self) -> EventCondition:
        """The step as an event condition (already validated: nothing to check twice)."""
        return EventCondition.model_construct(
            **{name: getattr(self, name) for name in type(self).model_fields}
        )


class SequenceSpec(_Model):
    """Did `steps[0]` (inside `window`), then each next step within `within` of the one before.
    With `then: "did_not"` (two steps only): did the first step, then not the second within
    `within`; decided only once `within` has passed since the first step."""

    steps: list[SequenceStep] = Field(min_length=2, max_length=5)
    within: Span
    then: Literal["did", "did_not"] = "did"
    window: Window | None = None

    @model_validator(mode="after")
    def _pairs(self) -> SequenceSpec:
        if self.then == "did_not" and len(self.steps) != 2:
            raise ValueError('then "did_not" takes exactly two steps (需两步)')
        return self


class SequenceCondition(_Model):
    sequence: SequenceSpec


# ---------------------------------------------------------------------------------------------
# Composition


class NotCondition(_Model):
    not_: Condition = Field(alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Group(_Model):
    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = Field(min_length=1, max_length=MAX_CONDITIONS)


_KINDS = (
    ("conditions", "group"),
    ("match", "group"),
    ("not", "not"),
    ("sequence", "sequence"),
    ("trait", "trait"),
    ("identifier", "identifier"),
    ("tag", "tag"),
    ("reachable", "reachable"),
    ("segment", "segment"),
    ("event", "event"),
    ("event_group", "event"),
    ("type", "event"),
)
_MODEL_KINDS: dict[type, str] = {}


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, Mapping):
        for key, kind in _KINDS:
            if key in value:
                return "~" + kind
        return None
    model_kind = _MODEL_KINDS.get(type(value))
    return None if model_kind is None else "~" + model_kind


Condition = Annotated[
    Annotated[Group, Tag("~group")]
    | Annotated[NotCondition, Tag("~not")]
    | Annotated[SequenceCondition, Tag("~sequence")]
    | Annotated[TraitCondition, Tag("~trait")]
    | Annotated[IdentifierCondition, Tag("~identifier")]
    | Annotated[TagCondition, Tag("~tag")]
    | Annotated[ReachableCondition, Tag("~reachable")]
    | Annotated[SegmentCondition, Tag("~segment")]
    | Annotated[EventCondition, Tag("~event")],
    Discriminator(
        _condition_kind,
        custom_error_type="unknown_condition",
        custom_error_message=(
            "unknown condition: expected one of trait, event, event_group, sequence, identifier, tag, "
            "reachable, segment, not, or a group with match/conditions (未知条件类型)"
        ),
    ),
]
_MODEL_KINDS.update({
    Group: "group", NotCondition: "not", SequenceCondition: "sequence", TraitCondition: "trait",
    IdentifierCondition: "identifier", TagCondition: "tag", ReachableCondition: "reachable",
    SegmentCondition: "segment", EventCondition: "event",
})  # fmt: skip


class Definition(Group):
    """A whole segment definition: the root group, with the language version it was written in."""

    version: Literal[1] = 1


NotCondition.model_rebuild()
Group.model_rebuild()
Definition.model_rebuild()


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_definition(data: Mapping[str, Any] | Definition) -> Definition:
    """A validated definition from its JSON form; InvalidInput with the path of the first bad
    node (`conditions.1.where.0.op`) otherwise."""
    if isinstance(data, Definition):
        return data
    if not isinstance(data, Mapping):
        message = "a segment definition is a JSON object"
        raise InvalidInput(
            f"分群定义须为 JSON 对象 / {message}",
            code="invalid_segment",
            details=[{"path": "(root)", "message": message}],
        )
    _check_size(data)
    try:
        return Definition.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc) from None


def invalid(exc: ValidationError) -> InvalidInput:
    errors = exc.errors()
    first = errors[0]
    where = path_of(first["loc"])
    return InvalidInput(
        f"分群定义无效 / invalid segment definition at {where}: {first['msg']}",
        code="invalid_segment",
        details=[{"path": path_of(e["loc"]), "message": e["msg"]} for e in errors[:10]],
    )


def bad(where: str, message: str) -> InvalidInput:
    """A definition refused at the node `where` (a JSON path such as `conditions[2].not.window`):
    the one error shape every check of a definition answers with."""
    return InvalidInput(
        f"分群定义无效 / invalid segment definition at {where or '(root)'}: {message}",
        code="invalid_segment",
        details=[{"path": where or "(root)", "message": message}],
    )


def path_of(loc: tuple[Any, ...] | list[Any]) -> str:
    """A pydantic error location as a JSON path, without the union tags pydantic inserts (they
    start with "~", which no field name does)."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif not str(part).startswith("~"):
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(root)"


_LEAVES = ("trait", "event", "event_group", "type", "identifier", "tag", "reachable", "segment", "sequence")
# Raw nesting a valid document never needs: each group level is an object in a list.
_MAX_RAW_DEPTH = 4 * MAX_DEPTH + 12


def _check_size(data: Any) -> None:
    """Walk the raw document without recursion and refuse one past the bounds, so a hostile
    document costs little to refuse. `level` counts the groups and nots around a node (the
    root group is level 0). Text with control characters (NUL, escapes, line breaks) or lone
    surrogates is refused here too, wherever it sits: no such text belongs in a definition, and
    some of it cannot even be written into a SQL literal."""
    stack: list[tuple[Any, int, int, tuple[Any, ...]]] = [(data, 0, -1, ())]
    conditions = 0
    while stack:
        node, depth, level, loc = stack.pop()
        if depth > _MAX_RAW_DEPTH:
            raise _too_big(f"nesting is at most {MAX_DEPTH} groups deep (最多嵌套 {MAX_DEPTH} 层)")
        if isinstance(node, Mapping):
            if "conditions" in node or "not" in node:
                level += 1
                if level > MAX_DEPTH:
                    raise _too_big(f"nesting is at most {MAX_DEPTH} groups deep (最多嵌套 {MAX_DEPTH} 层)")
            if any(k in node for k in _LEAVES) and "property" not in node:
                conditions += 1
            for key, value in node.items():
                _check_text(key, loc)
                stack.append((value, depth + 1, level, (*loc, key)))
        elif isinstance(node, list):
            if len(node) > MAX_LIST:
                raise _too_big(f"a list holds at most {MAX_LIST} items (列表最多 {MAX_LIST} 项)")
            stack.extend((item, depth + 1, level, (*loc, i)) for i, item in enumerate(node))
        elif isinstance(node, str):
            if len(node) > MAX_TEXT:
                raise _too_big(f"a text value is at most {MAX_TEXT} characters (文本最长 {MAX_TEXT} 字符)")
            _check_text(node, loc)
    if conditions > MAX_CONDITIONS:
        raise _too_big(f"at most {MAX_CONDITIONS} conditions (最多 {MAX_CONDITIONS} 个条件)")


def _check_text(text: Any, loc: tuple[Any, ...]) -> None:
    if isinstance(text, str) and not text.isprintable() and any(_unwritable(ch) for ch in text):
        where = path_of(loc)
        message = "text may not contain control characters (文本不能含控制字符)"
        raise InvalidInput(
            f"分群定义无效 / invalid segment definition at {where}: {message}",
            code="invalid_segment",
            details=[{"path": where, "message": message}],
        )


def _unwritable(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs")


def _too_big(reason: str) -> InvalidInput:
    return InvalidInput(f"分群定义过大 / segment definition too large: {reason}", code="segment_too_large")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a definition (served at GET /api/v1/segments/schema)."""
    schema = Definition.model_json_schema(by_alias=True)
    schema["$id"] = "https://quanyu.dev/schemas/segment-definition-v1.json"
    schema["title"] = "Quanyu segment definition (分群定义) v1"
    return schema
