"""Journey effects on the person and message receipts, written back as events on the profile.

- `EffectsAdapter` serves the outbox's "internal" channel: tag steps write the profile's tag
  log; set-trait and lead-score steps become `identify` / `Lead Score Changed` messages on the
  ingestion queue with the outbox key as messageId, so a repeat is dropped by the pipeline's
  dedupe (the adapter is idempotent).
- `Receipts` turns delivery reports, opens, clicks, bounces, complaints, unsubscribe links and
  SMS unsubscribe replies into outbox columns, consent records, suppressions and events
  (`Message Delivered`, `Message Opened`, …, `Unsubscribed`) on the person.

Events are attached to the person through one of their identifiers (`context.externalIds`),
never through a made-up id, so the identity graph puts them on the right profile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, select, update

from quanyu.channels.base import Message, SendResult
from quanyu.collect.messages import Envelope, complete
from quanyu.collect.queue import IngestQueue, QueuedBatch
from quanyu.collect.sources import Sources
from quanyu.identity.identifiers import BUILTIN_TYPES
from quanyu.journeys.policy import ConsentInput, record_consent, suppress
from quanyu.profiles.tags import add_tag, remove_tag
from quanyu.store.engine import reading
from quanyu.store.models import OutboxMessage
from quanyu.warehouse.base import Warehouse

log = logging.getLogger(__name__)

_O = OutboxMessage.__table__
# The identifier type an address of each channel is.
ADDRESS_TYPES = {"email": "email", "sms": "phone", "wechat_oa": "wechat_openid",
                 "mini_program": "mini_program_openid", "wecom": "wecom_external_userid"}  # fmt: skip
RECEIPT_EVENTS = {"delivered": "Message Delivered", "opened": "Message Opened", "clicked": "Message Clicked",
                  "bounced": "Message Bounced", "complained": "Message Complained", "failed": "Message Failed"}  # fmt: skip
_COLUMNS = {"delivered": "delivered_at", "opened": "opened_at", "clicked": "clicked_at", "bounced": "bounced_at",
            "complained": "complained_at"}  # fmt: skip


class EventWriter:
    """Completed messages onto the ingestion queue, under the workspace's messaging source."""

    def __init__(self, queue: IngestQueue, sources: Sources) -> None:
        self.queue = queue
        self.sources = sources
        self._source: dict[str, str] = {}
        self._guard = threading.Lock()

    def source_id(self, workspace_id: str) -> str:
        with self._guard:
            found = self._source.get(workspace_id)
            if found:
                return found
            mine = [s for s in self.sources.list(workspace_id) if s.type == "messaging"]
            source_id = mine[0].id if mine else self.sources.create(
                workspace_id, "Quanyu 消息触达 Messaging", "messaging").source.id  # fmt: skip
            self._source[workspace_id] = source_id
            return source_id

    def write(self, workspace_id: str, items: Sequence[dict[str, Any]]) -> None:
        if not items:
            return
        now = datetime.now(UTC)
        parts: list[bytes] = []
        for item in items:
            # `complete` settles times and shapes like any collected message; the placeholder
            # anonymousId only satisfies its identity rule and is removed again: the person is
            # named by the identifier in context.externalIds.
            placeholder = "anonymousId" not in item and "userId" not in item
            encoded = complete(
                {**item, "anonymousId": "-"} if placeholder else dict(item), None, Envelope(), now
            )
            if placeholder:
                decoded = orjson.loads(encoded)
                decoded.pop("anonymousId", None)
                encoded = orjson.dumps(decoded)
            parts.append(encoded)
        batch = QueuedBatch(workspace_id, self.source_id(workspace_id), now, len(parts),
                            b"[" + b",".join(parts) + b"]")  # fmt: skip
        self.queue.append([batch])


def external_id(id_type: str, value: str, scope: str = "") -> dict[str, Any]:
    ident: dict[str, Any] = {"id": value, "type": id_type, "collection": "users", "encoding": "none"}
    if scope:
        ident["app_id"] = scope
    return ident


