"""Tables of the operational store. Alembic migrations under `migrations/` create exactly these."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
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


# ---------------------------------------------------------------------------------------------
# Journeys and channels (migration 0004)


class JourneyRow(Base):
    """A journey: its name, state and versions. `live_version` is what new enrollments get."""

    __tablename__ = "journeys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # draft | live | paused | archived
    current_version: Mapped[int] = mapped_column(Integer)
    live_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Date and schedule triggers: the last occurrence already fired (so a restart never re-fires).
    last_fired: Mapped[str | None] = mapped_column(String(64), nullable=True)


class JourneyVersion(Base):
    __tablename__ = "journey_versions"
    journey_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("journeys.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class Enrollment(Base):
    """One person's run through one journey version: where they are and when they are due.

    `status` active → done. At a wait, `waiting` is set and `due_at` is when it ends (or the
    timeout of a wait for an event); `resume` says why a waiting enrollment became due early
    ("event"). `exit_pending` marks an exit criterion met "at step end".
    """

    __tablename__ = "journey_enrollments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(40))
    journey_id: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    profile_id: Mapped[str] = mapped_column(String(64))
    entry_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(8))  # active | done
    node: Mapped[str] = mapped_column(String(64))
    waiting: Mapped[bool] = mapped_column(Boolean, default=False)
    resume: Mapped[str | None] = mapped_column(String(16), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    arm: Mapped[str | None] = mapped_column(String(40), nullable=True)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the trigger happened (the event's time, at most entered_at): awaited events, goals
    # and exit criteria count from here, so an event stored late or in the same batch counts.
    triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    exit_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    exit_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    goal_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    context: Mapped[dict] = mapped_column(JSON, default=dict)  # trigger event, person snapshot
    __table_args__ = (
        Index("ux_enrollments_entry", "journey_id", "entry_key", unique=True),
        # Person first: "this person's enrollments" (re-entry, events arriving) is a lookup by
        # person, and the journey column alone matches every row of a big journey.
        Index("ix_enrollments_person", "profile_id", "journey_id"),
        Index(
            "ix_enrollments_due",
            "due_at",
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        {"sqlite_autoincrement": True},
    )


class JourneyStep(Base):
    """The append-only step log: every node an enrollment passed and what happened there.
    Journey statistics are counted from here."""

    __tablename__ = "journey_steps"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(40))
    journey_id: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    enrollment_id: Mapped[int] = mapped_column(BigInteger)
    node: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    arm: Mapped[str | None] = mapped_column(String(40), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (
        Index("ix_journey_steps_journey", "journey_id", "node", "kind"),
        {"sqlite_autoincrement": True},
    )


class OutboxMessage(Base):
    """A send (or effect) waiting for, going through, or past its channel adapter.

    Written in the same transaction as the step that decided it; the dispatcher marks it
    `sending` (committed) before the provider call, then `sent` / `failed` / `unknown` after.
    A row left `sending` by a crash is never sent again unless its adapter is idempotent.
    """

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    workspace_id: Mapped[str] = mapped_column(String(40))
    journey_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    enrollment_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    node: Mapped[str | None] = mapped_column(String(64), nullable=True)
    profile_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    config_id: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(2000))
    purpose: Mapped[str] = mapped_column(String(16))
    content: Mapped[dict] = mapped_column(JSON)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12))  # pending | sending | sent | failed | unknown | cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    provider_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    complained_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    __table_args__ = (
        Index(
            "ix_outbox_due",
            "next_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_outbox_sending",
            "claimed_at",
            sqlite_where=text("status = 'sending'"),
            postgresql_where=text("status = 'sending'"),
        ),
        Index("ix_outbox_provider", "provider_id"),
        Index("ix_outbox_journey", "journey_id", "node"),
        {"sqlite_autoincrement": True},
    )


class ConsentRecord(Base):
    """The append-only consent log: each grant or withdrawal with its source and time.
    `subject` is a profile id (`subject_type` profile) or an address (phone, e-mail, openid)."""

    __tablename__ = "consent_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(40))
    subject_type: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))  # a channel or "*"
    purpose: Mapped[str] = mapped_column(String(32))  # marketing, or "*"
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(
        String(64)
    )  # event, segment_consent, sms_reply, api, form, unsubscribe_link
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    __table_args__ = (
        Index("ix_consent_log_subject", "workspace_id", "subject"),
        {"sqlite_autoincrement": True},
    )


class ConsentState(Base):
    """The latest consent per (subject, channel, purpose): what sends are checked against."""

    __tablename__ = "consent_state"
    workspace_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Suppression(Base):
    """An address (or a whole profile, channel "*") nothing may be sent to."""

    __tablename__ = "suppressions"
    workspace_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(200), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class FrequencyCount(Base):
    """Marketing sends per person, channel and calendar day in the person's time zone."""

    __tablename__ = "frequency_counts"
    workspace_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class MessagingPolicy(Base):
    """A workspace's send rules: quiet hours, daily caps, opt-in channels, holdout, kill switch."""

    __tablename__ = "messaging_policies"
    workspace_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    quiet_hours: Mapped[str] = mapped_column(String(16))  # "21:00-09:00", "" for none
    caps: Mapped[dict] = mapped_column(JSON)  # channel -> sends per local day
    opt_in_channels: Mapped[list] = mapped_column(JSON)
    holdout_percent: Mapped[float] = mapped_column(Float)
    kill_switch: Mapped[bool] = mapped_column(Boolean, default=False)
    kill_switch_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    kill_switch_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelConfig(Base):
    """A configured channel adapter (an SMTP server, an SMS account, an official account)."""

    __tablename__ = "channel_configs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(32))
    settings: Mapped[dict] = mapped_column(JSON)
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JourneyCursor(Base):
    """How far the journey intake has read a stream (segment signals per workspace)."""

    __tablename__ = "journey_cursors"
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)


