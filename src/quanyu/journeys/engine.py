"""The journey engine: enrolling people and running their due steps, in batches.

State lives in the operational store: one row per enrollment (`journey_enrollments`: the node
it is at, whether it waits, when it is due) and an append-only step log (`journey_steps`).
`run_due` claims a batch of due enrollments (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so any
number of worker processes can share the work; SQLite's single writer runs one), carries each
one forward until it waits or ends, and writes everything it decided in the same transaction:
the new positions, the step log rows, the outbox rows of its sends, the frequency counters
and the guide tasks. The outbox (`journeys.outbox`) then sends; a send's idempotency key is
(enrollment, node, attempt), so no step can queue the same message twice.

Work is done in rounds over the whole batch, so that the slow parts are asked once per round
for everyone: a condition node's warehouse query, the people lookup, consent and suppression.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from quanyu.channels.templates import TemplateError, check_lengths, render_content
from quanyu.journeys.clock import Clock, SystemClock
from quanyu.journeys.clock_time import local_day, next_local_midnight, next_time_of_day, zone
from quanyu.journeys.facts import Fact, matches
from quanyu.journeys.model import (
    ConditionNode,
    ExitNode,
    Journey,
    LeadScoreNode,
    SendNode,
    SetTraitNode,
    SplitNode,
    TagNode,
    TaskNode,
    WaitForEventNode,
    WaitNode,
    WebhookNode,
)
from quanyu.journeys.people import SCOPED_CHANNELS, People, Person
from quanyu.journeys.policy import (
    Policies,
    Policy,
    consent_rows,
    consented,
    in_holdout,
    suppressed,
    take_cap,
)
from quanyu.journeys.saved import LiveJourney, SavedJourneys
from quanyu.segments.definition import Definition
from quanyu.store.bulk import among, insert_returning, insert_rows
from quanyu.store.models import Enrollment, GuideTask, JourneyStep, OutboxMessage

log = logging.getLogger(__name__)

_E = Enrollment.__table__
_S = JourneyStep.__table__
_O = OutboxMessage.__table__
_T = GuideTask.__table__

CONTROL = "__control__"  # where holdout and control-arm enrollments wait out the goal window
MAX_HOPS = 64
HOLD_RETRY = timedelta(seconds=60)  # a paused journey, the kill switch, a missing warehouse


class Conditions(Protocol):
    """Evaluates a segment condition for some people (the warehouse, in `serve`)."""

    def members(self, workspace_id: str, definition: Definition, profile_ids: Sequence[str],
                now: datetime) -> set[str]: ...  # fmt: skip


class History(Protocol):
    """Events people did since a moment (the warehouse's person events, in `serve`)."""

    def since(self, workspace_id: str, since: dict[str, datetime], events: set[str]) -> list[Fact]: ...


@dataclass(frozen=True)
class Candidate:
    """Someone a trigger wants to enroll."""

    workspace_id: str
    profile_id: str
    entry_key: str  # unique per journey: the same trigger never enrolls twice
    at: datetime
    event: dict[str, Any] = field(default_factory=dict)
    person: Person | None = None


@dataclass
class EnrollReport:
    considered: int = 0
    enrolled: int = 0
    held_out: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # reason -> count

    def public(self) -> dict[str, Any]:
        return {"considered": self.considered, "enrolled": self.enrolled, "held_out": self.held_out,
                "refused": dict(self.refused)}  # fmt: skip


@dataclass
class StepReport:
    claimed: int = 0
    steps: int = 0
    queued: int = 0
    ended: int = 0

    def add(self, other: StepReport) -> None:
        self.claimed += other.claimed
        self.steps += other.steps
        self.queued += other.queued
        self.ended += other.ended

    def public(self) -> dict[str, int]:
        return {"claimed": self.claimed, "steps": self.steps, "queued": self.queued, "ended": self.ended}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def sticky_bucket(*parts: str) -> float:
    """A number in [0, 100) fixed by `parts`: split arms and holdouts never change on re-runs."""
    digest = hashlib.blake2b(":".join(parts).encode(), digest_size=8).digest()
    return (int.from_bytes(digest) % 1_000_000) / 10_000


# ---------------------------------------------------------------------------------------------


@dataclass
class _State:
    """An enrollment being carried forward in this batch."""

    id: int
    workspace_id: str
    journey_id: str
    version: int
    profile_id: str
    node: str
    waiting: bool
    resume: str | None
    due_at: datetime | None
    arm: str | None
    entered_at: datetime
    triggered_at: datetime | None
    exit_pending: bool
    attempts: int
    context: dict[str, Any]
    status: str = "active"
    ended_at: datetime | None = None
    exit_reason: str | None = None
    journey: Journey | None = None

    def shape(self) -> tuple[Any, ...]:
        # Enrollments leaving a batch in the same shape are written with one UPDATE … IN (…).
        return (self.status, self.node, self.waiting, self.due_at, self.arm, self.ended_at, self.exit_reason,
                self.attempts)  # fmt: skip


@dataclass
class _Batch:
    now: datetime
    steps: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)

    def log(self, st: _State, kind: str, detail: str | None = None, channel: str | None = None,
            node: str | None = None) -> None:  # fmt: skip
        self.steps.append({"workspace_id": st.workspace_id, "journey_id": st.journey_id, "version": st.version,
                           "enrollment_id": st.id, "node": node or st.node, "kind": kind, "detail": detail,
                           "channel": channel, "arm": st.arm, "at": self.now})  # fmt: skip


