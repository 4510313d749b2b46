"""Saved segments in the operational store: a name, a description and a definition that is
versioned. Every update writes a new immutable version row; deleting marks the segment (its
versions stay, and a deleted segment's name can be used again).

A definition is checked before it is saved: the language (`definition.parse_definition`), then
the segments it names (`references`): unknown ones and cycles are a 400 with the path of the
node. A segment another live segment uses cannot be deleted (409).

Each segment shows its mode (`realtime`: decided in the pipeline as events arrive, or
`scheduled`) with the reasons (`realtime.mode_of`); it follows from the current definition and
those of the segments it uses, so it is worked out when read, never stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from quanyu.errors import Conflict, InvalidInput, NotFound, QuanyuError
from quanyu.identity.identifiers import IdentifierTypes
from quanyu.org.credentials import new_id
from quanyu.segments.compiler import SegmentContext, compile_segment, segment_context
from quanyu.segments.definition import Definition, parse_definition
from quanyu.segments.event_groups import EventGroups
from quanyu.segments.realtime import public_mode
from quanyu.segments.references import check_references, users_of
from quanyu.segments.signals import Signals
from quanyu.store.engine import reading
from quanyu.store.models import SavedSegment, SegmentVersion, Workspace
from quanyu.warehouse.base import Warehouse

_S = SavedSegment.__table__
_V = SegmentVersion.__table__


class SegmentCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["30 天未触达 Not reached in 30 days"])
    description: str = Field(default="", max_length=2000)
    definition: dict[str, Any] = Field(description="a segment definition (GET /api/v1/segments/schema)")


class SegmentUpdate(BaseModel):
    """What changes; anything left out stays. Every update is a new version."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    definition: dict[str, Any] | None = None


@dataclass(frozen=True)
class LiveSegment:
    segment_id: str
    version: int
    definition: Definition
    error: str | None  # of the last refresh


