"""Conditions → Ibis boolean expressions, in two small passes.

1. `check`: resolve every field against the allow list, check the operator suits the field's
   kind and coerce each literal to the field's type (a typed tree, or InvalidInput naming the
   condition's path).
2. `predicate`: build the Ibis expression. Literals become typed `ibis.literal`s, so the SQL
   compiler quotes them; user text is never spliced into SQL nor evaluated.

Comparisons use two-valued logic: a condition on a missing value is false, except `!=` and
`not_in`, which hold for a missing value (someone without a preferred channel is "not tmall").
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.datatypes as dt

from quanyu.errors import InvalidInput
from quanyu.profiles.conditions import Condition, Match
from quanyu.profiles.fields import Field, Kind, resolve
from quanyu.warehouse.functions import json_text
from quanyu.warehouse.schema import TS

_ORDERING = frozenset({"<", "<=", ">", ">="})
_NULLS = frozenset({"is_null", "not_null"})
_EQUALITY = frozenset({"=", "!=", "in", "not_in"})
OPS_BY_KIND: dict[Kind, frozenset[str]] = {
    Kind.INTEGER: _ORDERING | _EQUALITY | _NULLS,
    Kind.NUMBER: _ORDERING | _EQUALITY | _NULLS,
    Kind.TIMESTAMP: _ORDERING | _NULLS,
    Kind.TEXT: _EQUALITY | _NULLS | {"contains"},
    Kind.BOOLEAN: frozenset({"=", "!="}) | _NULLS,
    Kind.TEXT_LIST: frozenset({"contains", "in", "not_in"}) | _NULLS,
    Kind.TRAIT: _ORDERING | _EQUALITY | _NULLS | {"contains"},
}
MAX_DAYS_AGO = 36_500


@dataclass(frozen=True)
class DaysAgo:
    days: int


@dataclass(frozen=True)
class Checked:
    field: Field
    op: str
    value: Any


@dataclass(frozen=True)
class CheckedGroup:
    mode: str  # "all" | "any"
    items: tuple[Checked | CheckedGroup, ...]


# ----------------------------------------------------------------------------------------------
# Pass 1: check


def check(match: Match, *, allow_tags: bool = False, path: str = "") -> CheckedGroup:
    """The typed tree of `match`; InvalidInput on an unknown field, operator or literal."""
    items: list[Checked | CheckedGroup] = []
    for i, item in enumerate(match.items):
        where = f"{path}{match.mode}[{i}]"
        if isinstance(item, Match):
            items.append(check(item, allow_tags=allow_tags, path=where + "."))
        else:
            items.append(_check_condition(item, where, allow_tags))
    return CheckedGroup(match.mode, tuple(items))


def _check_condition(cond: Condition, where: str, allow_tags: bool) -> Checked:
    try:
        field = resolve(cond.field, allow_tags=allow_tags)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}", code=exc.code, details={"path": where}) from None
    if cond.op not in OPS_BY_KIND[field.kind]:
        allowed = ", ".join(sorted(OPS_BY_KIND[field.kind]))
        raise _bad(
            where,
            f"运算符不适用 / operator {cond.op!r} does not apply to {field.name} ({field.kind}); use one of {allowed}",
        )
    return Checked(field, cond.op, _literal(field, cond.op, cond.value, where))


def _bad(where: str, message: str) -> InvalidInput:
    return InvalidInput(f"{where}: {message}", code="invalid_condition", details={"path": where})


def _literal(field: Field, op: str, value: Any, where: str) -> Any:
    if op in _NULLS:
        if value is not None:
            raise _bad(where, f"{op} 不需要取值 / takes no value")
        return None
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise _bad(where, f"{op} 需要非空列表 / needs a non-empty list of values")
        values = [_scalar(field, op, v, where) for v in value]
        if len({type(v) for v in values}) > 1:
            raise _bad(where, "列表值类型需一致 / list values must all be texts or all numbers")
        return tuple(values)
    return _scalar(field, op, value, where)


def _scalar(field: Field, op: str, value: Any, where: str) -> Any:
    kind = field.kind
    if kind in (Kind.INTEGER, Kind.NUMBER) or (kind is Kind.TRAIT and op in _ORDERING):
        return _number(value, where, field)
    if kind is Kind.TIMESTAMP:
        return _instant(value, where, field)
    if kind is Kind.BOOLEAN:
        if not isinstance(value, bool):
            raise _bad(where, f"{field.name} 需要 true/false / needs true or false, got {value!r}")
        return value
    if (
        kind is Kind.TRAIT
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and op != "contains"
    ):
        return _number(value, where, field)
    if not isinstance(value, str):
        raise _bad(where, f"{field.name} 需要文本 / needs a text value, got {value!r}")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise _bad(where, "文本不能含控制字符 / a text value may not contain control characters")
    return value


def _number(value: Any, where: str, field: Field) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(where, f"{field.name} 需要数值 / needs a number, got {value!r}")
    return value


def _instant(value: Any, where: str, field: Field) -> datetime | DaysAgo:
    if isinstance(value, dict) and set(value) == {"days_ago"}:
        days = value["days_ago"]
        if isinstance(days, int) and not isinstance(days, bool) and 0 <= days <= MAX_DAYS_AGO:
            return DaysAgo(days)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise _bad(
        where,
        f'{field.name} 需要时间 / needs an ISO-8601 time ("2026-03-01", "2026-03-01T08:00:00+08:00") '
        f'or {{"days_ago": N}} (0–{MAX_DAYS_AGO}), got {value!r}',
    )


# ----------------------------------------------------------------------------------------------
# Pass 2: Ibis


def predicate(tree: CheckedGroup, table: ibis.Table, now: datetime) -> ibis.BooleanValue:
    """The boolean expression of `tree` over `table` (a profiles-shaped table)."""
    parts = [predicate(item, table, now) if isinstance(item, CheckedGroup) else _leaf(item, table, now)
             for item in tree.items]  # fmt: skip
    return ibis.and_(*parts) if tree.mode == "all" else ibis.or_(*parts)


def _leaf(c: Checked, table: ibis.Table, now: datetime) -> ibis.BooleanValue:
    column = _column(c, table)
    if c.op == "is_null":
        return _missing(c.field, column)
    if c.op == "not_null":
        return ~_missing(c.field, column)
    if c.field.kind is Kind.TEXT_LIST:
        return _list_test(c, column)
    value = _typed(c, now)
    test = {
        "=": lambda: column == value,
        "!=": lambda: column != value,
        "<": lambda: column < value,
        "<=": lambda: column <= value,
        ">": lambda: column > value,
        ">=": lambda: column >= value,
        "in": lambda: column.isin(value),
        "not_in": lambda: column.notin(value),
        "contains": lambda: column.contains(value),
    }[c.op]()
    if c.op in ("!=", "not_in"):
        return column.isnull() | test.fill_null(False)
    return test.fill_null(False)


def _column(c: Checked, table: ibis.Table) -> Any:
    if c.field.kind is not Kind.TRAIT:
        return table[c.field.column]
    # A map lookup, not a JSON path: the SQL layer would rewrite a path like `a.b` into `$.a.b`.
    value = table.traits.try_cast(dt.Map(dt.string, dt.json))[ibis.literal(c.field.trait, type=dt.string)]
    text = json_text(value, ibis.literal("$", type=dt.string))
    numeric = isinstance(c.value, int | float) or (
        isinstance(c.value, tuple) and isinstance(c.value[0], int | float)
    )
    return text.try_cast(dt.float64) if numeric else text


def _missing(field: Field, column: Any) -> ibis.BooleanValue:
    if field.kind is Kind.TEXT_LIST:
        return column.isnull() | (column.length() == 0)
    return column.isnull()


def _list_test(c: Checked, column: Any) -> ibis.BooleanValue:
    if c.op == "contains":
        return column.contains(ibis.literal(c.value, type=dt.string)).fill_null(False)
    wanted = ibis.literal(list(c.value), type=dt.Array(dt.string))
    overlap = column.intersect(wanted).length() > 0
    return overlap.fill_null(False) if c.op == "in" else ~overlap.fill_null(False)


def _typed(c: Checked, now: datetime) -> Any:
    kind = c.field.kind
    if isinstance(c.value, tuple):
        return [_one(kind, v, now) for v in c.value]
    return _one(kind, c.value, now)


def _one(kind: Kind, value: Any, now: datetime) -> ibis.Value:
    if isinstance(value, DaysAgo):
        return ibis.literal(now - timedelta(days=value.days), type=TS)
    if isinstance(value, datetime):
        return ibis.literal(value.astimezone(UTC), type=TS)
    if isinstance(value, bool):
        return ibis.literal(value, type=dt.boolean)
    if isinstance(value, int | float):
        return ibis.literal(float(value), type=dt.float64)
    return ibis.literal(value, type=dt.string)


def compile_match(
    match: Match, table: ibis.Table, now: datetime, *, allow_tags: bool = False
) -> ibis.BooleanValue:
    """Check and compile in one step."""
    return predicate(check(match, allow_tags=allow_tags), table, now)
