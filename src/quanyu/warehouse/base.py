"""The warehouse protocol that domain code depends on, and the URL-based opener."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import ibis
import pyarrow as pa

from quanyu.errors import InvalidInput


class Warehouse(Protocol):
    """A columnar store reached through Ibis expressions built by pure functions."""

    def table(self, name: str) -> ibis.Table: ...

    def execute(self, expr: ibis.Expr) -> pa.Table: ...

    def append_events(self, incoming: pa.Table, batch_ids: list[int], dedupe_since: datetime) -> dict[str, int]:
        """Append events not already stored (by workspace + messageId since `dedupe_since`) and
        record `batch_ids` as applied, atomically. Returns rows inserted per workspace."""
        ...

    def applied_batches(self, batch_ids: list[int]) -> set[int]: ...

    def close(self) -> None: ...


def open_warehouse(url: str) -> Warehouse:
    if url.startswith("duckdb://"):
        from quanyu.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(url.removeprefix("duckdb://"))
    raise InvalidInput(f"不支持的仓库地址 / unsupported warehouse URL {url!r} (expected duckdb:///path)")
