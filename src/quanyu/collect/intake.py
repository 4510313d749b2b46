"""Intake: turn a decoded request into a durable queue entry plus quarantine records."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from quanyu.collect.backlog import BacklogGauge
from quanyu.collect.committer import GroupCommitter, Submission
from quanyu.collect.messages import Envelope, MessageError, complete
from quanyu.collect.quarantine import QUARANTINED, Quarantine, QuarantineEntry, Reject
from quanyu.collect.queue import QueuedBatch
from quanyu.collect.sources import SourceInfo
from quanyu.errors import Conflict, NotFound


@dataclass
class Receipt:
    accepted: int = 0
    quarantined: list[dict[str, Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"success": True, "accepted": self.accepted, "quarantined": self.quarantined}


class Intake:
    def __init__(self, committer: GroupCommitter, backlog: BacklogGauge, quarantine: Quarantine) -> None:
        self.committer = committer
        self.backlog = backlog
        self.quarantine = quarantine

    def accept(
        self, source: SourceInfo, items: Sequence[Any], kind: str | None, envelope: Envelope
    ) -> tuple[Future[None], Receipt]:
        """Validate `items`, queue the valid ones, quarantine the rest; the future resolves on commit."""
        self.backlog.check(source.workspace_id)
        received_at = datetime.now(UTC)
        parts: list[bytes] = []
        rejects: list[Reject] = []
        seen: set[str] = set()
        for index, item in enumerate(items):
            try:
                encoded = complete(item, kind, envelope, received_at)
            except MessageError as err:
                rejects.append(_reject(source, received_at, index, err, item))
                continue
            # A messageId repeated inside one request is the same message: keep the first.
            if item["messageId"] not in seen:
                seen.add(item["messageId"])
                parts.append(encoded)
        batches = [_batch(source.workspace_id, source.id, received_at, parts)] if parts else []
        receipt = Receipt(
            accepted=len(items) - len(rejects),
            quarantined=[{"index": r.index, "code": r.code, "message": r.reason} for r in rejects],
        )
        return self.committer.submit(Submission(batches, rejects)), receipt

    def replay(self, workspace_id: str, ids: Sequence[int], corrected: Any = None) -> dict[str, Any]:
        """Validate quarantined messages again (optionally one corrected payload) and queue the valid ones."""
        entries = self.quarantine.get_many(workspace_id, ids)
        missing = sorted(set(ids) - {e.id for e in entries})
        if missing:
            raise NotFound(
                f"隔离记录不存在 / quarantine entries not found: {missing}", code="quarantine_not_found"
            )
        done = sorted(e.id for e in entries if e.status != QUARANTINED)
        if done:
            raise Conflict(
                f"隔离记录已重放 / quarantine entries were already replayed: {done}",
                code="already_replayed",
                details={"ids": done},
            )
        self.backlog.check(workspace_id)
        by_source: dict[tuple[str, datetime], list[bytes]] = defaultdict(list)
        replayed: list[int] = []
        failed: list[dict[str, Any]] = []
        seen: set[tuple[str, datetime, str]] = set()
        for entry in entries:
            try:
                # Keep the original receipt time so clock-skew correction stays right.
                key = (entry.source_id, entry.received_at)
                encoded = _recheck(entry, corrected)
                message_id = orjson.loads(encoded)["messageId"]
                # One copy of a messageId per queued batch, as for a request (the pipeline relies on it).
                if (*key, message_id) not in seen:
                    seen.add((*key, message_id))
                    by_source[key].append(encoded)
                replayed.append(entry.id)
            except MessageError as err:
                failed.append({"id": entry.id, "code": err.code, "message": err.message})
        batches = [_batch(workspace_id, src, at, parts) for (src, at), parts in by_source.items()]
        self.committer.submit(Submission(batches, [], replayed)).result()
        return {"replayed": replayed, "failed": failed}


_REPLAY_NAMESPACE = uuid.UUID("6f1c3c52-6a0e-4a57-9f0d-5175616e7975")


def _recheck(entry: QuarantineEntry, corrected: Any) -> bytes:
    if corrected is None:
        try:
            corrected = orjson.loads(entry.payload)
        except orjson.JSONDecodeError as exc:
            raise MessageError("invalid_message", "隔离内容不是 JSON / stored payload is not JSON") from exc
    if isinstance(corrected, dict) and not corrected.get("messageId"):
        # Derived from the entry, so replaying the same entry twice (two operators, a retried
        # request) is deduplicated downstream instead of storing the event twice.
        corrected = {
            **corrected,
            "messageId": str(uuid.uuid5(_REPLAY_NAMESPACE, f"{entry.workspace_id}/{entry.id}")),
        }
    return complete(corrected, None, Envelope(), entry.received_at)


def _batch(workspace_id: str, source_id: str, received_at: datetime, parts: list[bytes]) -> QueuedBatch:
    return QueuedBatch(workspace_id, source_id, received_at, len(parts), b"[" + b",".join(parts) + b"]")


def _reject(source: SourceInfo, received_at: datetime, index: int, err: MessageError, item: Any) -> Reject:
    try:
        payload = orjson.dumps(item).decode()
    except TypeError:
        payload = repr(item)
    return Reject(source.workspace_id, source.id, received_at, err.code, err.message, payload, index)
