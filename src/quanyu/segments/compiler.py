"""Segment definitions → one Ibis expression: the profile ids of the segment's members.

A pure builder: tables in, expression out, nothing executed. The whole definition becomes one
filter over the workspace's `profiles` rows:

- profile conditions (traits, computed fields, identifiers, tags, reachability) are boolean
  expressions on the profile row;
- event conditions become `profile_id IN (…)` over the person-attributed events, filtered first
  (names, window, channel, source, properties) and grouped only when a count, an aggregate or
  a first/last time is tested; a test that zero events satisfy ("bought at most once") also
  holds for people with no such event at all;
- sequences join the steps' events on the person, with the gap as a join condition;
- `not` is SQL NOT: every leaf is two-valued (NULL folds to false), so NOT is the set
  complement and NOT(NOT x) = x;
- `{"segment": id}` inlines the saved segment's definition (cycles refused).

User values only ever become typed `ibis.literal`s, so the SQL compiler quotes them; field
names are checked against allow lists; the workspace filter is added here, on every table, by
the compiler (never by the definition).
"""

from __future__ import annotations

import calendar
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.datatypes as dt

from quanyu.errors import InvalidInput
from quanyu.identity.identifiers import IdentifierTypes
from quanyu.profiles.conditions import tag_name
from quanyu.profiles.fields import FIELDS, Kind
from quanyu.profiles.identifiers import REACH
from quanyu.segments import windows
from quanyu.segments.definition import (
    AggregateTest,
    Condition,
    CountTest,
    Definition,
    EventCondition,
    Group,
    IdentifierCondition,
    NotCondition,
    PropertyFilter,
    ReachableCondition,
    SegmentCondition,
    SequenceCondition,
    TagCondition,
    TimeTest,
    TraitCondition,
    bad,
    path_of,
)
from quanyu.warehouse.base import Warehouse
from quanyu.warehouse.functions import json_text
from quanyu.warehouse.schema import TS

DEFAULT_TIMEZONE = ZoneInfo("Asia/Shanghai")
MAX_SEGMENT_DEPTH = 8  # segments referring to segments referring to …
MAX_COMPILED = 1000  # conditions in one query once referenced segments are inlined

# Event fields a property filter may name that the warehouse keeps as typed columns; any other
# name is a key of the event's `properties`.
EVENT_TEXT_COLUMNS = frozenset({
    "event", "name", "type", "channel", "source_type", "source_id", "domain", "presence", "currency",
    "order_id", "store_id", "guide_id", "utm_campaign", "utm_source", "utm_medium", "utm_term", "utm_content",
})  # fmt: skip
EVENT_NUMBER_COLUMNS = frozenset({"amount"})
# Trait and property keys: word characters (any script), dots and dashes. Each is looked up as
# one key (a JSON pointer to it, `_json_key`), never parsed as a JSON path.
_KEY = re.compile(r"^\w[\w.\-]{0,79}$")


@dataclass(frozen=True)
class SegmentContext:
    """What a definition compiles against: one workspace, one evaluation moment."""

    workspace_id: str
    now: datetime  # aware
    timezone: ZoneInfo
    profiles: ibis.Table  # the warehouse `profiles` table
    events: ibis.Table  # events with a `profile_id` column (`person_events`, or `membership.profile_events`)
    event_groups: Mapping[str, Sequence[str]] = field(default_factory=dict)
    segments: Callable[[str], Definition | None] = lambda _id: None
    identifier_types: IdentifierTypes = field(default_factory=IdentifierTypes)


def compile_segment(definition: Definition, ctx: SegmentContext) -> ibis.Table:
    """The members of `definition`: a one-column table of profile ids."""
    return members(definition, ctx).select("profile_id")


def segment_context(
    warehouse: Warehouse,
    workspace_id: str,
    *,
    now: datetime | None = None,
    timezone: ZoneInfo = DEFAULT_TIMEZONE,
    event_groups: Mapping[str, Sequence[str]] | None = None,
    segments: Callable[[str], Definition | None] | None = None,
    identifier_types: IdentifierTypes | None = None,
) -> SegmentContext:
    """A context over the warehouse's tables: profiles, and the person events the identity
    graph keeps (`identity.person_events`: events with their profile id written in)."""
    table = warehouse.table
    events = table("person_events")
    return SegmentContext(
        workspace_id=workspace_id,
        now=now or datetime.now(UTC),
        timezone=timezone,
        profiles=table("profiles"),
        events=events,
        event_groups=event_groups or {},
        segments=segments or (lambda _id: None),
        identifier_types=identifier_types or IdentifierTypes(),
    )


