"""Journeys: the language's schema, saved journeys with versions, publish / pause / archive,
statistics, enrollments, manual enrollment and an on-demand round of work."""

from __future__ import annotations

import copy
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from quanyu.api.deps import Caller, PlatformDep
from quanyu.errors import Conflict, NotFound
from quanyu.journeys.clock import Clock, OffsetClock, SystemClock
from quanyu.journeys.engine import Candidate
from quanyu.journeys.model import json_schema
from quanyu.journeys.service import Journeys
from quanyu.journeys.stats import duplicate_sends, journey_stats
from quanyu.store.engine import reading
from quanyu.store.models import Enrollment

router = APIRouter(prefix="/api/v1/journeys", tags=["journeys 旅程"])
_E = Enrollment.__table__
MAX_ADVANCE_SECONDS = 366 * 86400


def _actor(caller: Caller) -> str:
    return f"token:{caller.token_id}"


class EnrollRequest(BaseModel):
    profile_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=10_000
    )
    properties: dict[str, Any] = Field(default_factory=dict, description="what templates see as `event`")


@router.get("/schema", operation_id="journey_schema")
def schema(caller: Caller) -> dict[str, Any]:
    """The JSON Schema of a journey definition."""
    return json_schema()


@router.get("", operation_id="list_journeys")
def list_journeys(caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    return {"items": platform.journeys.saved.all(caller.workspace_id)}


@router.post("", operation_id="create_journey", status_code=201)
def create_journey(
    caller: Caller, platform: PlatformDep, definition: Annotated[dict[str, Any], Body()],
    publish: Annotated[bool, Query(description="publish at once")] = False,
) -> dict[str, Any]:  # fmt: skip
    """Save a journey (version 1); with `publish=true` it starts taking entries at once."""
    return platform.journeys.saved.create(caller.workspace_id, definition, _actor(caller), publish=publish)


@router.post("/run", operation_id="run_journeys")
def run_journeys(
    caller: Caller, platform: PlatformDep,
    advance_seconds: Annotated[float | None, Query(
        ge=0, le=MAX_ADVANCE_SECONDS,
        description="run as if this many seconds later (testing a journey's waits; this call only)")] = None,
) -> dict[str, Any]:  # fmt: skip
    """One round of work now (intake, due steps, sends), until nothing is due."""
    if not advance_seconds:
        return platform.journeys.run_once(platform.warehouse)
    return advanced(platform.journeys, timedelta(seconds=advance_seconds)).run_once(platform.warehouse)


@router.get("/{journey_id}", operation_id="get_journey")
def get_journey(journey_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    return platform.journeys.saved.get(caller.workspace_id, journey_id)


@router.put("/{journey_id}", operation_id="update_journey")
def update_journey(journey_id: str, caller: Caller, platform: PlatformDep,
                   definition: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:  # fmt: skip
    """Save a new version; a live journey keeps its live version until published again."""
    return platform.journeys.saved.update(caller.workspace_id, journey_id, definition, _actor(caller))


@router.post("/{journey_id}/publish", operation_id="publish_journey")
def publish_journey(journey_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    return platform.journeys.saved.publish(caller.workspace_id, journey_id, _actor(caller))


@router.post("/{journey_id}/pause", operation_id="pause_journey")
def pause_journey(journey_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """No new entries; running enrollments hold where they are until published again."""
    return platform.journeys.saved.pause(caller.workspace_id, journey_id, _actor(caller))


@router.post("/{journey_id}/archive", operation_id="archive_journey")
def archive_journey(journey_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Stop for good: running enrollments end (reason journey_archived)."""
    return platform.journeys.saved.archive(caller.workspace_id, journey_id, _actor(caller))


@router.get("/{journey_id}/stats", operation_id="journey_stats")
def stats(journey_id: str, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Entered, waiting, exited by reason; per node and channel; goal conversions and lift."""
    platform.journeys.saved.get(caller.workspace_id, journey_id)
    found = journey_stats(platform.engine, journey_id)
    found["duplicate_sends"] = duplicate_sends(platform.engine, journey_id)
    return found


@router.get("/{journey_id}/enrollments", operation_id="journey_enrollments")
def enrollments(
    journey_id: str, caller: Caller, platform: PlatformDep,
    status: Literal["active", "done"] | None = None, profile_id: str | None = None,
    after: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:  # fmt: skip
    """Enrollments in id order (keyset: pass the last id as `after`)."""
    platform.journeys.saved.get(caller.workspace_id, journey_id)
    stmt = select(_E).where(_E.c.journey_id == journey_id, _E.c.id > after).order_by(_E.c.id).limit(limit)
    if status:
        stmt = stmt.where(_E.c.status == status)
    if profile_id:
        stmt = stmt.where(_E.c.profile_id == profile_id)
    with reading(platform.engine) as conn:
        rows = conn.execute(stmt).all()
    items = [{"id": r.id, "profile_id": r.profile_id, "version": r.version, "status": r.status, "node": r.node,
              "waiting": r.waiting, "due_at": _iso(r.due_at), "arm": r.arm, "entered_at": _iso(r.entered_at),
              "ended_at": _iso(r.ended_at), "exit_reason": r.exit_reason, "goal_at": _iso(r.goal_at)}
             for r in rows]  # fmt: skip
    return {"items": items, "next_after": rows[-1].id if rows else after}


@router.post("/{journey_id}/enroll", operation_id="enroll_people")
def enroll(journey_id: str, body: EnrollRequest, caller: Caller, platform: PlatformDep) -> dict[str, Any]:
    """Enroll people by hand (a list from a campaign, a test audience); the re-entry rule applies."""
    saved = platform.journeys.saved
    info = saved.get(caller.workspace_id, journey_id)
    if info["status"] != "live":
        raise Conflict(
            f"旅程未发布 / the journey is not live (it is {info['status']})", code="journey_not_live"
        )
    live = next((j for j in saved.live(caller.workspace_id) if j.id == journey_id), None)
    if live is None:
        raise NotFound(f"旅程不存在 / journey {journey_id} not found", code="journey_not_found")
    people = platform.journeys.intake(platform.warehouse).people
    found = people.lookup(caller.workspace_id, body.profile_ids) if people is not None else {}
    now = datetime.now(UTC)
    request = secrets.token_hex(6)
    cands = [Candidate(caller.workspace_id, pid, f"api:{request}:{pid}", now, body.properties, found.get(pid))
             for pid in body.profile_ids]  # fmt: skip
    return platform.journeys.runner(platform.warehouse).enroll(live, cands).public()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class _Shifted:
    """Another clock, `delta` later (a ManualClock in tests)."""

    def __init__(self, base: Clock, delta: timedelta) -> None:
        self.base = base
        self.delta = delta

    def now(self) -> datetime:
        return self.base.now() + self.delta


def advanced(journeys: Journeys, delta: timedelta) -> Journeys:
    """The journeys service with its clock `delta` ahead, for one call (`run --advance 3d`).

    A shallow copy: it shares the stores, the caches and the round lock, so its `run_once` still
    takes turns with the worker thread, whose own clock never changes."""
    clock = journeys.clock
    ahead: Clock
    if isinstance(clock, OffsetClock):
        ahead = OffsetClock(clock.offset + delta)
    elif isinstance(clock, SystemClock):
        ahead = OffsetClock(delta)
    else:
        ahead = _Shifted(clock, delta)
    moved = copy.copy(journeys)
    moved.clock = ahead
    return moved
