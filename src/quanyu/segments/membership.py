"""Segment membership in the warehouse: who is in a saved segment now (`segment_members`) and
every entry and exit (`segment_membership_log`, append-only).

A refresh compiles the segment's current definition, compares it with the stored members in
one query (a full outer join: only the differences come back), and writes the entries, the
exits and their log rows in one warehouse transaction. Nothing changed, nothing written: a
second refresh over the same data logs nothing. Refreshes of one segment never overlap.

`refresh_people` does the same for some people only (the pipeline's realtime step: those a
drain touched). Log rows are numbered (`seq`) in commit order, and the signals of each commit
go to the in-process subscribers (`signals.Signals`) once it is durable.
"""

from __future__ import annotations

import base64
import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import ibis
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from quanyu.errors import InvalidInput, QuanyuError
from quanyu.org.credentials import new_id
from quanyu.segments.compiler import compile_segment
from quanyu.segments.definition import Definition
from quanyu.segments.evaluation import DEFAULT_TIMEOUT, run
from quanyu.segments.signals import Signal
from quanyu.warehouse.base import Append, Delete, Replace, Warehouse
from quanyu.warehouse.events import EPOCH, to_micros
from quanyu.warehouse.schema import SEGMENT_MEMBERS, SEGMENT_MEMBERSHIP_LOG

if TYPE_CHECKING:
    from quanyu.segments.saved import SavedSegments

Mode = Literal["scheduled", "on_demand", "realtime"]
MAX_PAGE = 1000
_MEMBER_ROWS = SEGMENT_MEMBERS.to_pyarrow()
_LOG_ROWS = SEGMENT_MEMBERSHIP_LOG.to_pyarrow()
_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()
# Held from numbering log rows to their commit, so `seq` follows commit order (the signal
# cursor relies on it: nothing ever commits behind a number a reader has seen).
_log_guard = threading.Lock()


@dataclass(frozen=True)
class Refresh:
    segment_id: str
    version: int
    run_id: str
    mode: str
    at: datetime
    members: int | None
    entered: int
    exited: int
    elapsed_ms: int

    def public(self) -> dict[str, Any]:
        return {"segment_id": self.segment_id, "version": self.version, "run_id": self.run_id, "mode": self.mode,
                "at": self.at.isoformat(), "members": self.members, "entered": self.entered,
                "exited": self.exited, "elapsed_ms": self.elapsed_ms}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Builders


def current_members(members: ibis.Table, workspace_id: str, segment_id: str) -> ibis.Table:
    return members.filter(members.workspace_id == workspace_id, members.segment_id == segment_id)


def differences(compiled: ibis.Table, members: ibis.Table, workspace_id: str, segment_id: str) -> ibis.Table:
    """(profile_id, entered): people in `compiled` but not stored (entered = true) and people
    stored but no longer in `compiled` (false). Those staying in are not returned."""
    now_in = compiled.select(candidate=compiled.profile_id).distinct()
    stored = current_members(members, workspace_id, segment_id).select(member="profile_id")
    joined = now_in.outer_join(stored, now_in.candidate == stored.member)
    changed = joined.filter(joined.candidate.isnull() | joined.member.isnull())
    return changed.select(
        profile_id=ibis.coalesce(changed.candidate, changed.member), entered=changed.member.isnull()
    )


def key_fields(profiles: ibis.Table) -> dict[str, ibis.Value]:
    """The few traits shown beside a member id (previews, member pages, exports)."""

    def identifier(kind: str) -> ibis.Value:
        return profiles.identifiers.filter(lambda i: i["type"] == kind).map(lambda i: i["value"])[0]

    return {
        "name": profiles.traits["name"].str, "city": profiles.traits["city"].str,
        "phone": identifier("phone"), "email": identifier("email"),
        "preferred_channel": profiles.preferred_channel, "first_touch_channel": profiles.first_touch_channel,
        "order_count": profiles.order_count, "revenue": profiles.revenue, "last_seen": profiles.last_seen,
    }  # fmt: skip