def members(definition: Definition, ctx: SegmentContext) -> ibis.Table:
    """The members' profile rows (every column), for previews and breakdowns."""
    profiles = ctx.profiles
    return profiles.filter(
        profiles.workspace_id == _text(ctx.workspace_id), predicate(definition, ctx, profiles)
    )


def predicate(definition: Definition, ctx: SegmentContext, profiles: ibis.Table) -> ibis.BooleanValue:
    """The membership test over `profiles` rows (the caller filters them to the workspace)."""
    return _Compiler(ctx, profiles).group(definition, "", ())


class _Compiler:
    def __init__(self, ctx: SegmentContext, profiles: ibis.Table) -> None:
        self.ctx = ctx
        self.p = profiles
        # A naive moment is taken as UTC, never as the server's local time.
        self.now = (ctx.now if ctx.now.tzinfo else ctx.now.replace(tzinfo=UTC)).astimezone(UTC)
        self.compiled = 0  # conditions compiled, inlined segments included
        self.events = ctx.events

    # -- composition ---------------------------------------------------------------------------

    def group(self, group: Group, path: str, stack: tuple[str, ...]) -> ibis.BooleanValue:
        parts = [
            self.condition(c, f"{path}{'.' if path else ''}conditions[{i}]", stack)
            for i, c in enumerate(group.conditions)
        ]
        return ibis.and_(*parts) if group.match == "all" else ibis.or_(*parts)

    def condition(self, c: Condition, path: str, stack: tuple[str, ...]) -> ibis.BooleanValue:
        self.compiled += 1
        if self.compiled > MAX_COMPILED:
            # Each reference inlines a whole segment: a few segments that each use the one
            # before twice would otherwise grow the query exponentially.
            raise InvalidInput(
                f"分群定义过大 / segment definition too large at {path}: more than {MAX_COMPILED} "
                "conditions once the segments it uses are inlined (引用的分群展开后条件过多)",
                code="segment_too_large",
                details=[{"path": path, "message": f"more than {MAX_COMPILED} conditions once inlined"}],
            )
        if isinstance(c, Group):
            return self.group(c, path, stack)
        if isinstance(c, NotCondition):
            return ~self.condition(c.not_, f"{path}.not", stack)
        if isinstance(c, TraitCondition):
            return self.trait(c, path)
        if isinstance(c, IdentifierCondition):
            return self.identifier(c, path)
        if isinstance(c, TagCondition):
            return self.p.tags.contains(_text(_tag(c.tag, f"{path}.tag"))).fill_null(False)
        if isinstance(c, ReachableCondition):
            return self.p.reachable_channels.contains(_text(_channel(c.reachable, path))).fill_null(False)
        if isinstance(c, SegmentCondition):
            return self.segment(c, path, stack)
        if isinstance(c, EventCondition):
            return self.event(c, path)
        if isinstance(c, SequenceCondition):
            return self.sequence(c, path)
        raise AssertionError(f"unhandled condition {type(c).__name__}")  # the union is closed

    def segment(self, c: SegmentCondition, path: str, stack: tuple[str, ...]) -> ibis.BooleanValue:
        if c.segment in stack:
            cycle = " → ".join([*stack, c.segment])
            raise bad(f"{path}.segment", f"分群循环引用 / segments refer to each other in a cycle: {cycle}")
        if len(stack) >= MAX_SEGMENT_DEPTH:
            chain = " → ".join([*stack, c.segment])
            raise bad(
                f"{path}.segment",
                f"分群引用过深 / segments refer through at most {MAX_SEGMENT_DEPTH} others: {chain}",
            )
        inner = self.ctx.segments(c.segment)
        if inner is None:
            raise bad(f"{path}.segment", f"未知分群 / unknown segment {c.segment!r}")
        return self.group(inner, f"{path}<{c.segment}>", (*stack, c.segment))

    # -- profile conditions --------------------------------------------------------------------

    def trait(self, c: TraitCondition, path: str) -> ibis.BooleanValue:
        kind, column = self._profile_field(c.trait, path)
        where = f"{path}.value"
        if c.op in ("exists", "not_exists"):
            _no_value(c.value, where, c.op)
            present = (
                column.notnull() if kind is not Kind.TEXT_LIST else (column.length() > 0).fill_null(False)
            )
            return present if c.op == "exists" else ~present
        if kind is Kind.TEXT_LIST:
            return self._list_test(c, column, path)
        if c.op in ("within", "not_within"):
            stamp = self._as_time(kind, column, path)
            window = _window(c.value, where)
            inside = _in_interval(stamp, windows.resolve(window, self.now, self.ctx.timezone, where))
            return inside if c.op == "within" else ~inside & stamp.notnull()
        if c.op == "anniversary_within":
            return self._anniversary(kind, column, c.value, path)
        return _compare(kind, column, c.op, c.value, path, self.now, self.ctx.timezone)

    def _profile_field(self, name: str, path: str) -> tuple[Kind, Any]:
        if name in FIELDS and not name.startswith("traits."):
            spec = FIELDS[name]
            return spec.kind, self.p[spec.column]
        key = name.removeprefix("traits.")
        if not _valid_key(key):
            raise bad(
                f"{path}.trait",
                f"属性名无效 / invalid trait name {key!r} (letters, digits, _ . -, at most 80)",
            )
        return Kind.TRAIT, _json_key(self.p.traits, key)

    def _list_test(self, c: TraitCondition, column: Any, path: str) -> ibis.BooleanValue:
        where = f"{path}.value"
        if c.op in ("contains", "not_contains", "eq"):
            hit = column.contains(_text(_string(c.value, where))).fill_null(False)
            return ~hit if c.op == "not_contains" else hit
        if c.op in ("in", "not_in"):
            wanted = ibis.literal(
                [_string(v, where) for v in _list(c.value, where)], type=dt.Array(dt.string)
            )
            overlap = (column.intersect(wanted).length() > 0).fill_null(False)
            return overlap if c.op == "in" else ~overlap
        raise bad(
            f"{path}.op",
            f"运算符不适用于列表字段 / {c.op!r} does not apply to a list field; use contains, in, not_in, exists",
        )

    def _as_time(self, kind: Kind, column: Any, path: str) -> Any:
        if kind is Kind.TIMESTAMP:
            return column
        if kind is Kind.TRAIT:
            return _trait_time(column, self.now, self.ctx.timezone)
        raise bad(f"{path}.op", "只有时间字段可用时间窗口 / only time fields take a window")

    def _anniversary(self, kind: Kind, column: Any, value: Any, path: str) -> ibis.BooleanValue:
        where = f"{path}.value"
        if not (
            isinstance(value, dict)
            and set(value) == {"days"}
            and _is_int(value["days"])
            and 0 <= value["days"] <= 366
        ):
            raise bad(where, 'anniversary_within takes {"days": N} with 0 ≤ N ≤ 366 (如 {"days": 7})')
        if kind is Kind.TRAIT:
            local = column.try_cast(dt.date)  # a birthday is a date, not an instant
        else:
            stamp = self._as_time(kind, column, path)
            # Month and day as the workspace sees them (its offset at the evaluation moment).
            offset = self.now.astimezone(self.ctx.timezone).utcoffset() or timedelta(0)
            local = (stamp + ibis.interval(seconds=int(offset.total_seconds()))).cast(dt.Timestamp())
        month_day = local.month() * 100 + local.day()
        today = self.now.astimezone(self.ctx.timezone).date()
        days = [today + timedelta(days=i) for i in range(value["days"] + 1)]
        wanted = {d.month * 100 + d.day for d in days}
        if 228 in wanted and not calendar.isleap(today.year if today.month <= 2 else today.year + 1):
            wanted.add(229)  # people born on 29 February celebrate on the 28th in common years
        return month_day.isin(sorted(wanted)).fill_null(False)

    def identifier(self, c: IdentifierCondition, path: str) -> ibis.BooleanValue:
        try:
            itype = self.ctx.identifier_types.get(c.identifier)
        except InvalidInput:
            known = ", ".join(t.name for t in self.ctx.identifier_types)
            raise bad(
                f"{path}.identifier",
                f"未知标识类型 / unknown identifier type {c.identifier!r}; known: {known}",
            ) from None
        ids = self.p.identifiers
        if c.scope is not None and not itype.scoped:
            raise bad(
                f"{path}.scope",
                f"{itype.name} 不分应用 / {itype.name} is not scoped to an app; leave scope out",
            )

        def of_type(x: Any) -> ibis.BooleanValue:
            test = x["type"] == _text(itype.name)
            return test & (x["scope"] == _text(c.scope)) if c.scope is not None else test

        if c.op == "eq":
            if c.value is None:
                raise bad(f"{path}.value", "eq 需要取值 / eq needs a value")
            if itype.scoped and c.scope is None:
                raise bad(
                    f"{path}.scope",
                    f"{itype.name} 需要应用 ID / {itype.name} needs the app id it belongs to (scope)",
                )
            normal = itype.normalise(c.value)
            if normal is None or len(c.value) > 256:
                raise bad(f"{path}.value", f"标识值无效 / not a valid {itype.name}: {c.value[:80]!r}")
            hit = ids.filter(lambda x: of_type(x) & (x["value"] == _text(normal))).length() > 0
            return hit.fill_null(False)
        _no_value(c.value, f"{path}.value", c.op)
        held = (ids.filter(of_type).length() > 0).fill_null(False)
        return held if c.op == "exists" else ~held

    # -- event conditions ----------------------------------------------------------------------

    def matching_events(
        self, c: EventCondition, path: str, since: datetime | None = None, until: datetime | None = None
    ) -> ibis.Table:
        """The person-attributed events a condition's filters keep (before any count).

        One filter with every predicate (each separate `.filter` is another SELECT for Ibis to
        merge, which costs compile time), none wrapped for NULLs: a WHERE drops unknowns anyway,
        and a bare `timestamp >= …` is what lets the engine skip row groups by their min/max.
        """
        e = self.events
        # The workspace filter goes into each condition's own filter. A shared filtered table
        # would be one relation used by several subqueries, which Ibis turns into a CTE as soon
        # as a JSON function (a builtin UDF, which it will not merge) sits above it: DuckDB then
        # materialises every event of the workspace instead of scanning with each filter.
        tests: list[ibis.BooleanValue] = [e.profile_id.notnull()]
        if "workspace_id" in e.columns:
            tests.insert(0, e.workspace_id == _text(self.ctx.workspace_id))
        names = self._names(c.event, c.event_group, path)
        if c.type in ("page", "screen"):
            tests.append(e.type == _text(c.type))
            if names is not None:
                tests.append(e.name.isin([_text(n) for n in names]))
        else:
            if c.type is not None:
                tests.append(e.type == _text(c.type))
            if names is not None:
                tests.append(e.event.isin([_text(n) for n in names]))
        for column, wanted in (
            ("channel", c.channel),
            ("source_type", c.source_type),
            ("source_id", c.source_id),
        ):
            if wanted is not None:
                tests.append(e[column].isin([_text(_string(v, f"{path}.{column}")) for v in wanted]))
        if c.window is not None:
            interval = windows.resolve(c.window, self.now, self.ctx.timezone, f"{path}.window")
            tests.extend(_bounds(e.timestamp, interval))
        # Bounds a sequence knows for its steps (inclusive), bare so the scan can use them.
        if since is not None:
            tests.append(e.timestamp >= _ts(since))
        if until is not None:
            tests.append(e.timestamp <= _ts(until))
        for i, f in enumerate(c.where):
            tests.append(self._property(e, f, f"{path}.where[{i}]"))
        return e.filter(*tests)

    def event(self, c: EventCondition, path: str) -> ibis.BooleanValue:
        e = self.matching_events(c, path)
        aggregates = [
            (fn, getattr(c, fn)) for fn in ("sum", "avg", "min", "max") if getattr(c, fn) is not None
        ]
        if c.count is None and not aggregates and c.first_time is None and c.last_time is None:
            return self.p.profile_id.isin(e.profile_id)
        metrics: dict[str, Any] = {"n": e.count()}
        tests: list[Callable[[ibis.Table], ibis.BooleanValue]] = []
        if c.count is not None:
            count = c.count
            tests.append(lambda t: _ordered(t.n, count.op, ibis.literal(count.value, type=dt.int64)))
        for fn, test in aggregates:
            column = self._number(e, test.property, f"{path}.{fn}.property")
            metrics[fn] = getattr(column, "mean" if fn == "avg" else fn)()
            tests.append(_aggregate_test(fn, test, f"{path}.{fn}.value"))
        for which, time_test in (("first_time", c.first_time), ("last_time", c.last_time)):
            if time_test is not None:
                metrics[which] = e.timestamp.min() if which == "first_time" else e.timestamp.max()
                tests.append(self._time_test(which, time_test, f"{path}.{which}"))
        grouped = e.group_by("profile_id").aggregate(**metrics)
        passing = grouped.filter(ibis.and_(*[t(grouped) for t in tests]))
        hit = self.p.profile_id.isin(passing.profile_id)
        if _zero_passes(c.count, aggregates, c.first_time, c.last_time):
            hit = hit | ~self.p.profile_id.isin(e.profile_id)
        return hit

    def _time_test(self, which: str, test: TimeTest, path: str) -> Callable[[ibis.Table], ibis.BooleanValue]:
        zone = self.ctx.timezone
        if test.within is not None:
            interval = windows.resolve(test.within, self.now, zone, f"{path}.within")
            return lambda t: _in_interval(t[which], interval)
        if test.before is not None:
            cut = _ts(windows.instant(test.before, self.now, zone, f"{path}.before"))
            return lambda t: t[which] < cut
        assert test.after is not None
        cut = _ts(windows.instant(test.after, self.now, zone, f"{path}.after"))
        return lambda t: t[which] >= cut

    def sequence(self, c: SequenceCondition, path: str) -> ibis.BooleanValue:
        spec = c.sequence
        span = windows.span(spec.within)
        gap = ibis.interval(seconds=int(span.total_seconds()))
        interval = (
            windows.resolve(spec.window, self.now, self.ctx.timezone, f"{path}.sequence.window")
            if spec.window is not None
            else windows.Interval(None, None)
        )
        # The first step inside the window (and, for did_not, only where the gap has passed);
        # every later step comes after the first, so no earlier than the window's start. Both as
        # plain time bounds on the scans, which is what lets the engine skip old row groups.
        first_until = self.now - span if spec.then == "did_not" else None
        if interval.end is not None:
            before_end = interval.end - timedelta(microseconds=1)
            first_until = before_end if first_until is None else min(first_until, before_end)
        steps = []
        for i, step in enumerate(spec.steps):
            since, until = interval.start, first_until if i == 0 else None
            e = self.matching_events(step.as_event(), f"{path}.sequence.steps[{i}]", since, until)
            steps.append(e.select(pid="profile_id", at="timestamp"))
        first = steps[0]
        if spec.then == "did_not":
            # Decided only once the gap has passed (`first_until` above): a cart left an hour
            # ago is not yet abandoned.
            nxt = steps[1].view()
            left = first.anti_join(nxt, [first.pid == nxt.pid, nxt.at > first.at, nxt.at <= first.at + gap])
            return self.p.profile_id.isin(left.pid)
        # Each level: the (person, time) pairs a chain of the steps so far can end at.
        reached = first.distinct()
        for step in steps[1:]:
            nxt = step.view()
            joined = reached.join(
                nxt, [reached.pid == nxt.pid, nxt.at > reached.at, nxt.at <= reached.at + gap]
            )
            reached = joined.select(pid=reached.pid, at=nxt.at).distinct()
        return self.p.profile_id.isin(reached.pid)

    def _names(self, event: str | list[str] | None, group: str | None, path: str) -> list[str] | None:
        if group is not None:
            names = self.ctx.event_groups.get(group)
            if names is None:
                known = ", ".join(sorted(self.ctx.event_groups)) or "(none declared)"
                raise bad(
                    f"{path}.event_group", f"未知事件组 / unknown event group {group!r}; known: {known}"
                )
            return list(names)
        if event is None:
            return None
        return [event] if isinstance(event, str) else list(event)

    def _property(self, e: ibis.Table, f: PropertyFilter, path: str) -> ibis.BooleanValue:
        if f.property in EVENT_NUMBER_COLUMNS:
            kind, column = Kind.NUMBER, e[f.property]
        elif f.property in EVENT_TEXT_COLUMNS:
            kind, column = Kind.TEXT, e[f.property]
        else:
            if not _valid_key(f.property):
                raise bad(f"{path}.property", f"属性名无效 / invalid property name {f.property!r}")
            kind, column = Kind.TRAIT, _json_key(e.properties, f.property)
        if f.op in ("exists", "not_exists"):
            _no_value(f.value, f"{path}.value", f.op)
            return column.notnull() if f.op == "exists" else column.isnull()
        # A WHERE test: left bare when a missing value fails anyway, so that the engine can use
        # it as a scan filter (`amount >= 100` skips row groups by min/max; a COALESCE does not).
        return _compare(kind, column, f.op, f.value, path, self.now, self.ctx.timezone, in_filter=True)

    def _number(self, e: ibis.Table, name: str, path: str) -> Any:
        if name in EVENT_NUMBER_COLUMNS:
            return e[name]
        if name in EVENT_TEXT_COLUMNS or not _valid_key(name):
            raise bad(path, f"需要数值属性 / {name!r} is not a numeric property")
        return _json_key(e.properties, name).try_cast(dt.float64)