class GuideTask(Base):
    """A task a journey created for a sales rep or store guide (follow up, call, invite)."""

    __tablename__ = "guide_tasks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    workspace_id: Mapped[str] = mapped_column(String(40), index=True)
    profile_id: Mapped[str] = mapped_column(String(64))
    assignee: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text)
    journey_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    __table_args__ = ({"sqlite_autoincrement": True},)


# ---------------------------------------------------------------------------------------------
# Connectors (migration 0005)


class QrScene(Base):
    """A parametric QR code (带参二维码) of an official account: its scene string and what it
    stands for — which campaign, store, guide and channel a scan or follow through it came from."""

    __tablename__ = "qr_scenes"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    source_id: Mapped[str] = mapped_column(String(40))
    scene: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # temporary | permanent
    ticket: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    campaign: Mapped[str | None] = mapped_column(String(200), nullable=True)
    store_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    guide_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    __table_args__ = (Index("ux_qr_scenes_scene", "workspace_id", "source_id", "scene", unique=True),)


class AdLink(Base):
    """A redirect link (`/a/{id}`) placed in an ad: the campaign, channel and UTM values every
    click through it carries, and the one landing page it may lead to (no open redirect)."""

    __tablename__ = "ad_links"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # the short slug in the URL
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    source_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    target_url: Mapped[str] = mapped_column(Text)
    campaign: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(32))
    utm_source: Mapped[str] = mapped_column(String(200))
    utm_medium: Mapped[str] = mapped_column(String(200))
    utm_campaign: Mapped[str] = mapped_column(String(200))
    utm_term: Mapped[str | None] = mapped_column(String(200), nullable=True)
    utm_content: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    __table_args__ = (Index("ix_ad_links_workspace", "workspace_id", "created_at"),)


class AdCost(Base):
    """What one campaign cost on one channel on one day (imported from the ad platform's
    report). Spend is kept in millionths of the currency unit (`spend_micros`, as Google Ads
    reports cost), so sums and the "unchanged" check of a re-import are exact on every store."""

    __tablename__ = "ad_costs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    campaign: Mapped[str] = mapped_column(String(200))
    day: Mapped[date] = mapped_column(Date)  # the ad account's calendar day
    spend_micros: Mapped[int] = mapped_column(BigInteger)
    impressions: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    clicks: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (Index("ux_ad_costs_key", "workspace_id", "channel", "campaign", "day", unique=True),)
