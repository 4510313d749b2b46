"""The warehouse protocol that domain code depends on, and the URL-based opener."""

from __future__ import annotations

from typing import Protocol

import ibis
import pyarrow as pa

from quanyu.errors import InvalidInput


class Warehouse(Protocol):
    """A columnar store reached through Ibis expressions built by pure functions."""

    def table(self, name: str) -> ibis.Table: ...

    def execute(self, expr: ibis.Expr) -> pa.Table: ...

    def append(
        self, target: str, rows: ibis.Table, inputs: dict[str, pa.Table], batch_ids: list[int]
    ) -> dict[int, int]:
        """Insert the rows of `rows` (which reads the named Arrow `inputs`) into `target` and
        record `batch_ids` as applied, in one transaction. Returns rows inserted per batch id."""
        ...

    def replace_workspace_rows(
        self, target: str, workspace_id: str, rows: pa.Table, extra: dict[str, pa.Table] | None = None
    ) -> None:
        """Replace `target`'s rows of one workspace and append `extra` tables, atomically."""
        ...

    def applied_batches(self, batch_ids: list[int]) -> dict[int, int]:
        """Of `batch_ids`, those already applied, with the rows each one inserted."""
        ...

    def close(self) -> None: ...


def open_warehouse(url: str) -> Warehouse:
    if url.startswith("duckdb://"):
        from quanyu.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(url.removeprefix("duckdb://"))
    raise InvalidInput(f"不支持的仓库地址 / unsupported warehouse URL {url!r} (expected duckdb:///path)")
