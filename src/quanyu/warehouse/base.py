"""The warehouse protocol that domain code depends on, and the URL-based opener."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import ibis
import pyarrow as pa
import sqlglot

from quanyu.errors import InvalidInput


@dataclass(frozen=True)
class Append:
    """Add `rows` to `target`."""

    target: str
    rows: pa.Table


@dataclass(frozen=True)
class Replace:
    """Delete `target`'s rows of one workspace (only those whose `column` is in `values`, when
    given) and add `rows` in their place."""

    target: str
    workspace_id: str
    rows: pa.Table
    column: str | None = None
    values: Sequence[str] = ()


@dataclass(frozen=True)
class Delete:
    """Delete `target`'s rows of one workspace whose `keys` columns equal a row of `keys`
    (e.g. the (segment_id, profile_id) pairs that left a segment)."""

    target: str
    workspace_id: str
    keys: pa.Table


@dataclass(frozen=True)
class Fill:
    """Delete `target`'s rows of one workspace and insert the rows of `rows`, an Ibis
    expression over stored tables run inside the transaction (so it sees the operations before
    it): for derived tables too large to pass through memory (a rebuild's person events)."""

    target: str
    workspace_id: str
    rows: ibis.Table


class Warehouse(Protocol):
    """A columnar store reached through Ibis expressions built by pure functions."""

    def table(self, name: str) -> ibis.Table: ...

    def execute(self, expr: ibis.Expr, timeout: float | None = None) -> pa.Table:
        """Run an expression; past `timeout` seconds the query is interrupted and QueryTimeout
        (504) raised."""
        ...

    def query(self, statement: sqlglot.exp.Expression, params: dict[str, object]) -> pa.Table:
        """Run a prepared statement (built once by a pure builder, `$name` placeholders):
        for hot point lookups, where compiling an expression each time would cost more than
        running it."""
        ...

    def append(
        self, target: str, rows: ibis.Table, inputs: dict[str, pa.Table], batch_ids: list[int]
    ) -> dict[int, int]:
        """Insert the rows of `rows` (which reads the named Arrow `inputs`) into `target` and
        record `batch_ids` as applied, in one transaction. Returns rows inserted per batch id."""
        ...

    def write(self, ops: Sequence[Append | Replace | Delete | Fill]) -> None:
        """Apply every operation in one transaction: all of them or none."""
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
