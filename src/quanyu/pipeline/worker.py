"""The micro-batch pipeline: queue → dedupe → normalise → warehouse, exactly once.

Exactly-once rests on one rule: the warehouse append and the record of which queue batches it
came from commit in the same warehouse transaction. After a crash, batches the warehouse
already has are simply removed from the queue; everything else is processed again, and the
messageId anti-join makes any client resend a no-op.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from quanyu.collect.queue import ClaimedBatch, IngestQueue, Tally
from quanyu.collect.sources import SourceInfo, Sources
from quanyu.identity.identifiers import IdentifierTypes
from quanyu.identity.stage import IdentityStage
from quanyu.pipeline.normalise import BATCHES, batch_table, new_events
from quanyu.warehouse.base import Warehouse

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    batches: int = 0
    events: int = 0
    inserted: int = 0
    duplicates: int = 0
    recovered_batches: int = 0
    tallies: dict[str, Tally] = field(default_factory=dict)
    people: dict[str, int] = field(default_factory=dict)

    def add(self, other: StepResult) -> None:
        self.batches += other.batches
        self.events += other.events
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.recovered_batches += other.recovered_batches

    def public(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "events": self.events,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "recovered_batches": self.recovered_batches,
            **({"people": self.people} if self.people else {}),
        }


@dataclass
class PipelineConfig:
    batch_events: int = 250_000
    batch_bytes: int = 256 * 1024 * 1024
    dedupe_window: timedelta = timedelta(days=7)
    future_after: timedelta = timedelta(hours=24)
    past_before: timedelta = timedelta(days=5 * 365)
    # Stitch new events into the identity graph after each drain (off in pure-ingest benches).
    resolve_identities: bool = True


class Pipeline:
    def __init__(
        self, queue: IngestQueue, warehouse: Warehouse, sources: Sources, config: PipelineConfig,
        types_for: Callable[[str], IdentifierTypes] | None = None,
    ) -> None:  # fmt: skip
        self.queue = queue
        self.warehouse = warehouse
        self.sources = sources
        self.config = config
        self._sources: dict[str, SourceInfo] = {}
        self._lock = threading.Lock()
        self.identity = IdentityStage(warehouse, types_for, on_change=self._refresh_profiles)
        # Called with (workspace, profile ids) once those people's profiles are refreshed: the
        # realtime segments (segments/realtime.py). A failing hook is logged, never fatal.
        self.on_profiles: list[Callable[[str, list[str]], object]] = []
        # Called with the ids of the queue batches just stored, before identity runs: the
        # realtime segments' fast path for people already known. Never fatal either.
        self.on_stored: list[Callable[[list[int]], object]] = []
        # Called after each drain that stitched anything (the journeys' intake reads what the
        # identity graph has taken in). Never fatal either.
        self.on_drained: list[Callable[[], object]] = []

    def drain(self, on_step: Callable[[StepResult], None] | None = None) -> StepResult:
        """Process until the queue is empty (what `quanyu pipeline run --once` does).

        Three stages overlap, so both cores stay busy: while the warehouse appends one
        micro-batch (native code, no GIL), one helper thread already claims and decodes the
        next, and another deletes the previous one's queue rows. Deleting late is safe: the
        warehouse already records those batches as applied, which is what recovery checks.
        """
        total = StepResult()
        with (
            self._lock,
            ThreadPoolExecutor(1, thread_name_prefix="quanyu-prefetch") as prefetch,
            ThreadPoolExecutor(1, thread_name_prefix="quanyu-complete") as cleanup,
        ):
            upcoming = prefetch.submit(self._prepare, None)
            completing: Future[None] | None = None
            while (work := upcoming.result()) is not None:
                upcoming = prefetch.submit(self._prepare, work.last_id)
                step = self._apply(work)
                self._stored([b.id for b in work.fresh])
                if completing is not None:
                    completing.result()  # in order, and a failure stops the drain here
                completing = cleanup.submit(self.queue.complete, [b.id for b in work.claimed], step.tallies)
                total.add(step)
                if on_step is not None:
                    on_step(step)
            if completing is not None:
                completing.result()
            if self.config.resolve_identities:
                # After the events are safely stored: people lag events by one drain at most.
                total.people = self.identity.run().public()
        if total.people.get("batches"):
            for hook in self.on_drained:
                try:
                    hook()
                except Exception:
                    log.exception("drained hook %r failed", hook)
        return total

    def identity_pending(self) -> int:
        """Stored batches the identity graph (and so profiles) has not taken in yet, up to
        the stage's slice size: 0 once everything is stitched."""
        return len(self.identity.pending()) if self.config.resolve_identities else 0

    def _stored(self, batch_ids: list[int]) -> None:
        if not batch_ids or not self.config.resolve_identities:
            return
        for hook in self.on_stored:
            try:
                hook(batch_ids)
            except Exception:
                log.exception("events-stored hook %r failed", hook)

    def _refresh_profiles(self, workspace_id: str, profile_ids: list[str]) -> None:
        # The people a stitch touched (new, changed, merged away) are re-materialised at once,
        # so profiles trail their events by one drain.
        from quanyu.profiles.materialise import refresh

        refresh(self.warehouse, workspace_id, profile_ids)
        for hook in self.on_profiles:
            try:
                hook(workspace_id, profile_ids)
            except Exception:
                log.exception("profiles-changed hook %r failed for %s", hook, workspace_id)

    def run(self, stop: threading.Event, interval: float) -> None:
        while not stop.is_set():
            try:
                done = self.drain()
            except Exception:
                log.exception("pipeline step failed; retrying")
                stop.wait(interval)
                continue
            if not done.batches and not done.recovered_batches and not done.people.get("batches"):
                stop.wait(interval)

    def _prepare(self, after_id: int | None) -> _Work | None:
        # Past `after_id` only: the batch before is still in flight. Batches committed out of id
        # order (several writers) are picked up by the next drain, which starts from the head.
        claimed = self.queue.claim(self.config.batch_events, after_id, max_bytes=self.config.batch_bytes)
        if not claimed:
            return None
        done = self.warehouse.applied_batches([b.id for b in claimed])
        fresh = [b for b in claimed if b.id not in done]
        return _Work(claimed, fresh, done, {BATCHES: batch_table([self._batch_row(b) for b in fresh])})

    def _apply(self, work: _Work) -> StepResult:
        cfg = self.config
        inserted: dict[int, int] = {}
        if work.fresh:
            rows = new_events(cfg.future_after, cfg.past_before, datetime.now(UTC) - cfg.dedupe_window)
            inserted = self.warehouse.append("events", rows, work.inputs, [b.id for b in work.fresh])
        return _tally(work, inserted)

    def _batch_row(self, b: ClaimedBatch) -> tuple[int, str, str, str, str, str, str, datetime, bytes]:
        source = self._sources.get(b.source_id)
        if source is None:
            self._sources = {s.id: s for s in self.sources.all()}
            source = self._sources.get(b.source_id)
        if source is None:  # a source deleted after its events were accepted
            return (
                b.id,
                b.workspace_id,
                b.source_id,
                "server",
                "server",
                "private",
                "online",
                b.received_at,
                b.payload,
            )
        return (b.id, b.workspace_id, b.source_id, source.type, source.channel, source.domain, source.presence,
                b.received_at, b.payload)  # fmt: skip


@dataclass
class _Work:
    claimed: list[ClaimedBatch]
    fresh: list[ClaimedBatch]
    # Batches the warehouse already holds (a crash hit after its commit), with their counts.
    recovered: dict[int, int]
    inputs: dict[str, pa.Table]

    @property
    def last_id(self) -> int:
        return self.claimed[-1].id


def _tally(work: _Work, inserted: dict[int, int]) -> StepResult:
    """Counters per workspace. Recovered batches count with what they inserted before the
    crash, so the status stays right; the step result reports only this step's own work."""
    tallies: dict[str, Tally] = defaultdict(Tally)
    for b in work.claimed:
        new = inserted[b.id] if b.id in inserted else work.recovered.get(b.id, 0)
        tally = tallies[b.workspace_id]
        tally.batches += 1
        tally.processed += new
        tally.duplicates += b.event_count - new
    events = sum(b.event_count for b in work.fresh)
    total = sum(inserted.values())
    recovered = len(work.claimed) - len(work.fresh)
    return StepResult(len(work.fresh), events, total, events - total, recovered, dict(tallies))
