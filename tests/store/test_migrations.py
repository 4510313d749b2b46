"""Alembic migrations of the operational store, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text
from storekit import finish, release, spawn_python, wait_ready

from quanyu.org.workspaces import Workspaces
from quanyu.store import make_engine, upgrade
from quanyu.store.migrate import alembic_config
from quanyu.store.models import Base, Workspace

TABLES = {"workspaces", "api_tokens", "sources", "ingest_batches", "quarantine", "pipeline_counters"}


def head_revision(engine: Engine) -> str:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_differences(engine: Engine) -> list[Any]:
    """What autogenerate would change to make the database match the models (empty = identical)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(ctx, Base.metadata))


def test_there_is_exactly_one_head(engine: Engine) -> None:
    script = ScriptDirectory.from_config(alembic_config(engine))
    assert len(script.get_heads()) == 1


def test_upgrade_is_idempotent_and_lands_on_head(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision(engine)
        Workspaces(engine).create("保留 Kept")
        upgrade(engine)  # every start calls it again
        upgrade(engine)
        assert current_revision(engine) == head_revision(engine)
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:
            assert conn.execute(select(Workspace.name)).scalars().all() == ["保留 Kept"]
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models_exactly(engine: Engine) -> None:
    assert schema_differences(engine) == []


def test_migrated_schema_has_the_declared_indexes_and_uniques(engine: Engine) -> None:
    insp = inspect(engine)
    indexes = {t: {i["name"] for i in insp.get_indexes(t)} for t in TABLES}
    assert "ix_ingest_batches_workspace" in indexes["ingest_batches"]
    assert "ix_quarantine_workspace_id" in indexes["quarantine"]
    assert "ix_sources_workspace_id" in indexes["sources"]
    assert "ix_api_tokens_workspace_id" in indexes["api_tokens"]

    def unique_columns(table: str) -> set[tuple[str, ...]]:
        found = {tuple(map(str, u["column_names"])) for u in insp.get_unique_constraints(table)}
        found |= {tuple(map(str, i["column_names"])) for i in insp.get_indexes(table) if i["unique"]}
        return found

    assert ("token_hash",) in unique_columns("api_tokens")
    assert ("write_key_hash",) in unique_columns("sources")
    fks = {(fk["referred_table"], fk["options"].get("ondelete")) for fk in insp.get_foreign_keys("sources")}
    assert ("workspaces", "CASCADE") in fks


def test_downgrade_to_base_then_upgrade_again(engine: Engine) -> None:
    Workspaces(engine).create("gone")
    command.downgrade(alembic_config(engine), "base")
    assert current_revision(engine) is None
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    assert schema_differences(engine) == []
    assert Workspaces(engine).all() == []
    Workspaces(engine).create("again")
    assert [w.name for w in Workspaces(engine).all()] == ["again"]


UPGRADE_CHILD = """
import sys
from quanyu.store import make_engine, upgrade
engine = make_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
upgrade(engine)
print("upgraded", flush=True)
"""


def _lock_waiters(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def test_two_processes_upgrading_a_fresh_store_at_once_both_start(
    database_url: str, backend: str, request: pytest.FixtureRequest
) -> None:
    """Two server processes starting together on an empty database must both come up.

    The race window (both see "no alembic_version" before either commits) is held open
    deterministically by a gate transaction: on PostgreSQL an uncommitted CREATE TABLE
    alembic_version, on SQLite a held write lock. Then the gate is rolled back.
    """
    gate_engine = make_engine(database_url)
    children = [spawn_python(UPGRADE_CHILD, database_url) for _ in range(2)]
    try:
        for child in children:
            wait_ready(child)
        with gate_engine.connect() as gate:
            trans = gate.begin()  # SQLite: BEGIN IMMEDIATE, the write lock
            if backend == "postgresql":
                gate.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
            for child in children:
                release(child)
            deadline = time.monotonic() + 20
            if backend == "postgresql":
                while _lock_waiters(gate_engine) < 2 and time.monotonic() < deadline:
                    time.sleep(0.05)
            else:
                time.sleep(0.5)
            trans.rollback()
        results = [finish(child) for child in children]
        failures = [[ln for ln in err.splitlines() if "Error" in ln][-1:] for code, _, err in results if code]
        assert failures == []
        assert current_revision(gate_engine) == head_revision(gate_engine)
        assert schema_differences(gate_engine) == []
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()
        gate_engine.dispose()
