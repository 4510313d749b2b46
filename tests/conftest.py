"""Registers the shared fixtures; helpers live in `testkit` so test modules can import them
without clashing with the per-directory conftest files."""

from testkit import (  # noqa: F401
    client,
    database_url,
    live_server,
    pg_database,
    platform,
    postgres_ok,
    settings,
    tenant,
)
