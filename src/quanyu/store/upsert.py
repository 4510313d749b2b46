"""Dialect-aware INSERT … ON CONFLICT, the one construct SQLite and PostgreSQL spell differently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def increment(
    conn: Connection, table: Table, key: dict[str, Any], deltas: dict[str, int], **sets: Any
) -> None:
    """Add `deltas` to the row identified by `key`, creating it first if needed."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values(**key, **deltas, **sets)
    updates: dict[str, Any] = {name: table.c[name] + stmt.excluded[name] for name in deltas}
    updates.update({name: stmt.excluded[name] for name in sets})
    conn.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=updates))
