"""Back-pressure: how many accepted events wait for the pipeline, per workspace.

Beyond the configured bounds the collector answers 429 with Retry-After instead of letting
the queue (and memory) grow without end; one flooding workspace hits its own bound first.
"""

from __future__ import annotations

import threading
import time

from quanyu.collect.queue import IngestQueue, QueuedBatch
from quanyu.errors import Overloaded


class BacklogGauge:
    def __init__(
        self, queue: IngestQueue, max_events: int, max_workspace_events: int, refresh_seconds: float = 0.5
    ) -> None:
        self.queue = queue
        self.max_events = max_events
        self.max_workspace_events = max_workspace_events
        self.refresh_seconds = refresh_seconds
        self._by_workspace: dict[str, int] = {}
        self._refreshed = 0.0
        self._lock = threading.Lock()

    def on_commit(self, batches: list[QueuedBatch]) -> None:
        with self._lock:
            for b in batches:
                self._by_workspace[b.workspace_id] = self._by_workspace.get(b.workspace_id, 0) + b.event_count

    def check(self, workspace_id: str) -> None:
        """Raise Overloaded (429) when the backlog is past a bound."""
        self._refresh_if_stale()
        total = sum(self._by_workspace.values())
        mine = self._by_workspace.get(workspace_id, 0)
        if total >= self.max_events or mine >= self.max_workspace_events:
            raise Overloaded(
                f"处理积压 {mine}/{total} 条事件，请稍后重试 / backlog of {total} events, retry later",
                retry_after=self._retry_after(total),
            )

    def _refresh_if_stale(self) -> None:
        now = time.monotonic()
        if now - self._refreshed < self.refresh_seconds:
            return
        self._refreshed = now
        fresh = {ws: b.events for ws, b in self.queue.backlog().items()}
        with self._lock:
            self._by_workspace = fresh

    def _retry_after(self, total: int) -> int:
        # Assume the pipeline drains ~100k events/s; never ask for less than a second.
        return max(1, min(60, total // 100_000))