# ----------------------------------------------------------------------------------------------
# Comparisons


def _json_key(column: Any, key: str) -> Any:
    """The text of one top-level key of a JSON object (NULL when missing or JSON null).

    A JSON pointer (`/key`) names exactly one key: keys are word characters, dots and dashes
    (`_valid_key`), never `/` or `~`, so `a.b` is the key "a.b", not a path. Reading one key
    this way is about three times faster in DuckDB than casting the object to a map."""
    assert _valid_key(key)
    return json_text(column, _text("/" + key))


def _trait_time(text: Any, now: datetime, zone: ZoneInfo) -> Any:
    """A trait's time: an ISO-8601 time as written, and a bare date (`2026-04-01`, a sign-up
    day) as midnight in the workspace's zone, as windows read dates: at midnight UTC it would
    fall on the day before for a workspace west of Greenwich. The zone's offset is taken at
    the evaluation moment."""
    offset = now.astimezone(zone).utcoffset() or timedelta(0)
    local = text.try_cast(dt.date).cast(dt.Timestamp())
    midnight = (local - ibis.interval(seconds=int(offset.total_seconds()))).cast(TS)
    return ibis.ifelse(text.length() == 10, midnight, text.try_cast(TS))


def _compare(
    kind: Kind,
    column: Any,
    op: str,
    value: Any,
    path: str,
    now: datetime,
    zone: ZoneInfo,
    *,
    in_filter: bool = False,
) -> ibis.BooleanValue:
    """`column op value` for the condition at `path`, two-valued: a missing value fails every
    test except neq / not_in / not_contains (someone without a city is "not in 上海").
    `in_filter`: the test only ever stands in a WHERE, where unknown already means no, so a
    failing-when-missing test is returned without its NULL fold."""
    where = f"{path}.value"
    if op in ("contains", "not_contains", "starts_with") and kind not in (Kind.TEXT, Kind.TRAIT):
        raise bad(f"{path}.op", f"{op} 只适用于文本 / {op} applies to text")
    if kind is Kind.BOOLEAN and op not in ("eq", "neq", "in", "not_in"):
        raise bad(f"{path}.op", f"{op} 不适用于真假值 / {op} does not apply to true/false")
    if op in ("in", "not_in"):
        values = _list(value, where)
        col, literals = _typed(kind, column, values, where, now, zone)
        test = col.isin(literals)
    elif op == "between":
        pair = _list(value, where)
        if len(pair) != 2:
            raise bad(where, "between 需要 [下限, 上限] / between takes [low, high]")
        col, (low, high) = _typed(kind, column, pair, where, now, zone)
        test = (col >= low) & (col <= high)
    elif op in ("contains", "not_contains", "starts_with"):
        text = _text(_string(value, where))
        col = column
        test = col.startswith(text) if op == "starts_with" else col.contains(text)
    else:
        col, (literal,) = _typed(kind, column, [value], where, now, zone)
        test = _ordered(col, "eq" if op == "neq" else op, literal)
    if op in ("neq", "not_in", "not_contains"):
        return (~test).fill_null(True)
    return test if in_filter else test.fill_null(False)


