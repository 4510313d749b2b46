"""Conditions over profile fields, as data: the spec tag rules and profile search share.

A condition is `{"field": ..., "op": ..., "value": ...}`; conditions combine in groups
`{"all": [...]}` or `{"any": [...]}`, nested. A tag rule is a group with a `tag`:

    {"tag": "高价值", "all": [{"field": "revenue", "op": ">=", "value": 1000},
                             {"field": "preferred_channel", "op": "in", "value": ["tmall", "jd"]}]}

Specs are JSON-storable pydantic models. Their size is bounded before pydantic sees them (depth,
conditions, list lengths, text lengths), so a hostile document costs little to refuse. Field
names and literal types are checked when the spec is compiled (`profiles.compile`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from quanyu.errors import InvalidInput

Op = Literal["<", "<=", ">", ">=", "=", "!=", "in", "not_in", "contains", "is_null", "not_null"]
OPS: tuple[str, ...] = Op.__args__  # type: ignore[attr-defined]

MAX_DEPTH = 5  # nested groups
MAX_CONDITIONS = 100  # conditions in one spec
MAX_LIST = 1000  # items in an `in` / `not_in` list
MAX_TEXT = 256  # characters in a text literal
MAX_TAG = 64  # characters in a tag
MAX_RULES = 500
M = TypeVar("M", bound=BaseModel)


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    op: Op
    value: Any = None


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "condition" if "field" in value else "group"
    return "condition" if isinstance(value, Condition) else "group"


Node = Annotated[
    Annotated[Condition, Tag("condition")] | Annotated["Match", Tag("group")], Discriminator(_kind)
]


class Match(BaseModel):
    """A group of conditions: all of them (`all`) or at least one (`any`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: list[Node] | None = None
    any: list[Node] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Match:
        if (self.all is None) == (self.any is None):
            raise ValueError("exactly one of all / any (只能二选一)")
        if not (self.all or self.any):
            raise ValueError("a group needs at least one condition (条件组不能为空)")
        return self

    @property
    def mode(self) -> str:
        return "all" if self.all is not None else "any"

    @property
    def items(self) -> list[Condition | Match]:
        return list(self.all if self.all is not None else self.any or [])


class TagRule(Match):
    """A rule-based tag: every profile matching the group carries `tag`."""

    tag: str
    description: str = ""

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        return tag_name(value)


def tag_name(text: str) -> str:
    """A tag as stored: NFKC-normalised, trimmed, 1–64 characters, no control characters."""
    tag = unicodedata.normalize("NFKC", text).strip()
    if not tag or len(tag) > MAX_TAG or any(unicodedata.category(ch).startswith("C") for ch in tag):
        raise InvalidInput(
            f"标签无效 / invalid tag {text[:80]!r} (1–{MAX_TAG} printable characters)", code="invalid_tag"
        )
    return tag


def _check_size(data: Any) -> None:
    """Walk the raw document without recursion and refuse one past the bounds."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    conditions = 0
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Mapping):
            continue
        if "field" in node:
            conditions += 1
            value = node.get("value")
            if isinstance(value, list) and len(value) > MAX_LIST:
                raise _too_big(f"a list holds at most {MAX_LIST} values (列表最多 {MAX_LIST} 项)")
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, str) and len(text) > MAX_TEXT:
                    raise _too_big(
                        f"a text value is at most {MAX_TEXT} characters (文本最长 {MAX_TEXT} 字符)"
                    )
            continue
        if depth >= MAX_DEPTH:
            raise _too_big(f"groups nest at most {MAX_DEPTH} deep (条件组最多嵌套 {MAX_DEPTH} 层)")
        for key in ("all", "any"):
            children = node.get(key)
            if isinstance(children, list):
                stack.extend((child, depth + 1) for child in children)
    if conditions > MAX_CONDITIONS:
        raise _too_big(f"at most {MAX_CONDITIONS} conditions (最多 {MAX_CONDITIONS} 个条件)")


def _too_big(reason: str) -> InvalidInput:
    return InvalidInput(f"条件过大 / condition too large: {reason}", code="condition_too_large")


def _invalid(exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(root)"
    return InvalidInput(
        f"条件格式无效 / invalid condition at {where}: {first['msg']}",
        code="invalid_condition",
        details=[
            {"path": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()[:10]
        ],
    )


def _parse(model: type[M], data: Mapping[str, Any] | M) -> M:
    if isinstance(data, model):
        return data
    _check_size(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


def parse_match(data: Mapping[str, Any] | Match) -> Match:
    """A validated group from its JSON form (or the model itself)."""
    return _parse(Match, data)


def parse_rule(data: Mapping[str, Any] | TagRule) -> TagRule:
    """A validated tag rule from its JSON form (or the model itself)."""
    return _parse(TagRule, data)


def parse_rules(data: Sequence[Mapping[str, Any] | TagRule]) -> list[TagRule]:
    if len(data) > MAX_RULES:
        raise _too_big(f"at most {MAX_RULES} tag rules (最多 {MAX_RULES} 条标签规则)")
    return [parse_rule(item) for item in data]
