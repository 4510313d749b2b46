"""Journey statistics, counted from the step log, the enrollments and the outbox.

Per journey: people entered, active, waiting (per node), exited by reason; per node: what the
step log recorded there (queued sends, skips by reason, holds, branches, waits); per channel:
queued, sent, failed, unknown, delivered, opened, clicked, bounced, complained; goal
conversions per arm and the lift of the treated over the control arm and the global holdout.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, case, func, select

from quanyu.store.engine import reading
from quanyu.store.models import Enrollment, JourneyStep, OutboxMessage

_E = Enrollment.__table__
_S = JourneyStep.__table__
_O = OutboxMessage.__table__
CONTROL_ARMS = ("control", "holdout")


def journey_stats(engine: Engine, journey_id: str) -> dict[str, Any]:
    with reading(engine) as conn:
        enrolled = conn.execute(
            select(_E.c.status, _E.c.waiting, _E.c.node, _E.c.exit_reason, func.count())
            .where(_E.c.journey_id == journey_id)
            .group_by(_E.c.status, _E.c.waiting, _E.c.node, _E.c.exit_reason)
        ).all()
        steps = conn.execute(
            select(_S.c.node, _S.c.kind, _S.c.detail, _S.c.channel, func.count())
            .where(_S.c.journey_id == journey_id)
            .group_by(_S.c.node, _S.c.kind, _S.c.detail, _S.c.channel)
        ).all()
        sends = conn.execute(
            select(_O.c.node, _O.c.channel, _O.c.status, func.count(), func.count(_O.c.delivered_at),
                   func.count(_O.c.opened_at), func.count(_O.c.clicked_at), func.count(_O.c.bounced_at),
                   func.count(_O.c.complained_at))
            .where(_O.c.journey_id == journey_id)
            .group_by(_O.c.node, _O.c.channel, _O.c.status)
        ).all()  # fmt: skip
        converted = case((_E.c.goal_at.is_not(None), 1), else_=0)
        arms = conn.execute(
            select(_E.c.arm, func.count(), func.sum(converted))
            .where(_E.c.journey_id == journey_id)
            .group_by(_E.c.arm)
        ).all()

    entered = sum(r[4] for r in enrolled)
    active = sum(r[4] for r in enrolled if r.status == "active")
    waiting: dict[str, int] = defaultdict(int)
    exited: dict[str, int] = defaultdict(int)
    for r in enrolled:
        if r.status == "active" and r.waiting:
            waiting[r.node] += r[4]
        if r.status == "done":
            exited[r.exit_reason or "unknown"] += r[4]

    nodes: dict[str, dict[str, Any]] = defaultdict(lambda: {"entered": 0, "waiting": 0, "steps": {}})
    for r in steps:
        label = r.kind if r.detail is None else f"{r.kind}:{r.detail}"
        node = nodes[r.node]
        node["steps"][label] = node["steps"].get(label, 0) + r[4]
        if r.kind != "exited" and r.kind != "goal":
            node["entered"] += r[4] if r.kind in ("queued", "waiting", "branch", "action", "skipped") else 0
    for name, count in waiting.items():
        nodes[name]["waiting"] = count

    channels: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in sends:
        if r.channel == "internal":
            continue
        c = channels[r.channel]
        c["queued"] += r[3]
        c[r.status] += r[3]
        for i, name in enumerate(("delivered", "opened", "clicked", "bounced", "complained"), start=4):
            c[name] += r[i]
        nodes[r.node or "?"].setdefault("sends", {})
        nodes[r.node or "?"]["sends"][r.status] = nodes[r.node or "?"]["sends"].get(r.status, 0) + r[3]

    by_arm: dict[str, dict[str, Any]] = {
        (r.arm or "treatment"): {"entered": int(r[1]), "converted": int(r[2] or 0)} for r in arms
    }
    for numbers in by_arm.values():
        numbers["rate"] = round(numbers["converted"] / numbers["entered"], 6) if numbers["entered"] else 0.0
    # With a split, the treated are who reached one of its arms (people who left before the
    # split were never assigned, and would bias the comparison); without one, everyone not
    # held out.
    arms_used = {k for k in by_arm if k not in CONTROL_ARMS and k != "treatment"}
    treated = [v for k, v in by_arm.items() if k in arms_used] if arms_used else \
        [v for k, v in by_arm.items() if k == "treatment"]  # fmt: skip
    control = [v for k, v in by_arm.items() if k in CONTROL_ARMS]
    goal: dict[str, Any] = {"by_arm": by_arm, "conversions": sum(v["converted"] for v in by_arm.values())}
    if treated and control:
        t_in, t_conv = sum(v["entered"] for v in treated), sum(v["converted"] for v in treated)
        c_in, c_conv = sum(v["entered"] for v in control), sum(v["converted"] for v in control)
        t_rate, c_rate = (t_conv / t_in if t_in else 0.0), (c_conv / c_in if c_in else 0.0)
        goal.update(treated_rate=round(t_rate, 6), control_rate=round(c_rate, 6),
                    lift=round((t_rate - c_rate) / c_rate, 6) if c_rate else None)  # fmt: skip
    return {"journey_id": journey_id, "entered": entered, "active": active, "waiting": sum(waiting.values()),
            "exited": dict(exited), "nodes": {k: dict(v) for k, v in sorted(nodes.items())},
            "channels": {k: dict(v) for k, v in sorted(channels.items())}, "goal": goal}  # fmt: skip


def duplicate_sends(engine: Engine, journey_id: str | None = None) -> int:
    """Sends recorded twice for one (enrollment, node): must always be 0."""
    stmt = (select(_O.c.enrollment_id, _O.c.node).where(_O.c.status == "sent", _O.c.enrollment_id.is_not(None))
            .group_by(_O.c.enrollment_id, _O.c.node).having(func.count() > 1))  # fmt: skip
    if journey_id is not None:
        stmt = stmt.where(_O.c.journey_id == journey_id)
    with reading(engine) as conn:
        return len(conn.execute(stmt).all())