LinkMaker = Callable[[dict[str, Any]], dict[str, str]]


class JourneyEngine:
    def __init__(
        self,
        engine: Engine,
        journeys: SavedJourneys,
        policies: Policies,
        *,
        clock: Clock | None = None,
        people: People | None = None,
        conditions: Conditions | None = None,
        history: History | None = None,
        scope_of: Callable[[str, str, str], str | None] | None = None,
        links: LinkMaker | None = None,
        track: Callable[[str, dict[str, Any]], str] | None = None,
        worker: str | None = None,
    ) -> None:
        self.engine = engine
        self.journeys = journeys
        self.policies = policies
        self.clock = clock or SystemClock()
        self.people = people
        self.conditions = conditions
        self.history = history
        self.scope_of = scope_of  # (workspace, channel config, channel) -> the app id it sends as
        self.links = links
        self.track = track  # rewrites an e-mail's links for click and open receipts
        self.worker = worker or worker_name()
        self._postgres = engine.dialect.name == "postgresql"

    # -- entering ------------------------------------------------------------------------------

    def enroll(self, live: LiveJourney, candidates: Sequence[Candidate]) -> EnrollReport:
        """Enroll who the journey's re-entry rule lets in; the rest are counted by reason."""
        report = EnrollReport(considered=len(candidates))
        if not candidates:
            return report
        now = self.clock.now()
        journey = live.journey
        rule = journey.settings.reentry
        policy = self.policies.get(live.workspace_id)
        holdout_pct = policy.holdout_percent if journey.settings.holdout else 0.0
        trait_names = _template_traits(journey)
        goal_window = timedelta(days=journey.goal.within_days) if journey.goal else timedelta(0)
        # "Once per person, ever" is the entry key itself (the unique index refuses a second
        # entry), so no history is read; other rules look at the person's earlier enrollments.
        once = rule.mode == "never" and rule.min_interval is None and self.journeys.always_once(live.id)
        with self.engine.begin() as conn:
            history = {} if once else _history(conn, live.id, sorted({c.profile_id for c in candidates}))
            rows: list[dict[str, Any]] = []
            seen: set[str] = set()
            for c in candidates:
                last, active = history.get(c.profile_id, (None, False))
                reason = None
                if rule.mode == "never" and (last is not None or c.profile_id in seen):
                    reason = "already_entered"
                elif rule.mode == "after_exit" and (active or c.profile_id in seen):
                    reason = "still_active"
                elif (
                    rule.min_interval is not None
                    and last is not None
                    and now - last < rule.min_interval.delta
                ):
                    reason = "too_soon"
                if reason:
                    report.refused[reason] = report.refused.get(reason, 0) + 1
                    continue
                seen.add(c.profile_id)
                held = in_holdout(live.workspace_id, c.profile_id, holdout_pct)
                context: dict[str, Any] = {"event": c.event, "at": c.at.isoformat()}
                if c.person is not None:
                    context["person"] = c.person.snapshot(trait_names)
                rows.append({"workspace_id": live.workspace_id, "journey_id": live.id, "version": live.version,
                             "profile_id": c.profile_id, "entry_key": f"once:{c.profile_id}" if once else c.entry_key,
                             "status": "active",
                             "node": CONTROL if held else journey.start, "waiting": held, "resume": None,
                             "due_at": now + goal_window if held else now, "arm": "holdout" if held else None,
                             "entered_at": now, "triggered_at": min(c.at, now), "exit_pending": False,
                             "attempts": 0, "context": context})  # fmt: skip
            if rows:
                inserted = _insert_new(conn, rows)
                steps = [{"workspace_id": live.workspace_id, "journey_id": live.id, "version": live.version,
                          "enrollment_id": eid, "node": arm_node[0], "kind": "entered",
                          "detail": arm_node[1], "channel": None, "arm": arm_node[1], "at": now}
                         for eid, arm_node in inserted]  # fmt: skip
                insert_rows(conn, _S, steps)
                report.enrolled = len(inserted)
                report.held_out = sum(1 for _eid, (_n, arm) in inserted if arm == "holdout")
                dup = len(rows) - len(inserted)
                if dup:
                    why = "already_entered" if once else "duplicate_trigger"
                    report.refused[why] = report.refused.get(why, 0) + dup
        return report

    # -- running -------------------------------------------------------------------------------

    def run_due(self, limit: int = 2000) -> StepReport:
        """Claim up to `limit` due enrollments and carry them forward; one transaction."""
        now = self.clock.now()
        statuses = self.journeys.statuses()
        paused = sorted(j for j, s in statuses.items() if s == "paused")
        report = StepReport()
        with self.engine.begin() as conn:
            states = self._claim(conn, now, limit, paused)
            if not states:
                return report
            report.claimed = len(states)
            batch = _Batch(now)
            active: list[_State] = []
            for st in states:
                st.journey = self.journeys.version(st.journey_id, st.version)
                if statuses.get(st.journey_id) == "archived":
                    self._end(st, batch, "journey_archived")
                elif st.exit_pending:
                    self._end(st, batch, "exit_criteria")
                else:
                    active.append(st)
            for _hop in range(MAX_HOPS):
                if not active:
                    break
                active = self._round(conn, active, batch)
            for st in active:  # a graph deeper than MAX_HOPS continues next batch
                st.due_at = now
            self._write(conn, states, batch)
            report.steps = len(batch.steps)
            report.queued = len(batch.outbox)
            report.ended = sum(1 for s in states if s.status == "done")
        return report

    def _claim(self, conn: Connection, now: datetime, limit: int, paused: list[str]) -> list[_State]:
        cols = [_E.c.id, _E.c.workspace_id, _E.c.journey_id, _E.c.version, _E.c.profile_id, _E.c.node,
                _E.c.waiting, _E.c.resume, _E.c.due_at, _E.c.arm, _E.c.entered_at, _E.c.triggered_at, _E.c.exit_pending,
                _E.c.attempts, _E.c.context]  # fmt: skip
        stmt = select(*cols).where(_E.c.status == "active", _E.c.due_at <= now)
        if paused:
            stmt = stmt.where(_E.c.journey_id.not_in(paused))
        stmt = stmt.order_by(_E.c.due_at).limit(limit)
        if self._postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        return [_State(*row) for row in conn.execute(stmt)]

    def _round(self, conn: Connection, active: list[_State], batch: _Batch) -> list[_State]:
        """Run each enrollment's current node once; those that moved on to a node that runs at
        once come back for the next round."""
        now = batch.now
        nodes = {st.id: st.journey.nodes[st.node] for st in active if st.journey and st.node != CONTROL}
        branch = self._conditions(active, nodes, now)
        already = self._already_happened(active, nodes)
        senders = [st for st in active if isinstance(nodes.get(st.id), SendNode)]
        people = self._people(senders)
        addresses = {st.id: self._address(st, nodes[st.id], _person_of(st, people)) for st in senders}
        gate = _Gate(conn, self.policies, senders, people, nodes, addresses) if senders else None
        going: list[_State] = []
        for st in active:
            node = nodes.get(st.id)
            if node is None:  # the control arm's goal window is over
                self._end(st, batch, st.arm or "control")
                continue
            if self._step(conn, st, node, batch, branch, people, gate, already):
                going.append(st)
        return going

    def _step(self, conn: Connection, st: _State, node: Any, batch: _Batch, branch: dict[int, bool | None],
              people: dict[str, Person], gate: _Gate | None, already: set[int]) -> bool:  # fmt: skip
        now = batch.now
        journey = st.journey
        assert journey is not None
        if isinstance(node, WaitNode):
            if not st.waiting:
                st.waiting = True
                if node.duration is not None:
                    st.due_at = now + node.duration.delta
                else:
                    tz = zone(_person_of(st, people).timezone, self.policies.get(st.workspace_id).timezone)
                    st.due_at = next_time_of_day(now, tz, _hhmm(node.until or "00:00"))
                batch.log(st, "waiting")
                return False
            st.waiting = False
            return self._goto(st, node.next, batch)
        if isinstance(node, WaitForEventNode):
            if not st.waiting and st.id in already:
                # The awaited event came before this step ran (same batch as the trigger, or
                # stored late): no need to wait for it.
                batch.log(st, "resumed", node.event)
                return self._goto(st, node.next, batch)
            if not st.waiting:
                st.waiting = True
                st.due_at = now + node.timeout.delta
                batch.log(st, "waiting", node.event)
                return False
            st.waiting = False
            if st.resume == "event":
                st.resume = None
                return self._goto(st, node.next, batch)
            batch.log(st, "timeout")
            return self._goto(st, node.timeout_next, batch)
        if isinstance(node, ConditionNode):
            result = branch.get(st.id)
            if result is None:  # no warehouse here: a worker beside one will take it
                batch.log(st, "held", "no_warehouse")
                st.due_at = now + HOLD_RETRY
                return False
            batch.log(st, "branch", "yes" if result else "no")
            return self._goto(st, node.yes if result else node.no, batch)
        if isinstance(node, SplitNode):
            bucket = sticky_bucket(st.journey_id, st.node, st.profile_id)
            edge = 0.0
            for arm in node.arms:
                edge += arm.percent
                if bucket < edge:
                    st.arm = st.arm or arm.name
                    batch.log(st, "branch", arm.name)
                    return self._goto(st, arm.next, batch)
            st.arm = "control"
            batch.log(st, "branch", "control")
            st.node, st.waiting = CONTROL, True
            window = timedelta(days=journey.goal.within_days) if journey.goal else timedelta(0)
            st.due_at = max(now, (st.triggered_at or st.entered_at) + window)
            return False
        if isinstance(node, SendNode):
            assert gate is not None
            return self._send(conn, st, node, batch, people, gate)
        if isinstance(node, TaskNode):
            person = _person_of(st, people)
            assignee = node.assignee
            if assignee == "guide":
                assignee = str(person.traits.get("guide_id") or "unassigned")
            batch.tasks.append({"key": f"{st.id}:{st.node}", "workspace_id": st.workspace_id,
                                "profile_id": st.profile_id, "assignee": assignee, "title": node.title,
                                "note": node.note, "journey_id": st.journey_id, "status": "open",
                                "created_at": now, "due_at": now + node.due_in.delta if node.due_in else None})  # fmt: skip
            batch.log(st, "action", "task")
            return self._goto(st, node.next, batch)
        if isinstance(node, TagNode | SetTraitNode | LeadScoreNode | WebhookNode):
            self._effect(st, node, batch)
            return self._goto(st, node.next, batch)
        if isinstance(node, ExitNode):
            self._end(st, batch, "exit_node")
            return False
        raise AssertionError(f"unknown node {node!r}")

    def _goto(self, st: _State, target: str | None, batch: _Batch) -> bool:
        if target is None:
            self._end(st, batch, "completed")
            return False
        st.node, st.waiting, st.resume, st.due_at = target, False, None, batch.now
        return True

    def _end(self, st: _State, batch: _Batch, reason: str) -> None:
        st.status, st.ended_at, st.exit_reason, st.waiting, st.due_at = "done", batch.now, reason, False, None
        batch.log(st, "exited", reason)

    # -- sends ---------------------------------------------------------------------------------

    def _send(self, conn: Connection, st: _State, node: SendNode, batch: _Batch, people: dict[str, Person],
              gate: _Gate) -> bool:  # fmt: skip
        now = batch.now
        journey = st.journey
        assert journey is not None
        person = _person_of(st, people)
        policy = gate.policy(st.workspace_id)
        channel = node.channel
        if policy.kill_switch:
            batch.log(st, "held", "kill_switch", channel)
            st.due_at = now + HOLD_RETRY
            return False
        address = gate.address(st.id)
        if not address:
            batch.log(st, "skipped", "no_address", channel)
            return self._goto(st, node.next, batch)
        if gate.is_suppressed(st.workspace_id, channel, address, st.profile_id):
            batch.log(st, "skipped", "suppressed", channel)
            return self._goto(st, node.next, batch)
        marketing = node.purpose == "marketing"
        if marketing:
            allowed, why = gate.consent(st.profile_id, address, channel, policy)
            if not allowed:
                batch.log(st, "skipped", why, channel)
                return self._goto(st, node.next, batch)
            tz = zone(person.timezone, policy.timezone)
            quiet = policy.quiet
            if quiet is not None and quiet.is_quiet(now, tz):
                if journey.settings.quiet_hours == "cancel":
                    batch.log(st, "skipped", "quiet_hours", channel)
                    return self._goto(st, node.next, batch)
                batch.log(st, "held", "quiet_hours", channel)
                st.due_at = quiet.ends_at(now, tz)
                return False
            cap = policy.caps.get(channel)
            if cap is not None and not take_cap(conn, st.workspace_id, st.profile_id, channel,
                                                local_day(now, tz).isoformat(), cap):  # fmt: skip
                behaviour = journey.settings.frequency_cap
                if behaviour == "drop":
                    batch.log(st, "skipped", "frequency_cap", channel)
                    self._end(st, batch, "frequency_cap")
                    return False
                if behaviour == "hold":
                    batch.log(st, "held", "frequency_cap", channel)
                    st.due_at = next_local_midnight(now, tz)
                    return False
                batch.log(st, "skipped", "frequency_cap", channel)
                return self._goto(st, node.next, batch)
        key = f"{st.id}:{st.node}:{st.attempts}"
        fields = {"k": key, "w": st.workspace_id, "p": st.profile_id, "c": channel}
        links = self.links(fields) if self.links is not None else {}
        values = {"profile": {**person.traits, "profile_id": st.profile_id},
                  "event": st.context.get("event") or {}, "coupon": node.coupon or {},
                  "links": links, "journey": {"name": journey.name}}  # fmt: skip
        try:
            content = render_content(channel, node.content, values)
        except TemplateError as exc:
            batch.log(st, "skipped", "template_error", channel)
            log.warning("journey %s node %s: %s", st.journey_id, st.node, exc)
            return self._goto(st, node.next, batch)
        if any(p.level == "error" for p in check_lengths(channel, content)):
            batch.log(st, "skipped", "content_too_long", channel)
            return self._goto(st, node.next, batch)
        if channel == "email" and self.track is not None and isinstance(content.get("html"), str):
            content["html"] = self.track(content["html"], fields)
        meta = {"journey_id": st.journey_id, "node": st.node, **links}
        batch.outbox.append(_outbox_row(key, st, channel, node.via or f"default:{channel}", address, node.purpose,
                                        content, meta, now))  # fmt: skip
        batch.log(st, "queued", None, channel)
        return self._goto(st, node.next, batch)

    def _effect(self, st: _State, node: Any, batch: _Batch) -> None:
        """Tags, traits, lead scores and webhooks go through the outbox like sends: the step
        decides them in its transaction and the dispatcher applies them once."""
        key = f"{st.id}:{st.node}:{st.attempts}"
        if isinstance(node, WebhookNode):
            content: dict[str, Any] = {"body": node.body}
            try:
                values = {"profile": {"profile_id": st.profile_id}, "event": st.context.get("event") or {},
                          "coupon": {}, "links": {}, "journey": {"name": st.journey.name if st.journey else ""}}  # fmt: skip
                content = render_content("webhook", content, values)
            except TemplateError:
                batch.log(st, "skipped", "template_error", "webhook")
                return
            batch.outbox.append(_outbox_row(key, st, "webhook", f"url:{node.via or ''}", node.url,
                                            "transactional", content, {"journey_id": st.journey_id}, batch.now))  # fmt: skip
            batch.log(st, "action", "webhook", "webhook")
            return
        if isinstance(node, TagNode):
            content, what = {"op": "tag", "add": node.add, "remove": node.remove}, "tag"
        elif isinstance(node, SetTraitNode):
            content, what = {"op": "set_trait", "traits": node.traits}, "set_trait"
        else:
            content, what = {"op": "lead_score", "delta": node.delta, "reason": node.reason}, "lead_score"
        batch.outbox.append(_outbox_row(key, st, "internal", "internal", st.profile_id, "transactional", content,
                                        {"journey_id": st.journey_id, "journey": st.journey.name if st.journey else ""},
                                        batch.now))  # fmt: skip
        batch.log(st, "action", what)

    # -- bulk lookups --------------------------------------------------------------------------

    def _conditions(
        self, active: list[_State], nodes: dict[int, Any], now: datetime
    ) -> dict[int, bool | None]:
        groups: dict[tuple[str, str, int, str], list[_State]] = defaultdict(list)
        for st in active:
            if isinstance(nodes.get(st.id), ConditionNode):
                groups[(st.workspace_id, st.journey_id, st.version, st.node)].append(st)
        found: dict[int, bool | None] = {}
        for (ws, _jid, _v, _node), members in groups.items():
            node = nodes[members[0].id]
            if self.conditions is None:
                found.update({st.id: None for st in members})
                continue
            try:
                yes = self.conditions.members(ws, node.definition, [st.profile_id for st in members], now)
            except Exception:
                log.exception("journey condition failed; holding the enrollments")
                found.update({st.id: None for st in members})
                continue
            found.update({st.id: st.profile_id in yes for st in members})
        return found

    def _already_happened(self, active: list[_State], nodes: dict[int, Any]) -> set[int]:
        """Enrollments arriving at a wait-for-event step whose event already happened since
        their trigger (asked of the history once per round)."""
        arriving = [st for st in active if isinstance(nodes.get(st.id), WaitForEventNode) and not st.waiting]
        if not arriving or self.history is None:
            return set()
        found: set[int] = set()
        by_ws: dict[str, list[_State]] = defaultdict(list)
        for st in arriving:
            by_ws[st.workspace_id].append(st)
        for ws, members in by_ws.items():
            since: dict[str, datetime] = {}
            for st in members:
                start = st.triggered_at or st.entered_at
                since[st.profile_id] = min(since.get(st.profile_id, start), start)
            try:
                facts = self.history.since(ws, since, {nodes[st.id].event for st in members})
            except Exception:
                log.exception("journey history lookup failed; waiting for the events instead")
                continue
            by_person: dict[str, list[Fact]] = defaultdict(list)
            for fact in facts:
                by_person[fact.profile_id].append(fact)
            for st in members:
                node = nodes[st.id]
                start = st.triggered_at or st.entered_at
                if any(f.event == node.event and f.timestamp >= start and matches(node.where, f)
                       for f in by_person.get(st.profile_id, ())):  # fmt: skip
                    found.add(st.id)
        return found

    def _address(self, st: _State, node: Any, person: Person) -> str | None:
        """Where this send goes: the person's address on the channel; for an official account
        or a mini-program, the openid of that app (the configuration's app_id)."""
        if node.channel == "webhook":
            return str(node.content.get("url") or "") or None
        scope = None
        if node.channel in SCOPED_CHANNELS and self.scope_of is not None:
            scope = self.scope_of(st.workspace_id, node.via or f"default:{node.channel}", node.channel)
        return person.address(node.channel, scope)

    def _people(self, senders: list[_State]) -> dict[str, Person]:
        if not senders:
            return {}
        found: dict[str, Person] = {}
        if self.people is not None:
            by_ws: dict[str, list[str]] = defaultdict(list)
            for st in senders:
                by_ws[st.workspace_id].append(st.profile_id)
            for ws, ids in by_ws.items():
                try:
                    found.update(self.people.lookup(ws, ids))
                except Exception:
                    log.exception("people lookup failed; sending from the enrollment snapshots")
        for st in senders:
            if st.profile_id not in found:
                found[st.profile_id] = Person.from_snapshot(st.profile_id, st.context.get("person"))
        return found

    # -- writing -------------------------------------------------------------------------------

    def _write(self, conn: Connection, states: list[_State], batch: _Batch) -> None:
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for st in states:
            groups[st.shape()].append(st.id)
        for shape, ids in groups.items():
            status, node, waiting, due_at, arm, ended_at, exit_reason, attempts = shape
            values = {"status": status, "node": node, "waiting": waiting, "due_at": due_at, "arm": arm,
                      "ended_at": ended_at, "exit_reason": exit_reason, "attempts": attempts, "resume": None,
                      "exit_pending": False}  # fmt: skip
            for i in range(0, len(ids), 5000):
                conn.execute(update(_E).where(among(conn, _E.c.id, ids[i : i + 5000])).values(**values))
        if batch.outbox:
            insert_rows(conn, _O, batch.outbox, ignore_key="key")
        if batch.tasks:
            insert = postgresql.insert if self._postgres else sqlite.insert
            conn.execute(insert(_T).on_conflict_do_nothing(index_elements=["key"]), batch.tasks)
        if batch.steps:
            insert_rows(conn, _S, batch.steps)


