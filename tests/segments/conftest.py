"""Fixtures for the segment tests: a platform with one workspace (and its brand's customers)."""

from __future__ import annotations

import pytest

from profiles.profilekit import Ledger
from quanyu.platform import Platform
from segments.segmentkit import seed
from testkit import Tenant


@pytest.fixture
def shop(platform: Platform, tenant: Tenant) -> Ledger:
    return seed(platform, tenant.workspace_id)