def member_rows(
    members: ibis.Table, profiles: ibis.Table, workspace_id: str, segment_id: str, after: str | None = None
) -> ibis.Table:
    """The segment's members by profile id, with their key fields (keyset: ids after `after`)."""
    mine = current_members(members, workspace_id, segment_id)
    if after is not None:
        mine = mine.filter(mine.profile_id > after)
    people = profiles.filter(profiles.workspace_id == workspace_id)
    joined = mine.left_join(people, mine.profile_id == people.profile_id)
    return joined.select(
        profile_id=mine.profile_id, since=mine.since, version=mine.version, **key_fields(people)
    ).order_by("profile_id")


def log_entries(
    log: ibis.Table,
    workspace_id: str,
    segment_id: str,
    after: tuple[datetime, str, str] | None,
    kind: str | None = None,
    profile_id: str | None = None,
) -> ibis.Table:
    """The segment's log, newest first, keyset on (at, run_id, profile_id)."""
    preds = [log.workspace_id == workspace_id, log.segment_id == segment_id]
    if kind is not None:
        preds.append(log.kind == kind)
    if profile_id is not None:
        preds.append(log.profile_id == profile_id)
    if after is not None:
        at, run_id, pid = after
        stamp = ibis.literal(at, type="timestamp('UTC')")
        preds.append(
            (log.at < stamp)
            | (
                (log.at == stamp)
                & ((log.run_id < run_id) | ((log.run_id == run_id) & (log.profile_id < pid)))
            )
        )
    order = [log.at.desc(), log.run_id.desc(), log.profile_id.desc()]
    return log.filter(*preds).order_by(order).select("profile_id", "kind", "at", "version", "run_id", "mode")


# ---------------------------------------------------------------------------------------------
# Refresh


