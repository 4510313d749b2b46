"""Quarantine: refused messages kept with their reason, listed and replayed by operators."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from quanyu.store.engine import reading
from quanyu.store.models import QuarantinedEvent
from quanyu.store.times import as_utc

QUARANTINED = "quarantined"
REPLAYED = "replayed"


@dataclass(frozen=True)
class Reject:
    """One refused message on its way to quarantine."""

    workspace_id: str
    source_id: str
    received_at: datetime
    code: str
    reason: str
    payload: str
    index: int = 0


@dataclass(frozen=True)
class QuarantineEntry:
    id: int
    workspace_id: str
    source_id: str
    received_at: datetime
    code: str
    reason: str
    payload: str
    status: str
    replayed_at: datetime | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source_id": self.source_id,
            "received_at": _iso(self.received_at),
            "code": self.code,
            "reason": self.reason,
            "payload": self.payload,
            "status": self.status,
            "replayed_at": _iso(self.replayed_at),
        }


class Quarantine:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_in(self, conn: Connection, rejects: Sequence[Reject]) -> None:
        if rejects:
            conn.execute(QuarantinedEvent.__table__.insert(), [_row(r) for r in rejects])

    def list(
        self,
        workspace_id: str,
        *,
        status: str | None = QUARANTINED,
        limit: int = 100,
        before_id: int | None = None,
    ) -> builtins.list[QuarantineEntry]:
        q = QuarantinedEvent
        stmt = select(q.__table__).where(q.workspace_id == workspace_id)
        if status:
            stmt = stmt.where(q.status == status)
        if before_id is not None:
            stmt = stmt.where(q.id < before_id)
        with reading(self.engine) as conn:
            rows = conn.execute(stmt.order_by(q.id.desc()).limit(limit)).all()
        return [_entry(r) for r in rows]

    def get_many(self, workspace_id: str, ids: Sequence[int]) -> builtins.list[QuarantineEntry]:
        q = QuarantinedEvent
        stmt = select(q.__table__).where(q.workspace_id == workspace_id, q.id.in_(list(ids))).order_by(q.id)
        with reading(self.engine) as conn:
            return [_entry(r) for r in conn.execute(stmt)]

    def mark_replayed_in(self, conn: Connection, ids: Sequence[int]) -> None:
        if ids:
            q = QuarantinedEvent
            conn.execute(
                update(q)
                .where(q.id.in_(list(ids)), q.status == QUARANTINED)
                .values(status=REPLAYED, replayed_at=datetime.now(UTC))
            )

    def count(self, workspace_id: str, status: str = QUARANTINED) -> int:
        q = QuarantinedEvent
        stmt = select(func.count()).where(q.workspace_id == workspace_id, q.status == status)
        with reading(self.engine) as conn:
            return int(conn.execute(stmt).scalar_one())


def _row(r: Reject) -> dict[str, object]:
    return {
        "workspace_id": r.workspace_id,
        "source_id": r.source_id,
        "received_at": r.received_at,
        "code": r.code,
        "reason": r.reason,
        "payload": r.payload,
        "status": QUARANTINED,
        "replayed_at": None,
    }


def _entry(r: Any) -> QuarantineEntry:
    return QuarantineEntry(
        r.id,
        r.workspace_id,
        r.source_id,
        as_utc(r.received_at),
        r.code,
        r.reason,
        r.payload,
        r.status,
        as_utc(r.replayed_at) if r.replayed_at else None,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
