"""Fixtures for the operational-store contract tests (each runs on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from storekit import backend_of

from quanyu.store import make_engine, upgrade


@pytest.fixture
def backend(database_url: str) -> str:
    """The backend name: "sqlite" or "postgresql"."""
    return backend_of(database_url)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated store on the backend under test."""
    eng = make_engine(database_url)
    upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()
