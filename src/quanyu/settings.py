"""The one validated settings class. Every value can come from a `QUANYU_*` environment variable."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration for the server, the pipeline and the CLI."""

    model_config = SettingsConfigDict(env_prefix="QUANYU_", extra="ignore")

    data_dir: Path = Field(default=Path(".quanyu"), description="Where the embedded stores live.")
    database_url: str | None = Field(
        default=None, description="Operational store (SQLAlchemy URL). Default: SQLite in data_dir."
    )
    warehouse_url: str | None = Field(
        default=None, description="Warehouse URL. Default: duckdb:///<data_dir>/warehouse.duckdb."
    )
    api_url: str | None = Field(default=None, description="A running server, for CLI commands.")
    api_token: str | None = Field(default=None, description="Management token for api_url.")
    secret_key: str | None = Field(
        default=None, description="Key that encrypts connector secrets. Default: <data_dir>/secret.key."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # Back-pressure: beyond these many unprocessed events the collector answers 429.
    max_backlog_events: int = Field(default=5_000_000, ge=1)
    max_workspace_backlog_events: int = Field(default=2_000_000, ge=1)
    # Bytes of accepted-but-not-yet-committed request bodies held in memory.
    max_inflight_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)

    pipeline_enabled: bool = True
    # Micro-batches of at least two DuckDB row groups (2 x 122,880 rows) let the engine write
    # compressed row groups while it inserts; the byte bound caps memory for large events.
    pipeline_batch_events: int = Field(default=250_000, ge=1)
    pipeline_batch_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    pipeline_interval_seconds: float = Field(default=0.5, gt=0)
    dedupe_window_days: int = Field(default=7, ge=7, description="messageId dedupe horizon (>= 7 days).")
    future_timestamp_hours: int = Field(default=24, ge=1)
    past_timestamp_days: int = Field(default=5 * 365, ge=1)

    # Saved segments: how often `serve` refreshes every segment's membership (0 = never on a
    # schedule, only on demand), and how long one compiled segment query may run; a realtime
    # segment's query in the pipeline gets less (it holds up the next drain).
    segment_refresh_seconds: float = Field(default=300, ge=0)
    segment_timeout_seconds: float = Field(default=30, gt=0)
    segment_realtime_timeout_seconds: float = Field(default=5, gt=0)

    # Journeys and channels. `smtp_url` is the default e-mail channel (smtp:// or smtps://, see
    # docs/channels.md); `public_url` is where people reach this server (unsubscribe links,
    # open/click tracking); webhooks may only reach private networks listed here (CIDRs).
    journeys_enabled: bool = True
    journey_interval_seconds: float = Field(default=1.0, gt=0)
    outbox_lease_seconds: float = Field(default=300, gt=0)
    smtp_url: str | None = None
    public_url: str | None = None
    webhook_allow_networks: list[str] = Field(default_factory=list)
    # Moves the journeys' clock forward (the demo runs a month of journeys in a minute).
    journey_clock_offset_seconds: float = 0

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'quanyu.db').resolve()}"

    @property
    def resolved_warehouse_url(self) -> str:
        return self.warehouse_url or f"duckdb:///{(self.data_dir / 'warehouse.duckdb').resolve()}"


def load_settings(**values: object) -> Settings:
    """Settings from the environment plus `values`; bad values raise one readable error."""
    from quanyu.errors import InvalidInput

    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"QUANYU_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise InvalidInput(f"设置无效 / invalid settings: {problems}", code="invalid_settings") from None