class EffectsAdapter:
    """The "internal" channel: tags, traits and lead scores decided by journey steps."""

    type = "internal"
    channel = "internal"
    idempotent = True  # tags: adding a held tag is a no-op; messages: deduped by messageId

    def __init__(self, warehouse: Warehouse, events: EventWriter) -> None:
        self.warehouse = warehouse
        self.events = events

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        results: list[SendResult] = []
        anchors = anchors_of(self.warehouse, messages)
        queued: dict[str, list[dict[str, Any]]] = {}
        for m in messages:
            op = m.content.get("op")
            actor = f"journey:{m.meta.get('journey') or m.meta.get('journey_id')}"
            try:
                if op == "tag":
                    for tag in m.content.get("add") or []:
                        add_tag(self.warehouse, m.workspace_id, m.profile_id, tag, actor)
                    for tag in m.content.get("remove") or []:
                        try:
                            remove_tag(self.warehouse, m.workspace_id, m.profile_id, tag, actor)
                        except Exception as exc:  # not held, or given by a rule: nothing to remove
                            log.info("journey tag removal skipped: %s", exc)
                    results.append(SendResult(m.key, "sent"))
                    continue
                anchor = anchors.get(m.profile_id)
                if anchor is None:
                    results.append(SendResult(m.key, "failed", error_code="no_identifier",
                                              error="该用户没有可用标识 / the person has no identifier to write to"))  # fmt: skip
                    continue
                context = {"externalIds": [anchor], "library": {"name": "quanyu-journeys"}}
                if op == "set_trait":
                    item = {"type": "identify", "messageId": m.key, "traits": dict(m.content.get("traits") or {}),
                            "context": context}  # fmt: skip
                else:
                    item = {"type": "track", "event": "Lead Score Changed", "messageId": m.key, "context": context,
                            "properties": {"delta": m.content.get("delta"), "reason": m.content.get("reason"),
                                           "journey_id": m.meta.get("journey_id")}}  # fmt: skip
                queued.setdefault(m.workspace_id, []).append(item)
                results.append(SendResult(m.key, "sent"))
            except Exception as exc:
                log.exception("journey effect %s failed", m.key)
                results.append(SendResult(m.key, "retry", error_code="effect_error", error=repr(exc)[:300]))
        for ws, items in queued.items():
            self.events.write(ws, items)
        return results

    def close(self) -> None:
        return None


def anchors_of(warehouse: Warehouse, messages: Sequence[Message]) -> dict[str, dict[str, Any]]:
    """The strongest identifier of each message's person, as a Segment externalIds entry."""
    found: dict[str, dict[str, Any]] = {}
    by_ws: dict[str, set[str]] = {}
    for m in messages:
        if m.content.get("op") != "tag":
            by_ws.setdefault(m.workspace_id, set()).add(m.profile_id)
    for ws, ids in by_ws.items():
        t = warehouse.table("profiles")
        rows = warehouse.execute(t.filter(t.workspace_id == ws, t.profile_id.isin(sorted(ids)))
                                 .select("profile_id", "identifiers")).to_pylist()  # fmt: skip
        for row in rows:
            idents = [i for i in row["identifiers"] or [] if i.get("type") != "phone_masked"]
            if not idents:
                continue
            best = max(
                idents, key=lambda i: BUILTIN_TYPES[i["type"]].priority if i["type"] in BUILTIN_TYPES else 50
            )
            found[row["profile_id"]] = external_id(best["type"], best["value"], best.get("scope") or "")
    return found