class _Gate:
    """Consent and suppression for one round's sends, read once for all of them."""

    def __init__(self, conn: Connection, policies: Policies, senders: list[_State], people: dict[str, Person],
                 nodes: dict[int, Any], addresses: dict[int, str | None]) -> None:  # fmt: skip
        self._policies = policies
        self._addresses = addresses
        self._aliases = {
            st.profile_id: people[st.profile_id].aliases for st in senders if st.profile_id in people
        }
        self._cache: dict[str, Policy] = {}
        by_ws: dict[str, list[_State]] = defaultdict(list)
        for st in senders:
            by_ws[st.workspace_id].append(st)
        self._consent: dict[str, list[Any]] = {}
        self._suppressed: set[tuple[str, str]] = set()
        for ws, members in by_ws.items():
            subjects: set[str] = set()
            pairs: set[tuple[str, str]] = set()
            for st in members:
                channel = nodes[st.id].channel
                address = addresses.get(st.id) if channel != "webhook" else None
                subjects.add(st.profile_id)
                subjects.update(self._aliases.get(st.profile_id, ()))
                pairs.add(("*", st.profile_id))
                if address:
                    subjects.add(address)
                    pairs.update({(channel, address), ("*", address)})
            self._consent.update({f"{ws}\x00{k}": v for k, v in consent_rows(conn, ws, subjects).items()})
            self._suppressed.update((f"{ws}\x00{c}", a) for c, a in suppressed(conn, ws, pairs))

    def policy(self, workspace_id: str) -> Policy:
        if workspace_id not in self._cache:
            self._cache[workspace_id] = self._policies.get(workspace_id)
        return self._cache[workspace_id]

    def is_suppressed(self, ws: str, channel: str, address: str, profile_id: str) -> bool:
        s = self._suppressed
        return (
            (f"{ws}\x00{channel}", address) in s
            or (f"{ws}\x00*", address) in s
            or (f"{ws}\x00*", profile_id) in s
        )

    def address(self, enrollment_id: int) -> str | None:
        return self._addresses.get(enrollment_id)

    def consent(self, profile_id: str, address: str, channel: str, policy: Policy) -> tuple[bool, str]:
        ws = policy.workspace_id
        # The person, the profiles that merged into them, and the address itself.
        rows = [row for subject in (profile_id, *self._aliases.get(profile_id, ()), address)
                for row in self._consent.get(f"{ws}\x00{subject}", [])]  # fmt: skip
        return consented(rows, channel, "marketing", policy.opt_in_channels)


