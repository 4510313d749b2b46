"""Alembic environment: the engine is handed in by `quanyu.store.migrate`."""

from __future__ import annotations

from alembic import context

from quanyu.store.models import Base

# Any constant works; it only has to be the same in every process migrating this database.
MIGRATION_LOCK_KEY = 0x5175_616E_7975  # "Quanyu"

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        # Several servers or CLI processes may start at once; without a lock their first
        # upgrades race on CREATE TABLE. The lock is held until this transaction commits, and
        # Alembic reads the current revision only after it, so the later process sees head.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
