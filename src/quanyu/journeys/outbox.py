"""The outbox dispatcher: sends what the steps queued, exactly once or not at all.

1. Claim due `pending` rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL) of workspaces whose kill
   switch is off, and mark them `sending` with the claim time — committed before any provider
   is called.
2. Call each adapter with its rows (one batch per channel configuration).
3. Record the outcome: `sent` (with the provider's id), `failed`, `retry` → `pending` again
   after a backoff (bounded), `unknown` → retried only if the adapter's provider drops repeats
   of the same key (`idempotent`), else left `unknown` for good.

A worker killed between 1 and 3 leaves rows `sending`. After the lease (`recover`), they go
back to `pending` if their adapter is idempotent (the provider will drop the repeat) and to
`unknown` otherwise: at most one send per key, whatever happens.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from quanyu.channels.base import ChannelAdapter, ChannelConfigError, Message, SendResult
from quanyu.channels.configs import ChannelConfigs
from quanyu.journeys.clock import Clock, SystemClock
from quanyu.journeys.engine import worker_name
from quanyu.journeys.policy import Policies
from quanyu.store.bulk import among, update_rows
from quanyu.store.models import OutboxMessage

log = logging.getLogger(__name__)

_O = OutboxMessage.__table__
MAX_ATTEMPTS = 5
BACKOFF = (30, 120, 600, 1800, 3600)  # seconds before attempt 2, 3, …
# What recording an outcome writes, one executemany per batch; guarded by `sending`, so a row
# that recovery already gave up on is left as recovery decided.
_RECORDED = ("status", "provider_id", "error_code", "error", "sent_at", "next_at")
# The columns a send needs (not the receipt times: fewer values to convert per row).
_SENDING = ("id", "key", "workspace_id", "journey_id", "node", "profile_id", "channel", "config_id", "address",
            "purpose", "content", "meta", "attempts", "next_at")  # fmt: skip


@dataclass
class DispatchReport:
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    held: int = 0  # rows of workspaces whose kill switch is on
    recovered: int = 0

    def add(self, other: DispatchReport) -> None:
        self.claimed += other.claimed
        self.held = max(self.held, other.held)
        self.recovered += other.recovered
        for k, v in other.outcomes.items():
            self.outcomes[k] = self.outcomes.get(k, 0) + v

    def public(self) -> dict[str, Any]:
        return {"claimed": self.claimed, "outcomes": dict(self.outcomes), "held": self.held,
                "recovered": self.recovered}  # fmt: skip


AdapterFor = Callable[[str, str, str], ChannelAdapter]


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        policies: Policies,
        channels: ChannelConfigs,
        *,
        clock: Clock | None = None,
        effects: ChannelAdapter | None = None,
        lease: timedelta = timedelta(minutes=5),
        worker: str | None = None,
        on_sent: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.policies = policies
        self.channels = channels
        self.clock = clock or SystemClock()
        self.effects = effects
        self.lease = lease
        self.worker = worker or worker_name()
        self.on_sent = on_sent
        self._postgres = engine.dialect.name == "postgresql"

    def dispatch(self, limit: int = 2000) -> DispatchReport:
        report = DispatchReport(recovered=self.recover())
        rows = self._claim(limit, report)
        if not rows:
            return report
        report.claimed = len(rows)
        groups: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
        for row in rows:
            # A webhook step's own URL is its own adapter.
            config = (
                f"{row.config_id}\x00{row.address}" if row.config_id.startswith("url:") else row.config_id
            )
            groups[(row.workspace_id, config, row.channel)].append(row)
        results: list[tuple[Any, SendResult, bool]] = []
        for (ws, config_id, channel), members in groups.items():
            results += self._send(ws, config_id, channel, members)
        self._record(results, report)
        return report

    # -- claiming ------------------------------------------------------------------------------

    def _claim(self, limit: int, report: DispatchReport) -> list[Any]:
        now = self.clock.now()
        stmt = select(*[_O.c[c] for c in _SENDING]).where(_O.c.status == "pending", _O.c.next_at <= now)
        if self.effects is None:  # tags and traits need the warehouse side
            stmt = stmt.where(_O.c.channel != "internal")
        stmt = stmt.order_by(_O.c.next_at).limit(limit)
        if self._postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        with self.engine.begin() as conn:
            rows = list(conn.execute(stmt).all())
            killed = {ws for ws in {r.workspace_id for r in rows} if self.policies.get(ws).kill_switch}
            if killed:
                report.held = sum(1 for r in rows if r.workspace_id in killed)
                rows = [r for r in rows if r.workspace_id not in killed]
            ids = [r.id for r in rows]
            for i in range(0, len(ids), 5000):
                conn.execute(update(_O).where(among(conn, _O.c.id, ids[i : i + 5000]))
                             .values(status="sending", claimed_at=now, claimed_by=self.worker,
                                     attempts=_O.c.attempts + 1))  # fmt: skip
        return rows

    def recover(self) -> int:
        """Rows left `sending` past the lease by a dead worker: back to pending when resending is
        safe (idempotent adapter), else `unknown` — never a second, blind send."""
        cutoff = self.clock.now() - self.lease
        with self.engine.begin() as conn:
            stale = conn.execute(
                select(_O.c.id, _O.c.workspace_id, _O.c.config_id, _O.c.channel)
                .where(_O.c.status == "sending", _O.c.claimed_at < cutoff).limit(10_000)
            ).all()  # fmt: skip
            if not stale:
                return 0
            safe: list[int] = []
            unsafe: list[int] = []
            for r in stale:
                (safe if self._idempotent(r.workspace_id, r.config_id, r.channel) else unsafe).append(r.id)
            if safe:
                conn.execute(update(_O).where(among(conn, _O.c.id, safe), _O.c.status == "sending")
                             .values(status="pending", next_at=self.clock.now()))  # fmt: skip
            if unsafe:
                conn.execute(update(_O).where(among(conn, _O.c.id, unsafe), _O.c.status == "sending")
                             .values(status="unknown", error_code="interrupted",
                                     error="发送中断，结果未知，不再重发 / interrupted mid-send; not resent"))  # fmt: skip
        log.warning("outbox: recovered %d interrupted sends (%d resendable)", len(stale), len(safe))
        return len(stale)

    def _idempotent(self, ws: str, config_id: str, channel: str) -> bool:
        try:
            return bool(self._adapter(ws, config_id, channel).idempotent)
        except Exception:
            return False

    def _adapter(self, ws: str, config_id: str, channel: str) -> ChannelAdapter:
        if config_id.startswith("url:"):
            via, _, url = config_id[4:].partition("\x00")
            return self.channels.webhook_for(ws, url, via)
        if channel == "internal":
            if self.effects is None:
                raise ChannelConfigError("internal effects need the warehouse side")
            return self.effects
        return self.channels.adapter(ws, config_id, channel)

    # -- sending -------------------------------------------------------------------------------

    def _send(
        self, ws: str, config_id: str, channel: str, rows: list[Any]
    ) -> list[tuple[Any, SendResult, bool]]:
        try:
            adapter = self._adapter(ws, config_id, channel)
        except ChannelConfigError as exc:
            return [
                (r, SendResult(r.key, "failed", error_code="no_channel", error=str(exc)), False) for r in rows
            ]
        messages = [Message(key=r.key, workspace_id=r.workspace_id, profile_id=r.profile_id, channel=r.channel,
                            to=r.address, content=r.content, purpose=r.purpose, meta=r.meta or {})
                    for r in rows]  # fmt: skip
        try:
            answers = {res.key: res for res in adapter.send(messages)}
        except Exception as exc:  # an adapter bug: nobody knows what went out
            log.exception("channel adapter %s failed", getattr(adapter, "type", adapter))
            answers = {m.key: SendResult(m.key, "unknown", error_code="adapter_error", error=repr(exc)[:500])
                       for m in messages}  # fmt: skip
        idempotent = bool(adapter.idempotent)
        return [(r, answers.get(r.key) or SendResult(r.key, "unknown", error_code="no_answer",
                                                     error="adapter gave no result"), idempotent)
                for r in rows]  # fmt: skip

    def _record(self, results: list[tuple[Any, SendResult, bool]], report: DispatchReport) -> None:
        now = self.clock.now()
        sent_plain: list[int] = []
        singles: list[tuple[Any, ...]] = []
        sent_rows: list[dict[str, Any]] = []
        for row, res, idempotent in results:
            attempt = row.attempts + 1  # rows were read before the claim counted this attempt
            outcome = res.outcome
            resend = outcome == "unknown" and idempotent
            if resend:
                outcome = "retry"
            if outcome == "retry" and attempt >= MAX_ATTEMPTS:
                outcome, res = "failed", SendResult(res.key, "failed", res.provider_id, res.error_code or "gave_up",
                                                    f"重试 {MAX_ATTEMPTS} 次后放弃 / gave up after {MAX_ATTEMPTS} attempts: "
                                                    f"{res.error or ''}")  # fmt: skip
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
            if outcome == "sent" and self.on_sent is not None:
                sent_rows.append({"key": row.key, "workspace_id": row.workspace_id, "profile_id": row.profile_id,
                                  "channel": row.channel, "journey_id": row.journey_id, "node": row.node,
                                  "provider_id": res.provider_id, "meta": row.meta, "content": row.content,
                                  "address": row.address})  # fmt: skip
            if outcome == "sent" and res.provider_id is None and res.error_code is None:
                sent_plain.append(row.id)
                continue
            next_at = row.next_at
            if outcome == "retry":
                wait = res.retry_after or BACKOFF[min(attempt - 1, len(BACKOFF) - 1)]
                if resend:
                    # A provider drops repeats of a key only for a while (WeChat: 10 minutes), so
                    # an uncertain send is retried soon or not at all.
                    wait = min(wait, 60)
                next_at = now + timedelta(seconds=wait)
            singles.append(("pending" if outcome == "retry" else outcome, res.provider_id, res.error_code,
                            res.error, now if outcome == "sent" else None, next_at, row.id))  # fmt: skip
        with self.engine.begin() as conn:
            for i in range(0, len(sent_plain), 5000):
                conn.execute(update(_O).where(among(conn, _O.c.id, sent_plain[i : i + 5000]), _O.c.status == "sending")
                             .values(status="sent", sent_at=now))  # fmt: skip
            update_rows(conn, _O, _RECORDED, singles, guard="status = 'sending'")
        if sent_rows and self.on_sent is not None:
            try:
                self.on_sent(sent_rows)
            except Exception:
                log.exception("outbox on_sent hook failed")
