"""The durable ingestion queue in the operational store.

Rows are appended by the collector (acknowledged only after commit) and deleted by the pipeline
once the warehouse holds their events. Claiming does not lock: one pipeline owns a warehouse.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, func, select

from quanyu.store.engine import reading
from quanyu.store.models import IngestBatch, PipelineCounter
from quanyu.store.times import as_utc
from quanyu.store.upsert import increment


@dataclass(frozen=True)
class QueuedBatch:
    workspace_id: str
    source_id: str
    received_at: datetime
    event_count: int
    payload: bytes


@dataclass(frozen=True)
class ClaimedBatch:
    id: int
    workspace_id: str
    source_id: str
    received_at: datetime
    event_count: int
    payload: bytes


@dataclass
class Tally:
    processed: int = 0
    duplicates: int = 0
    batches: int = 0


@dataclass(frozen=True)
class Backlog:
    events: int
    batches: int


class IngestQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._table = IngestBatch.__table__

    def append_in(self, conn: Connection, batches: Sequence[QueuedBatch]) -> None:
        if batches:
            conn.execute(self._table.insert(), [_row(b) for b in batches])

    def append(self, batches: Sequence[QueuedBatch]) -> None:
        with self.engine.begin() as conn:
            self.append_in(conn, batches)

    def claim(
        self,
        max_events: int,
        after_id: int | None = None,
        max_batches: int = 2_000,
        max_bytes: int = 256 * 1024 * 1024,
    ) -> list[ClaimedBatch]:
        """The oldest batches (past `after_id`), in id order, up to `max_events` and `max_bytes`
        of payload (always at least one batch)."""
        t = IngestBatch
        # length() reads the stored size, not the blob (SQLite and PostgreSQL alike).
        heads_stmt = select(t.id, t.event_count, func.length(t.payload)).order_by(t.id).limit(max_batches)
        if after_id is not None:
            heads_stmt = heads_stmt.where(t.id > after_id)
        with reading(self.engine) as conn:
            heads = conn.execute(heads_stmt).all()
            ids = _take(heads, max_events, max_bytes)
            if not ids:
                return []
            rows = conn.execute(select(IngestBatch).where(t.id.in_(ids)).order_by(t.id)).all()
        return [
            ClaimedBatch(
                r.id, r.workspace_id, r.source_id, as_utc(r.received_at), r.event_count, bytes(r.payload)
            )
            for r in rows
        ]

    def complete(self, ids: Iterable[int], tallies: dict[str, Tally]) -> None:
        """Forget processed batches and add to the per-workspace counters, atomically."""
        ids = list(ids)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 500):
                conn.execute(delete(IngestBatch).where(IngestBatch.id.in_(ids[start : start + 500])))
            for workspace_id, tally in sorted(tallies.items()):
                increment(
                    conn,
                    PipelineCounter.__table__,
                    {"workspace_id": workspace_id},
                    {"processed": tally.processed, "duplicates": tally.duplicates, "batches": tally.batches},
                    last_processed_at=now,
                )

    def backlog(self) -> dict[str, Backlog]:
        t = IngestBatch
        stmt = select(t.workspace_id, func.sum(t.event_count), func.count()).group_by(t.workspace_id)
        with reading(self.engine) as conn:
            return {ws: Backlog(int(events or 0), int(n)) for ws, events, n in conn.execute(stmt)}

    def counters(self) -> dict[str, PipelineCounter]:
        with reading(self.engine) as conn:
            rows = conn.execute(select(PipelineCounter.__table__)).all()
        return {r.workspace_id: r for r in rows}  # type: ignore[misc]


def _take(heads: Sequence[tuple[int, int, int]], max_events: int, max_bytes: int) -> list[int]:
    ids: list[int] = []
    events = size = 0
    for batch_id, count, length in heads:
        if ids and (events + count > max_events or size + length > max_bytes):
            break
        ids.append(batch_id)
        events += count
        size += length
    return ids


def _row(b: QueuedBatch) -> dict[str, object]:
    return {
        "workspace_id": b.workspace_id,
        "source_id": b.source_id,
        "received_at": b.received_at,
        "event_count": b.event_count,
        "payload": b.payload,
    }
