"""The server-mode store for the ads tests: a platform on a fresh PostgreSQL database, its API
client and a tenant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from quanyu.api import create_app
from quanyu.platform import Platform
from testkit import Tenant, make_settings, new_tenant


@pytest.fixture
def pg_client(tmp_path: Path, pg_database: str) -> Iterator[tuple[TestClient, Platform, Tenant]]:
    settings = make_settings(tmp_path / "pg", database_url=pg_database, pipeline_enabled=False)
    platform = Platform(settings)
    try:
        tenant = new_tenant(platform)
        with TestClient(create_app(settings, platform)) as client:
            yield client, platform, tenant
    finally:
        platform.close()
