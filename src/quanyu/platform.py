"""The platform facade: wires the stores of one deployment together."""

from __future__ import annotations

import threading
from datetime import timedelta

from quanyu.collect.auth import WriteKeys
from quanyu.collect.backlog import BacklogGauge
from quanyu.collect.committer import GroupCommitter
from quanyu.collect.intake import Intake
from quanyu.collect.quarantine import Quarantine
from quanyu.collect.queue import IngestQueue
from quanyu.collect.sources import Sources
from quanyu.connectors.qr_codes import QrCodes
from quanyu.identity.declared_types import DeclaredTypes
from quanyu.journeys.clock import OffsetClock
from quanyu.journeys.service import Journeys
from quanyu.org.vault import Vault
from quanyu.org.workspaces import Workspaces
from quanyu.pipeline.worker import Pipeline, PipelineConfig
from quanyu.segments.realtime import RealtimeSegments
from quanyu.segments.saved import SavedSegments
from quanyu.settings import Settings
from quanyu.store import make_engine, upgrade
from quanyu.warehouse import Warehouse, open_warehouse


class Platform:
    """Everything one process needs; the warehouse opens on first use (DuckDB has one writer)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.resolved_database_url)
        upgrade(self.engine)
        self.vault = Vault.for_data_dir(settings.data_dir, settings.secret_key)
        self.workspaces = Workspaces(self.engine)
        self.sources = Sources(self.engine, self.vault)
        self.write_keys = WriteKeys(self.sources)
        self.queue = IngestQueue(self.engine)
        self.quarantine = Quarantine(self.engine)
        self.identifier_types = DeclaredTypes(self.engine)
        self.segments = SavedSegments(self.engine, self.identifier_types.types_for)
        self.realtime = RealtimeSegments(self.segments, settings.segment_realtime_timeout_seconds)
        self.backlog = BacklogGauge(
            self.queue, settings.max_backlog_events, settings.max_workspace_backlog_events
        )
        self.committer = GroupCommitter(self.engine, self.queue, self.quarantine, settings.max_inflight_bytes)
        self.committer.on_commit.append(self.backlog.on_commit)
        self.intake = Intake(self.committer, self.backlog, self.quarantine)
        self.qr_codes = QrCodes(self.engine, self.sources)
        clock = (
            OffsetClock(timedelta(seconds=settings.journey_clock_offset_seconds))
            if settings.journey_clock_offset_seconds
            else None
        )
        self.journeys = Journeys(
            self.engine, self.vault, self.segments, self.queue, self.sources, data_dir=settings.data_dir,
            smtp_url=settings.smtp_url, public_url=settings.public_url or f"http://{settings.host}:{settings.port}",
            allow_networks=tuple(settings.webhook_allow_networks), clock=clock,
            lease=timedelta(seconds=settings.outbox_lease_seconds),
        )  # fmt: skip
        self.journeys.saved.condition_check = lambda ws, d: self.segments.validate(
            ws, d, warehouse=self.warehouse
        )
        self._warehouse: Warehouse | None = None
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()

    @property
    def warehouse(self) -> Warehouse:
        with self._lock:
            if self._warehouse is None:
                self._warehouse = open_warehouse(self.settings.resolved_warehouse_url)
            return self._warehouse

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            s = self.settings
            config = PipelineConfig(
                batch_events=s.pipeline_batch_events,
                batch_bytes=s.pipeline_batch_bytes,
                dedupe_window=timedelta(days=s.dedupe_window_days),
                future_after=timedelta(hours=s.future_timestamp_hours),
                past_before=timedelta(days=s.past_timestamp_days),
            )
            pipeline = Pipeline(self.queue, self.warehouse, self.sources, config,
                                types_for=self.identifier_types.types_for)  # fmt: skip
            # As soon as events are stored, people the graph knows enter realtime segments; after
            # each drain's profile refresh, everyone touched (new people too) enters and exits.
            pipeline.on_stored.append(lambda ids: self.realtime.on_events(pipeline.warehouse, ids))
            pipeline.on_profiles.append(
                lambda ws, ids: self.realtime.on_profiles(pipeline.warehouse, ws, ids)
            )
            # Once the identity graph has taken new events in, journeys hear about them at once.
            pipeline.on_drained.append(lambda: self.journeys.intake_once(pipeline.warehouse))
            self._pipeline = pipeline
        return self._pipeline

    def close(self) -> None:
        self.committer.stop()
        self.journeys.channels.close()
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None
        self.engine.dispose()
