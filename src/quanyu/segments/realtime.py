"""Real-time entry: which segments the pipeline decides as events arrive, and deciding them.

A segment is **realtime** when every condition can be decided from one incoming event plus the
person's current profile: profile conditions (traits, identifiers, tags, reachability), "did
this event" conditions with or without a rolling window, property, channel and source filters,
and segments that are themselves realtime. Anything whose truth changes with the passage of
time alone, or that needs history beyond "there is such an event", is **scheduled**: `not`
around event conditions, counts, aggregates and first/last-time tests, sequences, calendar and
absolute windows, relative-date tests (`within`, `anniversary_within`, `days_ago`), RFM scores.

After the pipeline has refreshed the profiles a drain touched, `RealtimeSegments.on_profiles`
re-evaluates each live realtime segment for just those people (`membership.refresh_people`)
and logs who entered and who left with mode "realtime". Realtime segments keep their scheduled
refresh too: exits because a rolling window ran out happen there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import ibis

from quanyu.segments.definition import (
    CalendarWindow,
    Condition,
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
)
from quanyu.segments.membership import Refresh, refresh_people
from quanyu.warehouse.base import Warehouse
from quanyu.warehouse.schema import PERSON_EVENTS

if TYPE_CHECKING:
    from quanyu.segments.saved import LiveSegment, SavedSegments

log = logging.getLogger(__name__)

Mode = Literal["realtime", "scheduled"]
# Profile fields scored against the whole workspace and today: they move without an event.
_RELATIVE_FIELDS = frozenset({"rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment"})
_REALTIME = (
    "实时：每个条件都可由一条新事件加当前画像判定 / realtime: every condition can be decided from one "
    "incoming event plus the current profile"
)


@dataclass(frozen=True)
class Reason:
    """Why a segment has its mode, at one node (`conditions[1].count`)."""

    path: str
    message: str

    def public(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


def mode_of(definition: Group, lookup: Callable[[str], Definition | None]) -> tuple[Mode, list[Reason]]:
    """ "realtime" or "scheduled", with the reasons: for a scheduled segment every node that
    needs the schedule; for a realtime one a summary and its rolling windows (whose expiry the
    schedule handles). `lookup(id)` is a saved segment's current definition (None: unknown)."""
    walker = _Walker(lookup)
    blockers = list(walker.group(definition, "", ()))
    if blockers:
        return "scheduled", blockers
    return "realtime", [Reason("(root)", _REALTIME), *walker.notes]


def public_mode(definition: Group, lookup: Callable[[str], Definition | None]) -> dict[str, Any]:
    """The `mode` and `reasons` fields of a segment's JSON."""
    mode, reasons = mode_of(definition, lookup)
    return {"mode": mode, "reasons": [r.public() for r in reasons]}


def _join(path: str, child: str) -> str:
    return f"{path}.{child}" if path else child


