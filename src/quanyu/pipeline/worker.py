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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from quanyu.collect.queue import ClaimedBatch, IngestQueue, Tally
from quanyu.collect.sources import SourceInfo, Sources
from quanyu.pipeline.normalise import EventColumns
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

    def add(self, other: StepResult) -> None:
        self.batches += other.batches
        self.events += other.events
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.recovered_batches += other.recovered_batches

    def public(self) -> dict[str, int]:
        return {
            "batches": self.batches,
            "events": self.events,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "recovered_batches": self.recovered_batches,
        }


@dataclass
class PipelineConfig:
    batch_events: int = 100_000
    dedupe_window: timedelta = timedelta(days=7)
    future_after: timedelta = timedelta(hours=24)
    past_before: timedelta = timedelta(days=5 * 365)


class Pipeline:
    def __init__(self, queue: IngestQueue, warehouse: Warehouse, sources: Sources, config: PipelineConfig) -> None:
        self.queue = queue
        self.warehouse = warehouse
        self.sources = sources
        self.config = config
        self._sources: dict[str, SourceInfo] = {}
        self._lock = threading.Lock()

    def step(self) -> StepResult:
        """Process one micro-batch from the head of the queue."""
        with self._lock:
            claimed = self.queue.claim(self.config.batch_events)
            if not claimed:
                return StepResult()
            done = self.warehouse.applied_batches([b.id for b in claimed])
            fresh = [b for b in claimed if b.id not in done]
            result = self._apply(fresh) if fresh else StepResult()
            result.recovered_batches = len(done)
            self.queue.complete([b.id for b in claimed], result.tallies)
            return result

    def drain(self) -> StepResult:
        """Process until the queue is empty (what `quanyu pipeline run --once` does)."""
        total = StepResult()
        while (step := self.step()).batches or step.recovered_batches:
            total.add(step)
        return total

    def run(self, stop: threading.Event, interval: float) -> None:
        while not stop.is_set():
            try:
                step = self.step()
            except Exception:
                log.exception("pipeline step failed; retrying")
                stop.wait(interval)
                continue
            if not step.batches and not step.recovered_batches:
                stop.wait(interval)

    def _apply(self, batches: list[ClaimedBatch]) -> StepResult:
        cols = EventColumns(self.config.future_after, self.config.past_before)
        seen: set[tuple[str, str]] = set()
        tallies: dict[str, Tally] = defaultdict(Tally)
        events = 0
        for batch in batches:
            source = self._source(batch)
            tally = tallies[batch.workspace_id]
            tally.batches += 1
            for msg in orjson.loads(batch.payload):
                events += 1
                key = (batch.workspace_id, msg["messageId"])
                if key in seen:
                    tally.duplicates += 1
                    continue
                seen.add(key)
                cols.add(msg, source, batch.received_at, batch.id)
        since = datetime.now(UTC) - self.config.dedupe_window
        inserted = self.warehouse.append_events(cols.to_arrow(), [b.id for b in batches], since)
        offered: dict[str, int] = defaultdict(int)
        for ws in cols.columns["workspace_id"]:
            offered[ws] += 1
        for ws, n in offered.items():
            # Rows the warehouse anti-join refused are resends of stored messages.
            tallies[ws].processed += inserted.get(ws, 0)
            tallies[ws].duplicates += n - inserted.get(ws, 0)
        total = sum(inserted.values())
        return StepResult(len(batches), events, total, events - total, 0, dict(tallies))

    def _source(self, batch: ClaimedBatch) -> SourceInfo:
        source = self._sources.get(batch.source_id)
        if source is None:
            matches = [s for s in self.sources.all() if s.id == batch.source_id]
            source = matches[0] if matches else _unknown_source(batch)
            self._sources[batch.source_id] = source
        return source


def _unknown_source(batch: ClaimedBatch) -> SourceInfo:
    return SourceInfo(batch.source_id, batch.workspace_id, "unknown", "server", "server", "private", "online", "")
