"""Journeys wired together: one object per deployment, and the worker loop `serve` runs.

A round of work (`run_once`, and each turn of `run_forever`): the intake reads new events,
segment signals and the calendar; the engine runs every due step; the dispatcher sends what
the steps queued. `quanyu journeys run --once` repeats rounds until nothing is due.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine

from quanyu.channels.configs import ChannelConfigs
from quanyu.channels.tracking import sign, track_html, unsubscribe_url
from quanyu.collect.queue import IngestQueue
from quanyu.collect.sources import Sources
from quanyu.journeys.clock import Clock, SystemClock
from quanyu.journeys.effects import EffectsAdapter, EventWriter, Receipts
from quanyu.journeys.engine import JourneyEngine, StepReport
from quanyu.journeys.facts import TYPED, Fact
from quanyu.journeys.intake import IntakeReport, JourneyIntake
from quanyu.journeys.outbox import Dispatcher, DispatchReport
from quanyu.journeys.people import WarehousePeople
from quanyu.journeys.policy import Policies
from quanyu.journeys.saved import SavedJourneys
from quanyu.org.vault import Vault
from quanyu.segments.definition import Definition
from quanyu.segments.saved import SavedSegments
from quanyu.warehouse.base import Warehouse

log = logging.getLogger(__name__)


class WarehouseConditions:
    """Condition steps evaluated with the segment compiler, for a batch of people at once."""

    def __init__(self, warehouse: Warehouse, segments: SavedSegments) -> None:
        self.warehouse = warehouse
        self.segments = segments

    def members(self, workspace_id: str, definition: Definition, profile_ids: Sequence[str],
                now: datetime) -> set[str]:  # fmt: skip
        from quanyu.segments.compiler import predicate

        ctx = self.segments.context(self.warehouse, workspace_id, now)
        p = ctx.profiles
        expr = p.filter(p.workspace_id == workspace_id, p.profile_id.isin(list(profile_ids)),
                        predicate(definition, ctx, p)).select("profile_id")  # fmt: skip
        return set(self.warehouse.execute(expr).column(0).to_pylist())


class WarehouseHistory:
    """What people did since a moment, from the person events the identity graph keeps."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def since(self, workspace_id: str, since: dict[str, datetime], events: set[str]) -> list[Fact]:
        if not since or not events:
            return []
        pe = self.warehouse.table("person_events")
        expr = pe.filter(pe.workspace_id == workspace_id, pe.profile_id.isin(sorted(since)),
                         pe.event.isin(sorted(events)), pe.timestamp >= min(since.values()))  # fmt: skip
        expr = expr.select("message_id", "profile_id", "event", "timestamp", *TYPED,
                           properties=pe.properties.cast("string"))  # fmt: skip
        facts = []
        for row in self.warehouse.execute(expr).to_pylist():
            props = orjson.loads(row["properties"]) if row["properties"] else {}
            facts.append(Fact(workspace_id, row["message_id"], row["profile_id"], row["event"] or "",
                              row["timestamp"], props if isinstance(props, dict) else {},
                              {c: row[c] for c in TYPED}))  # fmt: skip
        return facts


class Journeys:
    def __init__(self, engine: Engine, vault: Vault, segments: SavedSegments, queue: IngestQueue, sources: Sources,
                 *, data_dir: Path, smtp_url: str | None = None, public_url: str | None = None,
                 allow_networks: tuple[str, ...] = (), clock: Clock | None = None,
                 lease: timedelta = timedelta(minutes=5)) -> None:  # fmt: skip
        self.engine = engine
        self.segments = segments
        self.saved = SavedJourneys(engine, allow_networks)
        self.policies = Policies(engine)
        self.channels = ChannelConfigs(engine, vault, smtp_url=smtp_url, sink_dir=data_dir / "sink",
                                       allow_networks=allow_networks)  # fmt: skip
        self.events = EventWriter(queue, sources)
        self.receipts = Receipts(engine, self.events)
        self.clock: Clock = clock or SystemClock()
        self.public_url = (public_url or "").rstrip("/")
        self.lease = lease
        # Links in messages (unsubscribe, open, click) are signed with a key derived from the
        # vault's, so they survive restarts and cannot be forged.
        self.link_secret = vault.derive(b"quanyu-links")
        self.saved.now = lambda: self.clock.now()
        self._round = threading.Lock()
        self._intake_guard = threading.Lock()  # the pipeline thread and the worker both read

    # -- the parts, over one warehouse -----------------------------------------------------------

    def runner(self, warehouse: Warehouse | None) -> JourneyEngine:
        return JourneyEngine(
            self.engine, self.saved, self.policies, clock=self.clock,
            people=WarehousePeople(warehouse) if warehouse is not None else None,
            conditions=WarehouseConditions(warehouse, self.segments) if warehouse is not None else None,
            history=WarehouseHistory(warehouse) if warehouse is not None else None,
            scope_of=self.channels.app_id,
            links=self._links if self.public_url else None,
            track=(lambda html, fields: track_html(html, self.public_url, self.link_secret, fields))
            if self.public_url else None,
        )  # fmt: skip

    def dispatcher(self, warehouse: Warehouse | None) -> Dispatcher:
        effects = EffectsAdapter(warehouse, self.events) if warehouse is not None else None
        return Dispatcher(self.engine, self.policies, self.channels, clock=self.clock, effects=effects,
                          lease=self.lease)  # fmt: skip

    def intake(self, warehouse: Warehouse) -> JourneyIntake:
        return JourneyIntake(self.engine, warehouse, self.saved, self.runner(warehouse), self.policies,
                             WarehousePeople(warehouse))  # fmt: skip

    def intake_once(self, warehouse: Warehouse) -> IntakeReport:
        with self._intake_guard:
            return self.intake(warehouse).run()

    def _links(self, fields: dict[str, Any]) -> dict[str, str]:
        return {"unsubscribe_url": unsubscribe_url(self.public_url, self.link_secret, fields),
                "open_token": sign(self.link_secret, {**fields, "t": "o"})}  # fmt: skip

    # -- running ---------------------------------------------------------------------------------

    def run_once(
        self, warehouse: Warehouse | None, *, max_rounds: int = 10_000, batch: int = 2000
    ) -> dict[str, Any]:
        """Rounds of intake → steps → sends until nothing is due (or `max_rounds`)."""
        with self._round:
            intake = self.intake_once(warehouse) if warehouse is not None else IntakeReport()
            steps, sends = StepReport(), DispatchReport()
            runner, dispatcher = self.runner(warehouse), self.dispatcher(warehouse)
            for _ in range(max_rounds):
                step = runner.run_due(batch)
                sent = dispatcher.dispatch(batch)
                steps.add(step)
                sends.add(sent)
                if not step.claimed and not sent.claimed:
                    break
            return {"intake": intake.public(), "steps": steps.public(), "sends": sends.public()}

    def run_forever(self, stop: threading.Event, warehouse: Any, interval: float = 1.0) -> None:
        """The worker loop inside `serve` (warehouse: a callable returning it)."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                done = self.run_once(warehouse(), max_rounds=50)
                busy = done["steps"]["claimed"] or done["sends"]["claimed"]
            except Exception:
                log.exception("journey round failed; retrying")
                busy = False
            if not busy:
                stop.wait(max(0.0, interval - (time.monotonic() - started)))
