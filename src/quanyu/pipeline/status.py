"""Pipeline status for one workspace: queued, processed, duplicates, quarantined."""

from __future__ import annotations

from typing import Any

from quanyu.collect.quarantine import Quarantine
from quanyu.collect.queue import Backlog, IngestQueue
from quanyu.store.times import as_utc


def pipeline_status(
    queue: IngestQueue, quarantine: Quarantine, workspace_id: str, identity_pending: int = 0
) -> dict[str, Any]:
    """`identity_pending_batches`: batches in the warehouse the identity graph (and so the
    profiles and real-time segments) has not taken in yet; 0 once everything is stitched."""
    backlog = queue.backlog().get(workspace_id, Backlog(0, 0))
    counter = queue.counters().get(workspace_id)
    last = counter.last_processed_at if counter else None
    return {
        "workspace_id": workspace_id,
        "queued": backlog.events,
        "queued_batches": backlog.batches,
        "processed": int(counter.processed) if counter else 0,
        "duplicates": int(counter.duplicates) if counter else 0,
        "quarantined": quarantine.count(workspace_id),
        "last_processed_at": as_utc(last).isoformat() if last else None,
        "identity_pending_batches": identity_pending,
    }
