"""Timestamps read back from the operational store."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime) -> datetime:
    """SQLite hands timezone-aware columns back naive; everything was written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