class SavedSegments:
    """Saved segments and event groups of every workspace, what a definition compiles against
    (`context`), and the subscribers to membership signals (`signals`)."""

    def __init__(self, engine: Engine, types_for: Callable[[str], IdentifierTypes] | None = None) -> None:
        self.engine = engine
        self.event_groups = EventGroups(engine)
        self.signals = Signals()
        self._types_for = types_for
        self._parsed: dict[tuple[str, int], Definition] = {}  # versions are immutable

    def context(self, warehouse: Warehouse, workspace_id: str, now: datetime | None = None) -> SegmentContext:
        """The workspace's zone, event groups, identifier types and saved segments, at `now`."""
        with reading(self.engine) as conn:
            zone = conn.execute(
                select(Workspace.timezone).where(Workspace.id == workspace_id)
            ).scalar_one_or_none()
        return segment_context(
            warehouse,
            workspace_id,
            now=now,
            timezone=ZoneInfo(zone or "Asia/Shanghai"),
            event_groups=self.event_groups.mapping(workspace_id),
            segments=lambda sid: self.definition(workspace_id, sid),
            identifier_types=self._types_for(workspace_id) if self._types_for else None,
        )

    # -- reading -------------------------------------------------------------------------------

    def all(self, workspace_id: str) -> list[dict[str, Any]]:
        """The workspace's live segments, by name, with their modes."""
        with reading(self.engine) as conn:
            rows = conn.execute(_with_definitions(workspace_id).order_by(_S.c.name)).all()
        parsed = {r.id: self._parse(r.id, r.current_version, r.definition) for r in rows}
        definitions = {sid: d for sid, d in parsed.items() if not isinstance(d, QuanyuError)}
        return [{**_public(r), **_mode(parsed[r.id], definitions.get)} for r in rows]

    def live_definitions(self, workspace_id: str) -> list[LiveSegment]:
        """Every live segment's current version and definition, in one query (the pipeline's
        realtime step reads it each drain; a definition that no longer parses is left out)."""
        with reading(self.engine) as conn:
            rows = conn.execute(_with_definitions(workspace_id).order_by(_S.c.id)).all()
        found = [(r, self._parse(r.id, r.current_version, r.definition)) for r in rows]
        return [LiveSegment(r.id, r.current_version, d, r.refresh_error) for r, d in found
                if isinstance(d, Definition)]  # fmt: skip

    def get(self, workspace_id: str, segment_id: str) -> dict[str, Any]:
        """A live segment with its current definition and every version, newest first."""
        with reading(self.engine) as conn:
            row = _require(conn, workspace_id, segment_id)
            versions = conn.execute(
                select(_V).where(_V.c.segment_id == segment_id).order_by(_V.c.version.desc())
            ).all()
        history = [_version(v) for v in versions]
        current = next(v for v in history if v["version"] == row.current_version)
        parsed = self._parse(segment_id, row.current_version, current["definition"])
        mode = _mode(parsed, lambda sid: self.definition(workspace_id, sid))
        return {**_public(row), **mode, "definition": current["definition"], "versions": history}

    def definition(self, workspace_id: str, segment_id: str) -> Definition | None:
        """A live segment's current definition; None for an unknown or deleted one."""
        with reading(self.engine) as conn:
            found = conn.execute(
                select(_V.c.definition)
                .join(_S, (_S.c.id == _V.c.segment_id) & (_S.c.current_version == _V.c.version))
                .where(_S.c.workspace_id == workspace_id, _S.c.id == segment_id, _S.c.deleted_at.is_(None))
            ).scalar_one_or_none()
        return None if found is None else parse_definition(found)

    def current(self, workspace_id: str, segment_id: str) -> tuple[int, Definition]:
        """(version, definition) of a live segment; 404 otherwise."""
        with reading(self.engine) as conn:
            row = _require(conn, workspace_id, segment_id)
            found = conn.execute(
                select(_V.c.definition).where(
                    _V.c.segment_id == segment_id, _V.c.version == row.current_version
                )
            ).scalar_one()
        return row.current_version, parse_definition(found)

    def current_version(self, workspace_id: str, segment_id: str) -> int | None:
        """A live segment's current version; None once deleted."""
        with reading(self.engine) as conn:
            found = conn.execute(
                select(_S.c.current_version).where(*_alive(workspace_id), _S.c.id == segment_id)
            ).scalar_one_or_none()
        return None if found is None else int(found)

    def live_ids(self, workspace_id: str) -> list[str]:
        with reading(self.engine) as conn:
            return list(
                conn.execute(select(_S.c.id).where(*_alive(workspace_id)).order_by(_S.c.id)).scalars()
            )

    # -- writing -------------------------------------------------------------------------------

    def create(
        self, workspace_id: str, body: SegmentCreate, actor: str, warehouse: Warehouse | None = None
    ) -> dict[str, Any]:
        self.validate(workspace_id, body.definition, warehouse=warehouse)
        now, sid = datetime.now(UTC), new_id("seg")
        row = {"id": sid, "workspace_id": workspace_id, "name": body.name, "description": body.description,
               "current_version": 1, "created_at": now, "created_by": actor, "updated_at": now,
               "updated_by": actor}  # fmt: skip
        with _writing(self.engine, body.name) as conn:
            _name_free(conn, workspace_id, body.name, None)
            conn.execute(insert(_S).values(**row))
            conn.execute(insert(_V).values(segment_id=sid, version=1, name=body.name, description=body.description,
                                           definition=body.definition, created_at=now, created_by=actor))  # fmt: skip
        return self.get(workspace_id, sid)

    def update(
        self,
        workspace_id: str,
        segment_id: str,
        body: SegmentUpdate,
        actor: str,
        warehouse: Warehouse | None = None,
    ) -> dict[str, Any]:
        if body.name is None and body.description is None and body.definition is None:
            raise InvalidInput("没有要修改的内容 / nothing to update: give name, description or definition",
                               code="nothing_to_update")  # fmt: skip
        now = datetime.now(UTC)
        if body.definition is not None:
            self.validate(workspace_id, body.definition, segment_id, warehouse)
        with _writing(self.engine, body.name or "") as conn:
            row = _require(conn, workspace_id, segment_id, lock=True)
            name = body.name if body.name is not None else row.name
            description = body.description if body.description is not None else row.description
            if body.name is not None:
                _name_free(conn, workspace_id, name, segment_id)
            definition = body.definition
            if definition is None:
                definition = conn.execute(
                    select(_V.c.definition).where(
                        _V.c.segment_id == segment_id, _V.c.version == row.current_version
                    )
                ).scalar_one()
            version = row.current_version + 1
            conn.execute(insert(_V).values(segment_id=segment_id, version=version, name=name, description=description,
                                           definition=definition, created_at=now, created_by=actor))  # fmt: skip
            conn.execute(
                update(_S)
                .where(_S.c.id == segment_id)
                .values(
                    name=name,
                    description=description,
                    current_version=version,
                    updated_at=now,
                    updated_by=actor,
                )
            )
        return self.get(workspace_id, segment_id)

    def delete(self, workspace_id: str, segment_id: str, actor: str) -> dict[str, Any]:
        """Mark a segment deleted (409 `segment_in_use` while another live segment names it)."""
        live = {sid: d for sid in self.live_ids(workspace_id) if (d := self.definition(workspace_id, sid))}
        users = [u for u in users_of(segment_id, live) if u != segment_id]
        with self.engine.begin() as conn:
            row = _require(conn, workspace_id, segment_id, lock=True)
            if users:
                raise Conflict(
                    f"分群正被其他分群使用 / segment {segment_id} is used by {', '.join(users)}: change those first",
                    code="segment_in_use",
                    details={"used_by": users},
                )
            now = datetime.now(UTC)
            conn.execute(update(_S).where(_S.c.id == segment_id).values(deleted_at=now, deleted_by=actor))
        return {**_public(row), "deleted_at": now.isoformat(), "deleted_by": actor}

    def record_refresh(
        self, segment_id: str, at: datetime, version: int | None, members: int | None, error: str | None
    ) -> None:
        """What the last membership refresh did (or why it failed), for listings."""
        values: dict[str, Any] = {"refresh_error": error}
        if error is None:
            values |= {"refreshed_at": at, "refreshed_version": version, "member_count": members}
        with self.engine.begin() as conn:
            conn.execute(update(_S).where(_S.c.id == segment_id).values(**values))

    def record_change(self, segment_id: str, delta: int) -> int | None:
        """A realtime run changed the membership by `delta` people (and succeeded, so an earlier
        error is cleared): the kept count follows; answers the new count."""
        with self.engine.begin() as conn:
            conn.execute(
                update(_S)
                .where(_S.c.id == segment_id)
                .values(member_count=func.coalesce(_S.c.member_count, 0) + delta, refresh_error=None)
            )
            return conn.execute(select(_S.c.member_count).where(_S.c.id == segment_id)).scalar_one_or_none()

    def _parse(self, segment_id: str, version: int, raw: Any) -> Definition | QuanyuError:
        key = (segment_id, version)
        if key not in self._parsed:
            try:
                definition = parse_definition(raw)
            except QuanyuError as exc:
                return exc
            if len(self._parsed) > 10_000:
                self._parsed.clear()
            self._parsed[key] = definition
        return self._parsed[key]

    def validate(
        self,
        workspace_id: str,
        data: dict[str, Any] | Definition,
        own_id: str | None = None,
        warehouse: Warehouse | None = None,
    ) -> Definition:
        """A definition checked in full: the language, the segments it names, and (given the
        warehouse) everything the compiler checks: fields, event groups, literal types."""
        definition = parse_definition(data)
        check_references(definition, lambda sid: self.definition(workspace_id, sid), own_id)
        if warehouse is not None:
            compile_segment(definition, self.context(warehouse, workspace_id))  # built, never run
        return definition


