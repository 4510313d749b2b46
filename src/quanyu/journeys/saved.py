"""Saved journeys: immutable versions, publishing and pausing.

Every save is a new version. Publishing makes the current version the live one: new
enrollments get it, running enrollments stay on the version they entered with. Pausing stops
new entries and holds running enrollments where they are until the journey is published again.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select, update

from quanyu.errors import Conflict, InvalidInput, NotFound
from quanyu.journeys.content import check_journey_content
from quanyu.journeys.model import ConditionNode, Journey, ScheduleTrigger, parse_journey
from quanyu.journeys.occurrences import occurrence
from quanyu.store.engine import reading
from quanyu.store.models import JourneyRow, JourneyVersion, Workspace

_J = JourneyRow.__table__
_V = JourneyVersion.__table__
STATUSES = ("draft", "live", "paused", "archived")


@dataclass(frozen=True)
class LiveJourney:
    id: str
    workspace_id: str
    version: int
    journey: Journey
    last_fired: str | None


class SavedJourneys:
    def __init__(self, engine: Engine, allow_networks: tuple[str, ...] = ()) -> None:
        self.engine = engine
        self.allow_networks = allow_networks
        # Checks a condition step's definition in full (the segment compiler, the segments it
        # names); set by the platform, which has the warehouse.
        self.condition_check: Callable[[str, dict[str, Any]], object] | None = None
        # The journeys' clock (a test or the demo moves it): where a recurring schedule starts.
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._parsed: dict[tuple[str, int], Journey] = {}  # versions never change
        self._guard = threading.Lock()

    # -- writing -------------------------------------------------------------------------------

    def create(
        self, workspace_id: str, data: dict[str, Any], actor: str, publish: bool = False
    ) -> dict[str, Any]:
        journey = self._validate(workspace_id, data)
        now = datetime.now(UTC)
        journey_id = "jrn_" + secrets.token_hex(8)
        with self.engine.begin() as conn:
            conn.execute(_J.insert().values(
                id=journey_id, workspace_id=workspace_id, name=journey.name, status="draft", current_version=1,
                live_version=None, created_at=now, created_by=actor, updated_at=now, updated_by=actor,
            ))  # fmt: skip
            conn.execute(_V.insert().values(journey_id=journey_id, version=1, definition=_dump(journey),
                                            created_at=now, created_by=actor))  # fmt: skip
        if publish:
            return self.publish(workspace_id, journey_id, actor)
        return self.get(workspace_id, journey_id)

    def update(self, workspace_id: str, journey_id: str, data: dict[str, Any], actor: str) -> dict[str, Any]:
        """A new version; a live journey keeps running its live version until published again."""
        journey = self._validate(workspace_id, data)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            row = _require(conn, workspace_id, journey_id, lock=True)
            if row.status == "archived":
                raise Conflict("旅程已归档 / the journey is archived", code="journey_archived")
            version = row.current_version + 1
            conn.execute(_V.insert().values(journey_id=journey_id, version=version, definition=_dump(journey),
                                            created_at=now, created_by=actor))  # fmt: skip
            conn.execute(update(_J).where(_J.c.id == journey_id).values(
                current_version=version, name=journey.name, updated_at=now, updated_by=actor))  # fmt: skip
        return self.get(workspace_id, journey_id)

    def publish(self, workspace_id: str, journey_id: str, actor: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            row = _require(conn, workspace_id, journey_id, lock=True)
            if row.status == "archived":
                raise Conflict("旅程已归档 / the journey is archived", code="journey_archived")
            values: dict[str, Any] = {"status": "live", "live_version": row.current_version,
                                      "updated_at": now, "updated_by": actor, "published_at": now}  # fmt: skip
            trigger = self.version(journey_id, row.current_version).trigger
            if isinstance(trigger, ScheduleTrigger) and trigger.every is not None and row.last_fired is None:
                # A recurring schedule starts with its next occurrence, not the one just past
                # (a weekly Monday send published on Wednesday waits for next Monday).
                zone = conn.execute(
                    select(Workspace.timezone).where(Workspace.id == workspace_id)
                ).scalar_one()
                values["last_fired"] = occurrence(trigger, self.now(), ZoneInfo(zone or "Asia/Shanghai"))
            conn.execute(update(_J).where(_J.c.id == journey_id).values(**values))
        return self.get(workspace_id, journey_id)

    def pause(self, workspace_id: str, journey_id: str, actor: str) -> dict[str, Any]:
        with self.engine.begin() as conn:
            row = _require(conn, workspace_id, journey_id, lock=True)
            if row.status != "live":
                raise Conflict(f"只能暂停运行中的旅程 / only a live journey can be paused (it is {row.status})",
                               code="journey_not_live")  # fmt: skip
            conn.execute(update(_J).where(_J.c.id == journey_id).values(
                status="paused", updated_at=datetime.now(UTC), updated_by=actor))  # fmt: skip
        return self.get(workspace_id, journey_id)

    def archive(self, workspace_id: str, journey_id: str, actor: str) -> dict[str, Any]:
        """Stop the journey for good: running enrollments end with reason journey_archived."""
        with self.engine.begin() as conn:
            _require(conn, workspace_id, journey_id, lock=True)
            conn.execute(update(_J).where(_J.c.id == journey_id).values(
                status="archived", updated_at=datetime.now(UTC), updated_by=actor))  # fmt: skip
        return self.get(workspace_id, journey_id)

    def mark_fired(self, journey_id: str, occurrence: str) -> bool:
        """Record that a date/schedule trigger fired `occurrence`; False if it already had."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(_J).where(_J.c.id == journey_id, (_J.c.last_fired.is_(None)) | (_J.c.last_fired < occurrence))
                .values(last_fired=occurrence)
            ).rowcount  # fmt: skip
        return bool(done)

    # -- reading -------------------------------------------------------------------------------

    def get(self, workspace_id: str, journey_id: str) -> dict[str, Any]:
        with reading(self.engine) as conn:
            row = _require(conn, workspace_id, journey_id)
            versions = conn.execute(
                select(_V.c.version, _V.c.created_at, _V.c.created_by, _V.c.definition)
                .where(_V.c.journey_id == journey_id).order_by(_V.c.version.desc())
            ).all()  # fmt: skip
        current = next(v for v in versions if v.version == row.current_version)
        return {**_public(row), "definition": current.definition,
                "versions": [{"version": v.version, "created_at": v.created_at.isoformat(),
                              "created_by": v.created_by} for v in versions]}  # fmt: skip

    def all(self, workspace_id: str) -> list[dict[str, Any]]:
        with reading(self.engine) as conn:
            rows = conn.execute(select(_J).where(_J.c.workspace_id == workspace_id).order_by(_J.c.name)).all()
        return [_public(r) for r in rows]

    def version(self, journey_id: str, version: int) -> Journey:
        """A version's parsed journey (cached: versions are immutable)."""
        key = (journey_id, version)
        found = self._parsed.get(key)
        if found is None:
            with reading(self.engine) as conn:
                data = conn.execute(
                    select(_V.c.definition).where(_V.c.journey_id == journey_id, _V.c.version == version)
                ).scalar_one_or_none()
            if data is None:
                raise NotFound(
                    f"旅程版本不存在 / journey {journey_id} v{version} not found", code="journey_not_found"
                )
            found = parse_journey(data)
            with self._guard:
                self._parsed[key] = found
        return found

    def live(self, workspace_id: str | None = None) -> list[LiveJourney]:
        """Journeys taking new entries (status live), with their live version."""
        stmt = select(_J.c.id, _J.c.workspace_id, _J.c.live_version, _J.c.last_fired).where(
            _J.c.status == "live"
        )
        if workspace_id is not None:
            stmt = stmt.where(_J.c.workspace_id == workspace_id)
        with reading(self.engine) as conn:
            rows = conn.execute(stmt).all()
        return [LiveJourney(r.id, r.workspace_id, r.live_version, self.version(r.id, r.live_version), r.last_fired)
                for r in rows if r.live_version is not None]  # fmt: skip

    def always_once(self, journey_id: str) -> bool:
        """Whether every version of the journey lets a person in once ever (re-entry "never",
        no interval): then the entry key can be the person, and nobody's history is read."""
        with reading(self.engine) as conn:
            versions = conn.execute(select(_V.c.version).where(_V.c.journey_id == journey_id)).scalars().all()
        rules = [self.version(journey_id, v).settings.reentry for v in versions]
        return all(r.mode == "never" and r.min_interval is None for r in rules)

    def statuses(self) -> dict[str, str]:
        """Every journey's status (the engine holds paused ones and ends archived ones)."""
        with reading(self.engine) as conn:
            return {r.id: r.status for r in conn.execute(select(_J.c.id, _J.c.status))}

    def workspace_of(self, journey_id: str) -> str | None:
        with reading(self.engine) as conn:
            return conn.execute(select(_J.c.workspace_id).where(_J.c.id == journey_id)).scalar_one_or_none()

    def _validate(self, workspace_id: str, data: dict[str, Any]) -> Journey:
        if not isinstance(data, dict):
            raise InvalidInput("旅程定义须为 JSON 对象 / a journey is a JSON object", code="invalid_journey")
        journey = parse_journey(data)
        check_journey_content(journey, self.allow_networks)
        if self.condition_check is not None:
            for node_id, node in journey.nodes.items():
                if isinstance(node, ConditionNode):
                    try:
                        self.condition_check(workspace_id, node.if_)
                    except InvalidInput as exc:
                        where = f"nodes.{node_id}.if"
                        raise InvalidInput(
                            f"旅程条件无效 / invalid journey condition at {where}: {exc.message}",
                            code="invalid_journey",
                            details=[{"path": where, "message": exc.message}],
                        ) from None
        return journey


def _dump(journey: Journey) -> dict[str, Any]:
    return journey.model_dump(mode="json", by_alias=True, exclude_defaults=False)


def _require(conn: Any, workspace_id: str, journey_id: str, lock: bool = False) -> Any:
    stmt = select(_J).where(_J.c.workspace_id == workspace_id, _J.c.id == journey_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise NotFound(f"旅程不存在 / journey {journey_id} not found", code="journey_not_found")
    return row


def _public(row: Any) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {"id": row.id, "name": row.name, "status": row.status, "current_version": row.current_version,
            "live_version": row.live_version, "created_at": iso(row.created_at), "created_by": row.created_by,
            "updated_at": iso(row.updated_at), "updated_by": row.updated_by,
            "published_at": iso(row.published_at)}  # fmt: skip