def _ordered(column: Any, op: str, literal: Any) -> ibis.BooleanValue:
    return {
        "eq": lambda: column == literal,
        "neq": lambda: column != literal,
        "gt": lambda: column > literal,
        "gte": lambda: column >= literal,
        "lt": lambda: column < literal,
        "lte": lambda: column <= literal,
    }[op]()


def _typed(
    kind: Kind, column: Any, values: list[Any], where: str, now: datetime, zone: ZoneInfo
) -> tuple[Any, list[Any]]:
    """The column as the type the literals call for, and the literals."""
    if kind in (Kind.INTEGER, Kind.NUMBER):
        return column, [ibis.literal(float(_number(v, where)), type=dt.float64) for v in values]
    if kind is Kind.TIMESTAMP:
        return column, [_ts(windows.instant(_time_value(v, where), now, zone, where)) for v in values]
    if kind is Kind.BOOLEAN:
        return column, [ibis.literal(_bool(v, where), type=dt.boolean) for v in values]
    if kind is Kind.TEXT:
        return column, [_text(_string(v, where)) for v in values]
    # A trait: numbers compare as numbers, true/false as JSON booleans, anything else as text.
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return column.try_cast(dt.float64), [
            ibis.literal(float(_number(v, where)), type=dt.float64) for v in values
        ]
    if all(isinstance(v, bool) for v in values):
        return column, [_text("true" if v else "false") for v in values]
    if all(isinstance(v, dict) for v in values):
        return _trait_time(column, now, zone), [_ts(windows.instant(v, now, zone, where)) for v in values]
    return column, [_text(_string(v, where)) for v in values]