class Receipts:
    """What providers and people tell us after a send."""

    def __init__(self, engine: Engine, events: EventWriter) -> None:
        self.engine = engine
        self.events = events

    def record(self, kind: str, *, key: str | None = None, provider_id: str | None = None,
               at: datetime | None = None, detail: dict[str, Any] | None = None,
               workspace_id: str | None = None) -> int:  # fmt: skip
        """Record a receipt for the outbox row with `key` (or every row with `provider_id`);
        returns how many rows it matched. Bounces and complaints also suppress the address."""
        if kind not in RECEIPT_EVENTS:
            raise ValueError(f"unknown receipt kind {kind!r}")
        at = at or datetime.now(UTC)
        with reading(self.engine) as conn:
            stmt = select(_O.c.id, _O.c.key, _O.c.workspace_id, _O.c.profile_id, _O.c.channel, _O.c.address,
                          _O.c.journey_id, _O.c.node, _O.c.provider_id)  # fmt: skip
            if key is not None:
                stmt = stmt.where(_O.c.key == key)
            elif provider_id is not None:
                stmt = stmt.where(_O.c.provider_id == provider_id)
            else:
                raise ValueError("a receipt needs key or provider_id")
            if workspace_id is not None:  # a caller speaks for its own workspace's messages only
                stmt = stmt.where(_O.c.workspace_id == workspace_id)
            rows = conn.execute(stmt).all()
        if not rows:
            return 0
        column = _COLUMNS.get(kind)
        with self.engine.begin() as conn:
            for r in rows:
                if column is not None:
                    conn.execute(
                        update(_O).where(_O.c.id == r.id, _O.c[column].is_(None)).values({column: at})
                    )
                if kind == "failed":
                    conn.execute(update(_O).where(_O.c.id == r.id).values(status="failed",
                                                                          error_code=(detail or {}).get("code")))  # fmt: skip
                if kind in ("bounced", "complained"):
                    suppress(conn, r.workspace_id, r.channel, r.address, kind, "receipt")
                if kind == "complained":
                    record_consent(conn, r.workspace_id, [ConsentInput(
                        "address", r.address, r.channel, "marketing", False, "complaint", at,
                        {"key": r.key}, f"complaint:{r.key}")])  # fmt: skip
        for r in rows:
            props = {"channel": r.channel, "message_key": r.key, "journey_id": r.journey_id, "node": r.node,
                     "provider_id": r.provider_id, **(detail or {})}  # fmt: skip
            self._event(
                r.workspace_id, r.channel, r.address, RECEIPT_EVENTS[kind], f"{r.key}:{kind}", at, props
            )
        return len(rows)

    def unsubscribe(self, workspace_id: str, channel: str, address: str, *, source: str,
                    profile_id: str | None = None, at: datetime | None = None,
                    evidence: dict[str, Any] | None = None, dedupe_key: str | None = None) -> bool:  # fmt: skip
        """Withdraw marketing consent for an address (an SMS "TD" reply, an unsubscribe link),
        and for the profile too when known. Returns False for a repeat."""
        at = at or datetime.now(UTC)
        records = [ConsentInput("address", address, channel, "marketing", False, source, at, evidence or {},
                                dedupe_key)]  # fmt: skip
        if profile_id:
            records.append(ConsentInput("profile", profile_id, channel, "marketing", False, source, at,
                                        evidence or {}, f"{dedupe_key}:profile" if dedupe_key else None))  # fmt: skip
        with self.engine.begin() as conn:
            new = record_consent(conn, workspace_id, records)
        if new:
            self._event(workspace_id, channel, address, "Unsubscribed", dedupe_key or None, at,
                        {"channel": channel, "source": source, **(evidence or {})})  # fmt: skip
        return bool(new)

    def _event(self, ws: str, channel: str, address: str, name: str, message_id: str | None, at: datetime,
               props: dict[str, Any]) -> None:  # fmt: skip
        id_type = ADDRESS_TYPES.get(channel)
        if id_type is None:
            return  # a webhook or a sink has no person-side address
        item: dict[str, Any] = {"type": "track", "event": name, "timestamp": at.isoformat(),
                                "context": {"externalIds": [external_id(id_type, address)],
                                            "library": {"name": "quanyu-receipts"}},
                                "properties": props}  # fmt: skip
        if message_id:
            item["messageId"] = message_id
        try:
            self.events.write(ws, [item])
        except Exception:
            log.exception("receipt event for %s could not be queued", ws)
