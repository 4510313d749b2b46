"""Fixtures for the engine tests: a rig per operational-store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from journeys.journeykit import Rig, make_rig


@pytest.fixture
def rig(database_url: str, tmp_path: Path) -> Iterator[Rig]:
    r = make_rig(database_url, tmp_path)
    yield r
    r.channels.close()
    r.engine.dispose()


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Rig]:
    """SQLite only (for tests about the language, not the store)."""
    r = make_rig(f"sqlite:///{tmp_path / 'ops.db'}", tmp_path)
    yield r
    r.channels.close()
    r.engine.dispose()