def _outbox_row(key: str, st: _State, channel: str, config_id: str, address: str, purpose: str,
                content: dict[str, Any], meta: dict[str, Any], now: datetime) -> dict[str, Any]:  # fmt: skip
    return {"key": key, "workspace_id": st.workspace_id, "journey_id": st.journey_id, "enrollment_id": st.id,
            "node": st.node, "profile_id": st.profile_id, "channel": channel, "config_id": config_id,
            "address": address, "purpose": purpose, "content": content, "meta": meta, "status": "pending",
            "attempts": 0, "next_at": now, "created_at": now}  # fmt: skip


def _person_of(st: _State, people: dict[str, Person]) -> Person:
    return people.get(st.profile_id) or Person.from_snapshot(st.profile_id, st.context.get("person"))


def _hhmm(value: str) -> Any:
    from datetime import time

    return time.fromisoformat(value)


def _template_traits(journey: Journey) -> list[str] | None:
    """The profile traits the journey's templates use (what an enrollment snapshots)."""
    from quanyu.channels.templates import parse

    names: set[str] = {"timezone", "guide_id"}
    for node in journey.nodes.values():
        if isinstance(node, SendNode):
            stack: list[Any] = [node.content]
            while stack:
                value = stack.pop()
                if isinstance(value, str):
                    try:
                        names.update(v.split(".", 2)[1] for v in parse(value, field="content").variables
                                     if v.startswith("profile.") and v.count(".") >= 1)  # fmt: skip
                    except Exception:  # noqa: S112 - refused at save; nothing to snapshot
                        continue
                elif isinstance(value, dict):
                    stack.extend(value.values())
                elif isinstance(value, list):
                    stack.extend(value)
    return sorted(names)


def _history(
    conn: Connection, journey_id: str, profile_ids: list[str]
) -> dict[str, tuple[datetime | None, bool]]:
    """(last entry, has an active enrollment) per person, for the re-entry rule."""
    found: dict[str, tuple[datetime | None, bool]] = {}
    active = func.max(func.cast(_E.c.status == "active", _E.c.attempts.type))
    for i in range(0, len(profile_ids), 900):
        chunk = profile_ids[i : i + 900]
        rows = conn.execute(
            select(_E.c.profile_id, func.max(_E.c.entered_at), active)
            .where(_E.c.journey_id == journey_id, among(conn, _E.c.profile_id, chunk))
            .group_by(_E.c.profile_id)
        )
        found.update({r[0]: (r[1], bool(r[2])) for r in rows})
    return found


def _insert_new(conn: Connection, rows: list[dict[str, Any]]) -> list[tuple[int, tuple[str, str | None]]]:
    """Insert enrollments, skipping entry keys already taken; (id, (node, arm)) of the new ones."""
    found = insert_returning(conn, _E, rows, ("journey_id", "entry_key"), ("id", "node", "arm"))
    return [(r[0], (r[1], r[2])) for r in found]