class _Walker:
    """Walks a definition the way the compiler does (same paths, segments inlined as
    `conditions[2]<seg_x>.conditions[0]`), yielding the nodes that need the schedule."""

    def __init__(self, lookup: Callable[[str], Definition | None]) -> None:
        self.lookup = lookup
        self.notes: list[Reason] = []

    def group(self, group: Group, path: str, stack: tuple[str, ...]) -> Iterator[Reason]:
        for i, child in enumerate(group.conditions):
            yield from self.condition(child, _join(path, f"conditions[{i}]"), stack)

    def condition(self, c: Condition, path: str, stack: tuple[str, ...]) -> Iterator[Reason]:
        if isinstance(c, Group):
            yield from self.group(c, path, stack)
        elif isinstance(c, NotCondition):
            yield from self.negation(c, path, stack)
        elif isinstance(c, TraitCondition):
            yield from _trait(c, path)
        elif isinstance(c, IdentifierCondition | TagCondition | ReachableCondition):
            return
        elif isinstance(c, SegmentCondition):
            yield from self.segment(c, path, stack)
        elif isinstance(c, EventCondition):
            yield from self.event(c, path)
        elif isinstance(c, SequenceCondition):
            yield Reason(
                f"{path}.sequence",
                "序列需要事件历史与时间间隔，按计划刷新 / a sequence needs the event history and the time "
                "between steps: refreshed on schedule",
            )

    def negation(self, c: NotCondition, path: str, stack: tuple[str, ...]) -> Iterator[Reason]:
        inner = list(self.condition(c.not_, f"{path}.not", stack))
        if inner:
            yield from inner
        elif self.has_events(c.not_, stack):
            yield Reason(
                f"{path}.not",
                "否定事件条件：没发生的事随时间成立，按计划刷新 / `not` around an event condition: what "
                "did not happen becomes true with the passage of time, refreshed on schedule",
            )

    def segment(self, c: SegmentCondition, path: str, stack: tuple[str, ...]) -> Iterator[Reason]:
        if c.segment in stack:
            return  # a cycle: refused when saved, nothing to add here
        inner = self.lookup(c.segment)
        if inner is None:
            yield Reason(f"{path}.segment", f"未知分群 / unknown segment {c.segment!r}")
            return
        yield from self.group(inner, f"{path}<{c.segment}>", (*stack, c.segment))

    def event(self, c: EventCondition, path: str) -> Iterator[Reason]:
        if c.count is not None and not (
            (c.count.op == "gte" and c.count.value == 1) or (c.count.op == "gt" and c.count.value == 0)
        ):
            yield Reason(
                f"{path}.count",
                "次数条件需要事件历史，按计划刷新 / a count needs the event history: refreshed on schedule",
            )
        for fn in ("sum", "avg", "min", "max"):
            if getattr(c, fn) is not None:
                yield Reason(
                    f"{path}.{fn}",
                    f"{fn} 汇总需要事件历史，按计划刷新 / a {fn} of a property needs the event history: "
                    "refreshed on schedule",
                )
        for which in ("first_time", "last_time"):
            if getattr(c, which) is not None:
                yield Reason(
                    f"{path}.{which}",
                    f"首次/最近时间随时间变化，按计划刷新 / a {which.replace('_', ' ')} test changes with "
                    "the passage of time: refreshed on schedule",
                )
        if isinstance(c.window, Rolling):
            self.notes.append(
                Reason(
                    f"{path}.window",
                    "滚动窗口到期后的离开由计划刷新处理 / exits when this rolling window runs out come "
                    "with the scheduled refresh",
                )
            )
        elif c.window is not None:
            yield _calendar(c.window, f"{path}.window")
        for i, f in enumerate(c.where):
            if _relative(f.value):
                yield _days_ago(f"{path}.where[{i}].value")

    def has_events(self, c: Condition, stack: tuple[str, ...]) -> bool:
        """Whether `c` holds an event condition or a sequence (segments it uses included)."""
        if isinstance(c, EventCondition | SequenceCondition):
            return True
        if isinstance(c, Group):
            return any(self.has_events(child, stack) for child in c.conditions)
        if isinstance(c, NotCondition):
            return self.has_events(c.not_, stack)
        if isinstance(c, SegmentCondition) and c.segment not in stack:
            inner = self.lookup(c.segment)
            return inner is not None and self.has_events(inner, (*stack, c.segment))
        return False


def _trait(c: TraitCondition, path: str) -> Iterator[Reason]:
    if c.op in ("within", "not_within", "anniversary_within"):
        yield Reason(
            f"{path}.op",
            f"{c.op} 相对今天判定，随时间变化，按计划刷新 / {c.op} is relative to today and changes with "
            "the passage of time: refreshed on schedule",
        )
    elif _relative(c.value):
        yield _days_ago(f"{path}.value")
    elif c.trait in _RELATIVE_FIELDS:
        yield Reason(
            f"{path}.trait",
            f"{c.trait} 相对今天和全体客户评分，按计划刷新 / {c.trait} is scored against today and the "
            "whole workspace: refreshed on schedule",
        )


def _calendar(window: Any, path: str) -> Reason:
    kind = "日历" if isinstance(window, CalendarWindow) else "固定"
    name = "calendar" if isinstance(window, CalendarWindow) else "absolute"
    return Reason(
        path,
        f"{kind}窗口的起止随时间推移，按计划刷新 / a {name} window moves in or out with the passage "
        "of time: refreshed on schedule",
    )


def _days_ago(path: str) -> Reason:
    return Reason(
        path,
        "相对日期（days_ago）随时间变化，按计划刷新 / a relative date (days_ago) changes with the passage "
        "of time: refreshed on schedule",
    )


