"""What journeys hear from the warehouse: triggers, awaited events, goals, exits and consent.

It reads three streams, each from a durable position, so a restart misses nothing and a
repeat enrolls nobody twice (every entry has a unique `entry_key`):

- **events** of the queue batches the identity graph has taken in (so every event has its
  person) but the intake has not (`journey_batches`, an anti-join like the identity stage's).
  They start event and WeChat journeys, end waits for an event, count goals, apply exit
  criteria and record consent (`Consent Updated` events and Segment's
  `context.consent.categoryPreferences`);
- **segment signals** past the cursor kept in `journey_cursors` (segment entered / exited);
- **the calendar**: date triggers (birthdays, N days after the last purchase) and schedules,
  fired once per occurrence (`journeys.last_fired`).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import orjson
import pyarrow as pa
from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from quanyu.journeys.clock_time import zone
from quanyu.journeys.engine import Candidate, JourneyEngine
from quanyu.journeys.facts import TYPED, Fact, matches
from quanyu.journeys.model import (
    WECHAT_EVENTS,
    DateTrigger,
    EventTrigger,
    Journey,
    ScheduleTrigger,
    SegmentTrigger,
    WaitForEventNode,
    WechatTrigger,
)
from quanyu.journeys.occurrences import is_leap, occurrence
from quanyu.journeys.people import People, Person
from quanyu.journeys.policy import ConsentInput, Policies, record_consent
from quanyu.journeys.saved import LiveJourney, SavedJourneys
from quanyu.store.bulk import among
from quanyu.store.engine import reading
from quanyu.store.models import Enrollment, JourneyCursor, JourneyRow, JourneyStep, JourneyVersion
from quanyu.warehouse.base import Append, Warehouse
from quanyu.warehouse.functions import json_text
from quanyu.warehouse.schema import JOURNEY_BATCHES

log = logging.getLogger(__name__)

_E = Enrollment.__table__
_S = JourneyStep.__table__
_J = JourneyRow.__table__
_V = JourneyVersion.__table__
_C = JourneyCursor.__table__

CONSENT_EVENT = "Consent Updated"
MAX_BATCHES = 500
# Segment's consent categories that mean "may we market to you".
_MARKETING_CATEGORIES = {"marketing", "advertising", "targeting", "promotional", "营销"}


@dataclass
class IntakeReport:
    batches: int = 0
    events: int = 0
    enrolled: int = 0
    resumed: int = 0
    goals: int = 0
    exits: int = 0
    consents: int = 0
    signals: int = 0
    fired: dict[str, int] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return dict(self.__dict__)


class JourneyIntake:
    def __init__(self, engine: Engine, warehouse: Warehouse, journeys: SavedJourneys, runner: JourneyEngine,
                 policies: Policies, people: People | None = None) -> None:  # fmt: skip
        self.engine = engine
        self.warehouse = warehouse
        self.journeys = journeys
        self.runner = runner
        self.policies = policies
        self.people = people
        self._lock = threading.Lock()

    def run(self) -> IntakeReport:
        """Read every stream once, up to what is there now."""
        report = IntakeReport()
        with self._lock:
            self._events(report)
            self._signals(report)
            self._calendar(report)
        return report

    # -- events --------------------------------------------------------------------------------

    def _events(self, report: IntakeReport) -> None:
        w = self.warehouse
        while True:
            done, read = w.table("identity_batches"), w.table("journey_batches")
            ids = w.execute(done.anti_join(read, "batch_id").select("batch_id").order_by("batch_id")
                            .limit(MAX_BATCHES)).column(0).to_pylist()  # fmt: skip
            if not ids:
                return
            interest = self._interest()
            events = self._read(ids, interest)
            report.batches += len(ids)
            report.events += len(events)
            if events:
                self._apply(events, report)
            rows = pa.table({"batch_id": pa.array(ids, pa.int64()),
                             "at": pa.array([datetime.now(UTC)] * len(ids), pa.timestamp("us", "UTC"))})  # fmt: skip
            w.write([Append("journey_batches", rows.cast(JOURNEY_BATCHES.to_pyarrow()))])

    def _interest(self) -> dict[str, set[str]]:
        """Event names each workspace's journeys react to (every version still running)."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(_J.c.workspace_id, _V.c.journey_id, _V.c.version)
                .join(_V, _V.c.journey_id == _J.c.id).where(_J.c.status != "archived")
            ).all()  # fmt: skip
        names: dict[str, set[str]] = defaultdict(set)
        for r in rows:
            names[r.workspace_id].update(self.journeys.version(r.journey_id, r.version).events_of_interest())
        return names

    def _read(self, batch_ids: list[int], interest: Mapping[str, set[str]]) -> list[Fact]:
        w = self.warehouse
        ev, pe = w.table("events"), w.table("person_events")
        names = sorted(set().union(*interest.values(), {CONSENT_EVENT}))
        consent = json_text(ev.context, "$.consent.categoryPreferences")
        mine = ev.filter(ev.batch_id.isin(batch_ids), ev.event.isin(names) | consent.notnull())
        mine = mine.select("workspace_id", "message_id", "event", "timestamp", *[c for c in TYPED if c in ev.columns],
                           properties=ev.properties.cast("string"), consent=consent)  # fmt: skip
        people = pe.select("workspace_id", "message_id", "profile_id")
        joined = mine.join(people, ["workspace_id", "message_id"])
        out: list[Fact] = []
        for row in w.execute(joined).to_pylist():
            wanted = interest.get(row["workspace_id"], set())
            if row["event"] not in wanted and row["event"] != CONSENT_EVENT and row["consent"] is None:
                continue
            props = _json(row["properties"])
            prefs = _json(row["consent"]) if row["consent"] else None
            out.append(Fact(row["workspace_id"], row["message_id"], row["profile_id"], row["event"] or "",
                              row["timestamp"], props, {c: row.get(c) for c in TYPED}, prefs))  # fmt: skip
        return out

    def _apply(self, events: list[Fact], report: IntakeReport) -> None:
        by_ws: dict[str, list[Fact]] = defaultdict(list)
        for e in events:
            by_ws[e.workspace_id].append(e)
        for ws, mine in by_ws.items():
            report.consents += self._consent(ws, mine)
            live = self.journeys.live(ws)
            for lj in live:
                wanted = [e for e in mine if _triggers(lj.journey, e)]
                if wanted:
                    report.enrolled += self._enroll(lj, [(e.profile_id, f"evt:{e.message_id}", e.timestamp,
                                                          e.properties) for e in wanted])  # fmt: skip
            self._running(ws, mine, report)

    def _running(self, ws: str, events: list[Fact], report: IntakeReport) -> None:
        """Waits for an event, goals and exit criteria of enrollments already in journeys."""
        by_person: dict[str, list[Fact]] = defaultdict(list)
        for e in events:
            by_person[e.profile_id].append(e)
        people = sorted(by_person)
        now = self.runner.clock.now()
        resume: list[int] = []
        pending: list[int] = []
        ended: list[tuple[Any, str]] = []
        goals: list[tuple[Any, datetime]] = []
        with self.engine.begin() as conn:
            rows: list[Any] = []
            for i in range(0, len(people), 900):
                rows += conn.execute(
                    select(_E.c.id, _E.c.workspace_id, _E.c.journey_id, _E.c.version, _E.c.profile_id, _E.c.node,
                           _E.c.waiting, _E.c.status, _E.c.entered_at, _E.c.triggered_at, _E.c.goal_at,
                           _E.c.arm)
                    .where(_E.c.workspace_id == ws, among(conn, _E.c.profile_id, people[i : i + 900]),
                           (_E.c.status == "active") | _E.c.goal_at.is_(None))
                ).all()  # fmt: skip
            for r in rows:
                journey = self.journeys.version(r.journey_id, r.version)
                start = r.triggered_at or r.entered_at  # events count from the trigger on
                mine = by_person[r.profile_id]
                goal = journey.goal
                if goal is not None and r.goal_at is None:
                    hit = [e for e in mine if e.event == goal.event and matches(goal.where, e)
                           and start <= e.timestamp <= start + timedelta(days=goal.within_days)]  # fmt: skip
                    if hit:
                        goals.append((r, min(e.timestamp for e in hit)))
                        if goal.exit and r.status == "active":
                            ended.append((r, "goal"))
                            continue
                if r.status != "active":
                    continue
                node = journey.nodes.get(r.node)
                if (
                    r.waiting
                    and isinstance(node, WaitForEventNode)
                    and any(
                        e.event == node.event and matches(node.where, e) and e.timestamp >= start
                        for e in mine
                    )
                ):
                    resume.append(r.id)
                for crit in journey.exit:
                    if crit.event and any(e.event == crit.event and matches(crit.where, e)
                                          and e.timestamp >= start for e in mine):  # fmt: skip
                        if crit.when == "immediately":
                            ended.append((r, "exit_criteria"))
                        else:
                            pending.append(r.id)
                        break
            self._commit(conn, now, resume, pending, ended, goals)
        report.resumed += len(resume)
        report.goals += len(goals)
        report.exits += len(ended)

    def _commit(self, conn: Any, now: datetime, resume: list[int], pending: list[int],
                ended: list[tuple[Any, str]], goals: list[tuple[Any, datetime]]) -> None:  # fmt: skip
        steps: list[dict[str, Any]] = []
        for r, at in goals:
            conn.execute(update(_E).where(_E.c.id == r.id, _E.c.goal_at.is_(None)).values(goal_at=at))
            steps.append(_step(r, r.node, "goal", None, now))
        ending = [(r, why) for r, why in ended]
        for r, why in ending:
            done = conn.execute(
                update(_E).where(_E.c.id == r.id, _E.c.status == "active")
                .values(status="done", ended_at=now, exit_reason=why, waiting=False, due_at=None)
            ).rowcount  # fmt: skip
            if done:
                steps.append(_step(r, r.node, "exited", why, now))
        gone = {r.id for r, _ in ending}
        if resume := [i for i in resume if i not in gone]:
            conn.execute(update(_E).where(among(conn, _E.c.id, resume), _E.c.status == "active", _E.c.waiting.is_(True))
                         .values(resume="event", due_at=now))  # fmt: skip
        if pending := [i for i in pending if i not in gone]:
            conn.execute(
                update(_E)
                .where(among(conn, _E.c.id, pending), _E.c.status == "active")
                .values(exit_pending=True)
            )
        if steps:
            conn.execute(_S.insert(), steps)

    def _consent(self, ws: str, events: list[Fact]) -> int:
        records: list[ConsentInput] = []
        for e in events:
            evidence = {"message_id": e.message_id, "event": e.event}
            if e.event == CONSENT_EVENT:
                p = e.properties
                granted = p.get("granted")
                if not isinstance(granted, bool):
                    log.warning("Consent Updated %s without a boolean granted; ignored", e.message_id)
                    continue
                channel = str(p.get("channel") or "*")
                purpose = str(p.get("purpose") or "marketing")
                for key in ("wording", "form", "source", "text"):
                    if key in p:
                        evidence[key] = p[key]
                records.append(ConsentInput("profile", e.profile_id, channel, purpose, granted,
                                            str(p.get("source") or "event"), e.timestamp, evidence,
                                            f"evt:{e.message_id}:{channel}:{purpose}"))  # fmt: skip
            if isinstance(e.consent, dict):
                for category, value in e.consent.items():
                    if not isinstance(value, bool):
                        continue
                    purpose = (
                        "marketing"
                        if str(category).lower() in _MARKETING_CATEGORIES
                        else str(category).lower()
                    )
                    records.append(ConsentInput("profile", e.profile_id, "*", purpose, value, "segment_consent",
                                                e.timestamp, {**evidence, "category": category},
                                                f"cp:{e.message_id}:{category}"))  # fmt: skip
        if not records:
            return 0
        with self.engine.begin() as conn:
            return record_consent(conn, ws, records)

    # -- segment signals -----------------------------------------------------------------------

    def _signals(self, report: IntakeReport) -> None:
        live = self.journeys.live()
        by_ws: dict[str, list[LiveJourney]] = defaultdict(list)
        for lj in live:
            by_ws[lj.workspace_id].append(lj)
        exit_ws = self._segment_exit_workspaces()
        for ws in sorted(set(by_ws) | exit_ws):
            entering = [lj for lj in by_ws.get(ws, []) if isinstance(lj.journey.trigger, SegmentTrigger)]
            if not entering and ws not in exit_ws:
                continue
            name = f"segments:{ws}"
            with reading(self.engine) as conn:
                after = conn.execute(select(_C.c.position).where(_C.c.name == name)).scalar_one_or_none()
            if after is None:  # a new journey starts from now, not from the whole history
                after = self._last_seq(ws)
                self._save_cursor(name, after)
            log_t = self.warehouse.table("segment_membership_log")
            rows = self.warehouse.execute(
                log_t.filter(log_t.workspace_id == ws, log_t.seq > after).order_by(log_t.seq).limit(100_000)
            ).to_pylist()  # fmt: skip
            if not rows:
                continue
            report.signals += len(rows)
            for lj in entering:
                trig = lj.journey.trigger
                assert isinstance(trig, SegmentTrigger)
                hits = [(r["profile_id"], f"seg:{r['seq']}", r["at"], {"segment_id": r["segment_id"]})
                        for r in rows if r["segment_id"] == trig.segment_id and r["kind"] == trig.on]  # fmt: skip
                if hits:
                    report.enrolled += self._enroll(lj, hits)
            exits = [(r["segment_id"], r["profile_id"]) for r in rows if r["kind"] == "exited"]
            if exits:
                report.exits += self._segment_exits(ws, exits)
            self._save_cursor(name, rows[-1]["seq"])

    def _segment_exit_workspaces(self) -> set[str]:
        with reading(self.engine) as conn:
            rows = conn.execute(select(_J.c.workspace_id, _J.c.id, _J.c.current_version)
                                .where(_J.c.status.in_(("live", "paused")))).all()  # fmt: skip
        return {r.workspace_id for r in rows
                if any(c.segment_exited for c in self.journeys.version(r.id, r.current_version).exit)}  # fmt: skip

    def _segment_exits(self, ws: str, exits: list[tuple[str, str]]) -> int:
        people = sorted({p for _s, p in exits})
        left = set(exits)
        now = self.runner.clock.now()
        ended: list[tuple[Any, str]] = []
        pending: list[int] = []
        with self.engine.begin() as conn:
            for i in range(0, len(people), 900):
                for r in conn.execute(select(_E.c.id, _E.c.workspace_id, _E.c.journey_id, _E.c.version,
                                             _E.c.profile_id, _E.c.node, _E.c.arm)
                                      .where(_E.c.workspace_id == ws, _E.c.status == "active",
                                             among(conn, _E.c.profile_id, people[i : i + 900]))):  # fmt: skip
                    for crit in self.journeys.version(r.journey_id, r.version).exit:
                        if crit.segment_exited and (crit.segment_exited, r.profile_id) in left:
                            (ended.append((r, "exit_criteria")) if crit.when == "immediately"
                             else pending.append(r.id))  # fmt: skip
                            break
            self._commit(conn, now, [], pending, ended, [])
        return len(ended)

    def _last_seq(self, ws: str) -> int:
        t = self.warehouse.table("segment_membership_log")
        found = self.warehouse.execute(t.filter(t.workspace_id == ws).seq.max()).column(0)[0].as_py()
        return int(found or 0)

    def _save_cursor(self, name: str, position: int) -> None:
        with self.engine.begin() as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            stmt = insert(_C).values(name=name, position=position)
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["name"], set_={"position": stmt.excluded.position})
            )

    # -- calendar ------------------------------------------------------------------------------

    def _calendar(self, report: IntakeReport) -> None:
        now = self.runner.clock.now()
        for lj in self.journeys.live():
            trig = lj.journey.trigger
            if not isinstance(trig, DateTrigger | ScheduleTrigger):
                continue
            tz = zone(None, self.policies.get(lj.workspace_id).timezone)
            due = occurrence(trig, now, tz)
            if due is None or (lj.last_fired is not None and lj.last_fired >= due):
                continue
            try:
                people = (self._dated(lj.workspace_id, trig, now, tz) if isinstance(trig, DateTrigger)
                          else self._segment_members(lj.workspace_id, trig.segment_id))  # fmt: skip
            except Exception:
                log.exception("journey %s: the %s trigger could not be evaluated", lj.id, trig.type)
                continue
            if isinstance(trig, DateTrigger) and trig.segment_id:
                people = sorted(set(people) & set(self._segment_members(lj.workspace_id, trig.segment_id)))
            hits = [(p, f"{trig.type}:{due}:{p}", now, {"occurrence": due}) for p in people]
            for i in range(0, len(hits), 5000):
                report.enrolled += self._enroll(lj, hits[i : i + 5000])
            self.journeys.mark_fired(lj.id, due)
            report.fired[lj.id] = len(hits)

    def _segment_members(self, ws: str, segment_id: str) -> list[str]:
        t = self.warehouse.table("segment_members")
        return self.warehouse.execute(
            t.filter(t.workspace_id == ws, t.segment_id == segment_id).select("profile_id")
        ).column(0).to_pylist()  # fmt: skip

    def _dated(self, ws: str, trig: DateTrigger, now: datetime, tz: Any) -> list[str]:
        p = self.warehouse.table("profiles")
        today = now.astimezone(tz).date()
        if trig.field in p.columns:
            column = p[trig.field]
            # The workspace's offset now is close enough to date a timestamp: a day boundary
            # moves by at most the DST hour.
            offset = now.astimezone(tz).utcoffset() or timedelta(0)
            text = (column + ibis.interval(seconds=int(offset.total_seconds()))).cast("string")
        else:
            text = json_text(p.traits, f"$.{trig.field}")
        day = text.substr(0, 10)
        if trig.anniversary:
            target = today + timedelta(days=trig.days_before)
            wanted = [f"-{target.month:02d}-{target.day:02d}"]
            if target.month == 2 and target.day == 28 and not is_leap(target.year):
                wanted.append("-02-29")  # a 29 February birthday is kept on the 28th
            test = day.substr(4, 6).isin(wanted)
        else:
            target = today - timedelta(days=trig.days_after or 0)
            test = day == target.isoformat()
        expr = p.filter(p.workspace_id == ws, test).select("profile_id")
        return self.warehouse.execute(expr).column(0).to_pylist()

    # -- entering ------------------------------------------------------------------------------

    def _enroll(self, lj: LiveJourney, hits: Sequence[tuple[str, str, datetime, dict[str, Any]]]) -> int:
        people: dict[str, Person] = {}
        if self.people is not None:
            try:
                people = self.people.lookup(lj.workspace_id, sorted({h[0] for h in hits}))
            except Exception:
                log.exception("people lookup for enrollment failed; enrolling without snapshots")
        cands = [
            Candidate(lj.workspace_id, pid, key, at, props, people.get(pid)) for pid, key, at, props in hits
        ]
        return self.runner.enroll(lj, cands).enrolled


def _triggers(journey: Journey, e: Fact) -> bool:
    trig = journey.trigger
    if isinstance(trig, EventTrigger):
        return e.event == trig.event and matches(trig.where, e)
    if isinstance(trig, WechatTrigger):
        if e.event not in WECHAT_EVENTS[trig.on]:
            return False
        scene = str(e.properties.get("scene") or "")
        if trig.scene is not None and scene != trig.scene:
            return False
        return trig.scene_prefix is None or scene.startswith(trig.scene_prefix)
    return False


def _step(r: Any, node: str, kind: str, detail: str | None, now: datetime) -> dict[str, Any]:
    return {"workspace_id": r.workspace_id, "journey_id": r.journey_id, "version": r.version, "enrollment_id": r.id,
            "node": node, "kind": kind, "detail": detail, "channel": None, "arm": r.arm, "at": now}  # fmt: skip


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if not value:
        return {}
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
