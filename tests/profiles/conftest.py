"""Fixtures for the profile tests: a brand on the real pipeline, a ledger on a bare warehouse."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from profilekit import Brand, Ledger

from quanyu.platform import Platform
from quanyu.warehouse.duckdb import DuckDBWarehouse
from testkit import Tenant


@pytest.fixture
def brand(platform: Platform, tenant: Tenant) -> Brand:
    return Brand(platform, tenant.workspace_id)


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    warehouse = DuckDBWarehouse(":memory:")
    yield Ledger(warehouse)
    warehouse.close()