def _aggregate_test(fn: str, test: AggregateTest, where: str) -> Callable[[ibis.Table], ibis.BooleanValue]:
    if not math.isfinite(test.value):
        raise bad(where, "需要有限数值 / needs a finite number")
    literal = ibis.literal(float(test.value), type=dt.float64)
    return lambda t: _ordered(t[fn].cast(dt.float64), test.op, literal).fill_null(False)


def _zero_passes(count: CountTest | None, aggregates: list[Any], first: Any, last: Any) -> bool:
    """Whether someone with no matching event passes: only a count test can say so."""
    if count is None or aggregates or first is not None or last is not None:
        return False
    return {"eq": count.value == 0, "neq": count.value != 0, "gt": False, "gte": count.value == 0,
            "lt": count.value > 0, "lte": True}[count.op]  # fmt: skip


def _bounds(column: Any, interval: windows.Interval) -> list[ibis.BooleanValue]:
    tests = []
    if interval.start is not None:
        tests.append(column >= _ts(interval.start))
    if interval.end is not None:
        tests.append(column < _ts(interval.end))
    return tests or [column.notnull()]


def _in_interval(column: Any, interval: windows.Interval) -> ibis.BooleanValue:
    """Two-valued: a missing time is outside every window (safe under NOT)."""
    return ibis.and_(*_bounds(column, interval)).fill_null(False)


