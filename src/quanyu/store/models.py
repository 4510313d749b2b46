"""Tables of the operational store. Alembic migrations under `migrations/` create exactly these."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from quanyu.store.times import UTCDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY, PostgreSQL wants BIGINT for a long-lived queue.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    # Every model here maps one plain table; say so, so Core inserts on it type-check.
    __table__: ClassVar[Table]


class Workspace(Base):
    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """Management tokens. Only a SHA-256 of the token is kept: tokens are 240-bit random strings."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Source(Base):
    __tablename__ = "sources"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    domain: Mapped[str] = mapped_column(String(16))
    presence: Mapped[str] = mapped_column(String(16))
    write_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    write_key_hint: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class IngestBatch(Base):
    """The durable ingestion queue: one row per accepted request, payload = JSON array of messages.

    A row exists from the moment the collector acknowledged it until the warehouse has it.
    """

    __tablename__ = "ingest_batches"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event_count: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    # Ids must never be reused once a batch is deleted: the warehouse remembers applied ids.
    __table_args__ = (Index("ix_ingest_batches_workspace", "workspace_id"), {"sqlite_autoincrement": True})


class QuarantinedEvent(Base):
    """Items that failed validation: kept with their reason so they can be fixed and replayed."""

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(40), index=True)
    source_id: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="quarantined")
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PipelineCounter(Base):
    """Per-workspace totals of the processing pipeline, for `/api/v1/pipeline/status`."""

    __tablename__ = "pipeline_counters"
    workspace_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    processed: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    batches: Mapped[int] = mapped_column(BigInteger, default=0)
    last_processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DeclaredIdentifierType(Base):
    """A workspace's own identifier type (a loyalty app id, a franchise CRM number)."""

    __tablename__ = "identifier_types"
    workspace_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    priority: Mapped[int] = mapped_column(Integer)
    max_per_profile: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))
    blocklist: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SavedSegment(Base):
    """A saved segment: its name and current version. Definitions live in `segment_versions`,
    one immutable row per change; deleting only marks the row (the history stays)."""

    __tablename__ = "segments"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    current_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(200))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The last membership refresh (the log of entries and exits is in the warehouse).
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    refreshed_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    member_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    refresh_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A name is unique among the workspace's live segments; a deleted one frees its name.
    __table_args__ = (
        Index(
            "ux_segments_workspace_name",
            "workspace_id",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )


class SegmentVersion(Base):
    """One immutable version of a segment: the definition (and name) as saved, by whom, when."""

    __tablename__ = "segment_versions"
    segment_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class EventGroup(Base):
    """A named list of events a workspace declares ("touch" = what counts as reaching someone)."""

    __tablename__ = "event_groups"
    workspace_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    events: Mapped[list] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(200))