@contextmanager
def _writing(engine: Engine, name: str) -> Iterator[Connection]:
    """A write transaction in which a unique-name race ends as 409, like the check before it."""
    try:
        with engine.begin() as conn:
            yield conn
    except IntegrityError as error:
        raise _taken(name) from error


def _alive(workspace_id: str) -> tuple[Any, ...]:
    return (_S.c.workspace_id == workspace_id, _S.c.deleted_at.is_(None))


def _live(workspace_id: str) -> Any:
    return select(_S).where(*_alive(workspace_id))


def _with_definitions(workspace_id: str) -> Any:
    """Live segments with their current definition."""
    current = (_S.c.id == _V.c.segment_id) & (_S.c.current_version == _V.c.version)
    return select(_S, _V.c.definition).join(_V, current).where(*_alive(workspace_id))


def _mode(parsed: Definition | QuanyuError, lookup: Callable[[str], Definition | None]) -> dict[str, Any]:
    if isinstance(parsed, QuanyuError):
        return {"mode": "scheduled", "reasons": [{"path": "(root)", "message": parsed.message}]}
    return public_mode(parsed, lookup)


def _require(conn: Connection, workspace_id: str, segment_id: str, lock: bool = False) -> Row[Any]:
    stmt = _live(workspace_id).where(_S.c.id == segment_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise NotFound(f"分群不存在 / segment {segment_id} not found", code="segment_not_found")
    return row


def _name_free(conn: Connection, workspace_id: str, name: str, own_id: str | None) -> None:
    clash = conn.execute(
        select(func.count())
        .select_from(_S)
        .where(*_alive(workspace_id), _S.c.name == name, _S.c.id != (own_id or ""))
    ).scalar_one()
    if clash:
        raise _taken(name)


def _taken(name: str) -> Conflict:
    return Conflict(f"分群名称已存在 / a segment named {name!r} already exists", code="segment_name_taken")


def _public(row: Row[Any]) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": row.id, "name": row.name, "description": row.description, "version": row.current_version,
        "created_at": iso(row.created_at), "created_by": row.created_by,
        "updated_at": iso(row.updated_at), "updated_by": row.updated_by,
        "membership": {"members": row.member_count, "refreshed_at": iso(row.refreshed_at),
                       "refreshed_version": row.refreshed_version, "error": row.refresh_error},
    }  # fmt: skip


def _version(row: Row[Any]) -> dict[str, Any]:
    return {"version": row.version, "name": row.name, "description": row.description,
            "definition": row.definition, "created_at": row.created_at.isoformat(), "created_by": row.created_by}  # fmt: skip