def refresh_membership(
    warehouse: Warehouse,
    store: SavedSegments,
    workspace_id: str,
    segment_id: str,
    *,
    now: datetime | None = None,
    mode: Mode = "on_demand",
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Refresh:
    """Bring one segment's members up to date and log who entered and who left."""
    with _lock(workspace_id, segment_id):
        started, at = time.perf_counter(), now or datetime.now(UTC)
        version, definition = store.current(workspace_id, segment_id)
        compiled = compile_segment(definition, store.context(warehouse, workspace_id, at))
        members = warehouse.table("segment_members")
        diff = run(warehouse, differences(compiled, members, workspace_id, segment_id), timeout)
        this = _Run(workspace_id, segment_id, version, mode, at)
        entered, exited, signals = _commit(warehouse, store, this, diff)
        count = int(
            run(warehouse, current_members(members, workspace_id, segment_id).count(), timeout)
            .column(0)[0]
            .as_py()
        )
        store.record_refresh(segment_id, at, version, count, None)
    if signals:
        store.signals.publish(signals)
    return this.result(count, entered, exited, started)


def refresh_people(
    warehouse: Warehouse,
    store: SavedSegments,
    workspace_id: str,
    segment_id: str,
    profile_ids: Sequence[str],
    *,
    version: int,
    definition: Definition,
    now: datetime | None = None,
    mode: Mode = "realtime",
    timeout: float | None = DEFAULT_TIMEOUT,
    failed_before: bool = False,
    arriving: ibis.Table | None = None,
) -> Refresh:
    """Bring one segment's membership up to date for `profile_ids` only (ids that merged away
    included: they leave): the definition is evaluated over just their profile rows and
    events, and compared with just their stored membership. `members` in the answer is the
    count kept on the segment, moved by what this run changed.

    With `arriving` (events just stored, labelled with their known person, in the shape of
    `person_events`): those events count as well, before the identity graph has taken them in,
    and the run only lets people enter. Exits wait for the run after the profile refresh, which
    sees the person whole; an entry decided on the current profile is what "real-time" means."""
    # One in-memory table of the ids, used by all three scans (a literal list of thousands of
    # ids costs Ibis far more to compile than the query costs to run).
    ids = ibis.memtable(pa.table({"profile_id": pa.array(sorted(set(profile_ids)), pa.string())})).profile_id
    with _lock(workspace_id, segment_id):
        started, at = time.perf_counter(), now or datetime.now(UTC)
        this = _Run(workspace_id, segment_id, version, mode, at)
        if store.current_version(workspace_id, segment_id) != version:
            return this.result(None, 0, 0, started)  # changed or deleted meanwhile: the next run decides
        ctx = store.context(warehouse, workspace_id, at)
        ctx = dataclasses.replace(
            ctx,
            profiles=ctx.profiles.filter(ctx.profiles.profile_id.isin(ids)),
            events=ctx.events.filter(ctx.events.profile_id.isin(ids)),
        )
        if arriving is not None:
            # Arrow has no JSON type: the arriving rows' properties come back as text.
            same = arriving.select(*ctx.events.columns).cast(ctx.events.schema())
            ctx = dataclasses.replace(ctx, events=ctx.events.union(same))
        members = warehouse.table("segment_members")
        theirs = members.filter(members.profile_id.isin(ids))
        diff = run(warehouse, differences(compile_segment(definition, ctx), theirs, workspace_id, segment_id),
                   timeout)  # fmt: skip
        if arriving is not None:
            diff = diff.filter(diff["entered"])
        entered, exited, signals = _commit(warehouse, store, this, diff)
        count = None
        if entered or exited or failed_before:
            count = store.record_change(segment_id, entered - exited)
    if signals:
        store.signals.publish(signals)
    return this.result(count, entered, exited, started)


def refresh_workspace(
    warehouse: Warehouse,
    store: SavedSegments,
    workspace_id: str,
    *,
    now: datetime | None = None,
    mode: Mode = "on_demand",
    timeout: float | None = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Refresh every live segment of the workspace; one failing segment (its error is kept on
    it) does not stop the others."""
    done, failed = [], []
    for segment_id in store.live_ids(workspace_id):
        try:
            done.append(refresh_membership(warehouse, store, workspace_id, segment_id, now=now, mode=mode,
                                           timeout=timeout).public())  # fmt: skip
        except QuanyuError as exc:
            store.record_refresh(segment_id, now or datetime.now(UTC), None, None, exc.message)
            failed.append({"segment_id": segment_id, "code": exc.code, "message": exc.message})
    return {"refreshed": done, "failed": failed}


def forget(warehouse: Warehouse, workspace_id: str, segment_id: str) -> None:
    """Drop a deleted segment's members (its log stays); never in the middle of a refresh."""
    with _lock(workspace_id, segment_id):
        warehouse.write(
            [Replace("segment_members", workspace_id, _MEMBER_ROWS.empty_table(), "segment_id", [segment_id])]
        )


@dataclass(frozen=True)
class _Run:
    workspace_id: str
    segment_id: str
    version: int
    mode: str
    at: datetime
    run_id: str = dataclasses.field(default_factory=lambda: new_id("run"))

    def result(self, members: int | None, entered: int, exited: int, started: float) -> Refresh:
        elapsed = int((time.perf_counter() - started) * 1000)
        return Refresh(self.segment_id, self.version, self.run_id, self.mode, self.at, members, entered,
                       exited, elapsed)  # fmt: skip


def _commit(
    warehouse: Warehouse, store: SavedSegments, this: _Run, diff: pa.Table
) -> tuple[int, int, list[Signal]]:
    """Write a run's entries, exits and log rows in one transaction: (entered, exited, the
    signals for subscribers, built only when someone listens)."""
    if not diff.num_rows:
        return 0, 0, []
    # By profile id: a run's signals come in a stable order.
    entered = diff.filter(diff["entered"]).sort_by("profile_id").column("profile_id")
    exited = diff.filter(pc.invert(diff["entered"])).sort_by("profile_id").column("profile_id")
    with _log_guard:
        last = warehouse.execute(warehouse.table("segment_membership_log").seq.max()).column(0)[0].as_py()
        ops = _changes(this, entered, exited, (last or 0) + 1)
        warehouse.write(ops)
    logged = next(op.rows for op in ops if isinstance(op, Append) and op.target == "segment_membership_log")
    signals = [Signal(**row) for row in logged.to_pylist()] if store.signals.wanted else []
    return len(entered), len(exited), signals


def _changes(
    this: _Run, entered: pa.ChunkedArray, exited: pa.ChunkedArray, first_seq: int
) -> list[Append | Delete]:
    """Delete the exits, add the entries, append their log rows (numbered from `first_seq`)."""

    def repeat(value: Any, n: int, type_: pa.DataType) -> pa.Array:
        return pa.array([value] * n, type_)

    ws, sid, version, at = this.workspace_id, this.segment_id, this.version, this.at
    ts = pa.timestamp("us", "UTC")
    joined = len(entered)
    new_members = pa.table(
        [repeat(ws, joined, pa.string()), repeat(sid, joined, pa.string()),
         entered.cast(pa.string()), repeat(version, joined, pa.int64()), repeat(at, joined, ts)],
        schema=_MEMBER_ROWS,
    )  # fmt: skip
    gone = pa.table(
        {"segment_id": repeat(sid, len(exited), pa.string()), "profile_id": exited.cast(pa.string())}
    )
    people = pa.concat_arrays(
        [entered.cast(pa.string()).combine_chunks(), exited.cast(pa.string()).combine_chunks()]
    )
    n = len(people)
    kinds = ["entered"] * joined + ["exited"] * len(exited)
    log = pa.table(
        [repeat(ws, n, pa.string()), repeat(sid, n, pa.string()), people,
         pa.array(kinds, pa.string()), repeat(at, n, ts), repeat(version, n, pa.int64()),
         repeat(this.run_id, n, pa.string()), repeat(this.mode, n, pa.string()),
         pa.array(range(first_seq, first_seq + n), pa.int64())],
        schema=_LOG_ROWS,
    )  # fmt: skip
    return [
        Delete("segment_members", ws, gone),
        Append("segment_members", new_members),
        Append("segment_membership_log", log),
    ]


def _lock(workspace_id: str, segment_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((workspace_id, segment_id), threading.Lock())


# ---------------------------------------------------------------------------------------------
# Reading


def members_page(
    warehouse: Warehouse, workspace_id: str, segment_id: str, limit: int = 100, cursor: str | None = None
) -> dict[str, Any]:
    """A page of members (by profile id) with their key fields, the count and the next cursor."""
    _check_limit(limit)
    after = _decode(cursor, lambda v: isinstance(v, str))
    members, profiles = warehouse.table("segment_members"), warehouse.table("profiles")
    rows = warehouse.execute(
        member_rows(members, profiles, workspace_id, segment_id, after).limit(limit + 1)
    ).to_pylist()
    total = warehouse.execute(current_members(members, workspace_id, segment_id).count()).column(0)[0].as_py()
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "segment_id": segment_id, "total": int(total), "items": [_plain(r) for r in page],
        "next_cursor": _encode(page[-1]["profile_id"]) if more else None,
    }  # fmt: skip


def all_members(warehouse: Warehouse, workspace_id: str, segment_id: str) -> pa.Table:
    """Every member with their key fields, by profile id (for exports)."""
    members, profiles = warehouse.table("segment_members"), warehouse.table("profiles")
    return warehouse.execute(member_rows(members, profiles, workspace_id, segment_id))


def log_page(
    warehouse: Warehouse,
    workspace_id: str,
    segment_id: str,
    limit: int = 100,
    cursor: str | None = None,
    kind: str | None = None,
    profile_id: str | None = None,
) -> dict[str, Any]:
    """Entries and exits, newest first."""
    _check_limit(limit)
    raw = _decode(cursor, lambda v: isinstance(v, list) and len(v) == 3 and isinstance(v[0], int))
    after = (EPOCH + timedelta(microseconds=raw[0]), str(raw[1]), str(raw[2])) if raw else None
    expr = log_entries(
        warehouse.table("segment_membership_log"), workspace_id, segment_id, after, kind, profile_id
    )
    rows = warehouse.execute(expr.limit(limit + 1)).to_pylist()
    page = rows[:limit]
    last = page[-1] if page else None
    more = len(rows) > limit and last is not None
    return {
        "segment_id": segment_id, "items": [_plain(r) for r in page],
        "next_cursor": _encode([to_micros(last["at"]), last["run_id"], last["profile_id"]]) if more and last else None,
    }  # fmt: skip


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit 需在 1–{MAX_PAGE} / limit must be 1–{MAX_PAGE}", code="invalid_limit")


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode()


def _decode(token: str | None, valid: Callable[[Any], bool]) -> Any:
    if not token:
        return None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(token.encode()))
    except Exception as exc:
        raise InvalidInput("cursor 无效 / invalid cursor", code="invalid_cursor") from exc
    if not valid(value):
        raise InvalidInput("cursor 无效 / invalid cursor", code="invalid_cursor")
    return value


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
