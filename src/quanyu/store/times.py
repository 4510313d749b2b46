"""Timestamps in the operational store: always written and read back as UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def as_utc(value: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is taken to be UTC already (that is how we write)."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware column that stores UTC on every backend.

    SQLite keeps no offset, so a +08:00 value written as-is would come back eight hours off;
    PostgreSQL returns timestamptz in the session time zone. Normalising on the way in and
    out makes both backends hand the same instants back in the same zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, datetime):
            value = as_utc(value)
            if dialect.name == "sqlite":
                return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return as_utc(value) if isinstance(value, datetime) else value