def _window(value: Any, where: str) -> Any:
    from pydantic import TypeAdapter, ValidationError

    from quanyu.segments.definition import Window

    try:
        return TypeAdapter(Window).validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        inner = path_of(first["loc"])
        raise bad(
            where if inner == "(root)" else f"{where}{'' if inner.startswith('[') else '.'}{inner}",
            f'需要时间窗口 / needs a window such as {{"last": 30, "unit": "day"}}: {first["msg"]}',
        ) from None


# ----------------------------------------------------------------------------------------------
# Literals


def _text(value: str) -> ibis.Value:
    return ibis.literal(value, type=dt.string)


def _ts(value: datetime) -> ibis.Value:
    return ibis.literal(value.astimezone(UTC), type=TS)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise bad(where, f"需要文本 / needs a text value, got {value!r}")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise bad(where, "文本不能含控制字符 / a text value may not contain control characters")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad(where, f"需要数值 / needs a number, got {value!r}")
    return float(value)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise bad(where, f"需要 true/false / needs true or false, got {value!r}")
    return value


def _time_value(value: Any, where: str) -> str | dict[str, int]:
    if isinstance(value, str | dict):
        return value
    raise bad(where, f'需要时间 / needs an ISO-8601 time or {{"days_ago": N}}, got {value!r}')


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise bad(where, "需要非空列表 / needs a non-empty list")
    return value


def _no_value(value: Any, where: str, op: str) -> None:
    if value is not None:
        raise bad(where, f"{op} 不需要取值 / {op} takes no value")


def _tag(value: str, where: str) -> str:
    """The tag as profiles store it (NFKC, trimmed), so `ＶＩＰ ` finds `VIP`."""
    try:
        return tag_name(value)
    except InvalidInput as exc:
        raise bad(where, exc.message) from None


def _channel(value: str, path: str) -> str:
    known = sorted({r.channel for r in REACH})
    if value not in known:
        raise bad(
            f"{path}.reachable",
            f"未知触达渠道 / unknown channel {value[:40]!r}; known: {', '.join(known)}",
        )
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _valid_key(key: str) -> bool:
    return _KEY.match(key) is not None