def _relative(value: Any) -> bool:
    """A `{"days_ago": N}` value, alone or in a list."""
    if isinstance(value, dict):
        return True
    return isinstance(value, list) and any(isinstance(v, dict) for v in value)


# ---------------------------------------------------------------------------------------------
# The pipeline's step


def arriving_events(fresh: ibis.Table, nodes: ibis.Table, workspace_id: str) -> ibis.Table:
    """Just-stored events of a workspace whose person the graph already knows, by the event's
    user id or else its anonymous id, in the shape of `person_events` (a pure builder)."""
    mine = fresh.filter(fresh.workspace_id == workspace_id)
    known = nodes.filter(nodes.workspace_id == workspace_id).select("key", "profile_id")
    columns = [c for c in PERSON_EVENTS.names if c not in ("key", "profile_id")]

    def by(kind: str, column: str) -> ibis.Table:
        keyed = mine.filter(mine[column].notnull()).mutate(key=ibis.literal(f"{kind}:") + mine[column])
        return keyed.join(known, "key").select(*columns, "key", "profile_id")

    by_user = by("user_id", "user_id")
    by_cookie = by("anonymous_id", "anonymous_id")
    by_cookie = by_cookie.anti_join(by_user, "message_id")  # the user id decides when both are known
    return by_user.union(by_cookie).select(*PERSON_EVENTS.names)


class RealtimeSegments:
    """Re-evaluates the live realtime segments of a workspace for the people a drain touched
    (called after their profiles are refreshed). One failing segment is logged and its error
    kept on it (`membership.error`); it never stops the others or the pipeline."""

    def __init__(self, store: SavedSegments, timeout: float | None) -> None:
        self.store = store
        self.timeout = timeout

    def on_events(self, warehouse: Warehouse, batch_ids: Sequence[int]) -> list[Refresh]:
        """The fast path, right after a micro-batch is stored: people the graph already knows
        (by the event's user id or anonymous id) enter realtime segments on the event and their
        current profile, without waiting for the stitch and the profile refresh of the drain.
        New people, and every exit, come with `on_profiles` after the refresh."""
        if not batch_ids:
            return []
        events = warehouse.table("events")
        fresh = events.filter(events.batch_id.isin(list(batch_ids)))
        done: list[Refresh] = []
        for ws in warehouse.execute(fresh.select("workspace_id").distinct()).column(0).to_pylist():
            segments = self._realtime(ws)
            if not segments:
                continue
            labelled = warehouse.execute(arriving_events(fresh, warehouse.table("identity_nodes"), ws))
            if labelled.num_rows:
                people = sorted(set(labelled.column("profile_id").to_pylist()))
                done += self._evaluate(warehouse, ws, segments, people, ibis.memtable(labelled))
        return done

    def _realtime(self, workspace_id: str) -> list[LiveSegment]:
        try:
            live = self.store.live_definitions(workspace_id)
        except Exception:
            log.exception("realtime segments: could not list the segments of %s", workspace_id)
            return []
        definitions = {s.segment_id: s.definition for s in live}
        return [s for s in live if mode_of(s.definition, definitions.get)[0] == "realtime"]

    def on_profiles(
        self, warehouse: Warehouse, workspace_id: str, profile_ids: Sequence[str]
    ) -> list[Refresh]:
        if not profile_ids:
            return []
        return self._evaluate(warehouse, workspace_id, self._realtime(workspace_id), profile_ids, None)

    def _evaluate(
        self,
        warehouse: Warehouse,
        workspace_id: str,
        segments: list[LiveSegment],
        profile_ids: Sequence[str],
        arriving: ibis.Table | None,
    ) -> list[Refresh]:
        done = []
        for segment in segments:
            try:
                done.append(
                    refresh_people(warehouse, self.store, workspace_id, segment.segment_id, profile_ids,
                                   version=segment.version, definition=segment.definition,
                                   timeout=self.timeout, failed_before=segment.error is not None,
                                   arriving=arriving)
                )  # fmt: skip
            except Exception as exc:
                log.exception(
                    "realtime segment %s failed; the scheduled refresh will catch up", segment.segment_id
                )
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                self.store.record_refresh(segment.segment_id, datetime.now(UTC), None, None,
                                          f"实时评估失败 / realtime evaluation failed: {message}"[:2000])  # fmt: skip
        return done
