"""What an import format is: its columns, the source types it belongs to, and how its rows
become Segment messages.

A format's `build` is pure: typed rows in, messages out (each with the line it came from and
a stable key), plus problems found across rows (an order whose lines disagree) and rows
deliberately skipped (an order still waiting for payment). Deterministic message ids come from
the keys, so importing the same file twice stores nothing new.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quanyu.collect.sources import SourceInfo
from quanyu.connectors.imports.columns import Column
from quanyu.connectors.imports.report import Problem

Values = dict[str, Any]


@dataclass(frozen=True)
class Parsed:
    line: int
    values: Values


@dataclass(frozen=True)
class Built:
    line: int
    key: str
    message: dict[str, Any]


@dataclass
class Output:
    messages: list[Built] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Context:
    source: SourceInfo
    options: dict[str, str]


@dataclass(frozen=True)
class Format:
    kind: str  # orders | pos | signups | live | customers
    name: str  # tmall, jd, … for orders; the kind itself otherwise
    label: str
    source_types: frozenset[str]
    columns: tuple[Column, ...]
    build: Callable[[list[Parsed], Context], Output]
    # Columns given on the command line instead of in the file (`--map`), for generic formats.
    mappable: bool = False


def identity(
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    external: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The identity part of a message: ids, and platform ids in `context.externalIds` the way
    the collector and the demo send them (identity resolution reads them from there)."""
    message: dict[str, Any] = {}
    if user_id:
        message["userId"] = user_id
    if anonymous_id:
        message["anonymousId"] = anonymous_id
    ids = [
        {"id": value, "type": kind, "collection": "users", "encoding": "none"}
        for kind, value in external or []
        if value
    ]
    if ids:
        message["context"] = {"externalIds": ids}
    return message


def iso(value: Any) -> str:
    """A time as the importers carry it: already UTC ISO-8601 text, or a datetime."""
    return value if isinstance(value, str) else str(value.isoformat())
