"""Group commit: many concurrent requests share one transaction (and one fsync).

Request handlers hand their prepared batch to a single writer thread and wait; the writer
commits everything that queued up meanwhile in one transaction and only then releases the
waiters, so a 2xx always follows a durable commit. If the commit fails every waiter gets
StorageUnavailable (503) and nothing of theirs is stored.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from sqlalchemy import Engine

from quanyu.collect.quarantine import Quarantine, Reject
from quanyu.collect.queue import IngestQueue, QueuedBatch
from quanyu.errors import Overloaded, StorageUnavailable

log = logging.getLogger(__name__)
_MAX_GROUP = 512


@dataclass
class Submission:
    batches: Sequence[QueuedBatch]
    rejects: Sequence[Reject]
    replayed: Sequence[int] = ()
    size: int = 0
    done: Future[None] = field(default_factory=Future)


class GroupCommitter:
    def __init__(
        self, engine: Engine, queue_: IngestQueue, quarantine: Quarantine, max_inflight_bytes: int
    ) -> None:
        self.engine = engine
        self.queue = queue_
        self.quarantine = quarantine
        self.max_inflight_bytes = max_inflight_bytes
        self._pending: queue.Queue[Submission | None] = queue.Queue()
        self._inflight = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Called with the committed batches after each successful commit (e.g. the backlog gauge).
        self.on_commit: list[Callable[[list[QueuedBatch]], None]] = []

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="quanyu-group-commit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._pending.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def submit(self, sub: Submission) -> Future[None]:
        """Queue a submission; its future resolves once committed (or fails with 503)."""
        sub.size = sum(len(b.payload) for b in sub.batches) + sum(len(r.payload) for r in sub.rejects)
        with self._lock:
            if self._inflight + sub.size > self.max_inflight_bytes:
                raise Overloaded("写入队列繁忙 / ingestion is saturated, retry shortly", retry_after=1)
            self._inflight += sub.size
        if self._thread is None:
            self._commit([sub])
        else:
            self._pending.put(sub)
        return sub.done

    def _run(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                return
            group = [first]
            while len(group) < _MAX_GROUP:
                try:
                    nxt = self._pending.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._commit(group)
                    return
                group.append(nxt)
            self._commit(group)

    def _commit(self, group: list[Submission]) -> None:
        batches = [b for s in group for b in s.batches]
        try:
            with self.engine.begin() as conn:
                self.queue.append_in(conn, batches)
                self.quarantine.add_in(conn, [r for s in group for r in s.rejects])
                self.quarantine.mark_replayed_in(conn, [i for s in group for i in s.replayed])
        except Exception as exc:
            log.exception("ingestion commit failed")
            self._release(
                group,
                StorageUnavailable(f"存储暂不可用 / storage could not commit: {exc.__class__.__name__}"),
            )
            time.sleep(0.05)
            return
        # The data is durable: answer the waiters first, so a failing observer can neither
        # hang them nor stop this thread.
        self._release(group, None)
        for callback in self.on_commit:
            try:
                callback(batches)
            except Exception:
                log.exception("on_commit callback failed")

    def _release(self, group: list[Submission], error: Exception | None) -> None:
        with self._lock:
            self._inflight -= sum(s.size for s in group)
        for sub in group:
            if error is None:
                sub.done.set_result(None)
            else:
                sub.done.set_exception(error)
