"""Events as the journeys see them, and the property tests of triggers, waits, goals and exits.

The segment language's property tests (`PropertyFilter`), decided in Python on one event: on a
column the warehouse keeps typed, or a key (dotted for nested keys) of the event's properties.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from quanyu.segments.definition import PropertyFilter

TYPED = ("amount", "currency", "order_id", "store_id", "guide_id", "channel", "source_id", "source_type",
         "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")  # fmt: skip


@dataclass(frozen=True)
class Fact:
    """One event of one person."""

    workspace_id: str
    message_id: str
    profile_id: str
    event: str
    timestamp: datetime
    properties: dict[str, Any]
    typed: dict[str, Any]
    consent: dict[str, Any] | None = None


def matches(filters: Sequence[PropertyFilter], e: Fact) -> bool:
    return all(property_matches(f, e.typed.get(f.property) if f.property in TYPED else
                                _path(e.properties, f.property)) for f in filters)  # fmt: skip


def _path(props: Mapping[str, Any], key: str) -> Any:
    value: Any = props
    for part in key.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def property_matches(f: PropertyFilter, value: Any) -> bool:
    """One property test of the segment language, on one event's value (in Python)."""
    op, want = f.op, f.value
    if op == "exists":
        return value is not None
    if op == "not_exists":
        return value is None
    if value is None:
        return op in ("neq", "not_in", "not_contains")
    try:
        if op == "eq":
            return bool(value == want or str(value) == str(want))
        if op == "neq":
            return not (value == want or str(value) == str(want))
        if op in ("in", "not_in"):
            found = value in (want or []) or str(value) in [str(w) for w in (want or [])]
            return found if op == "in" else not found
        if op in ("contains", "not_contains"):
            found = str(want) in str(value)
            return found if op == "contains" else not found
        if op == "starts_with":
            return str(value).startswith(str(want))
        number = float(value)
        if op == "between":
            low, high = want
            return float(low) <= number <= float(high)
        limit = float(want)
        return {"gt": number > limit, "gte": number >= limit, "lt": number < limit, "lte": number <= limit}[
            op
        ]
    except (TypeError, ValueError, KeyError):
        return False
