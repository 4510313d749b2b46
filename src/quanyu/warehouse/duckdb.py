"""DuckDB adapter: an embedded file, one writing process, a cursor per thread."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import ibis
import pyarrow as pa
import sqlglot
from ibis.backends.sql.compilers.duckdb import compiler

from quanyu.errors import QuanyuError, StorageUnavailable
from quanyu.warehouse.schema import APPLIED_BATCHES, EVENTS, IDENTITY_NODES, IDENTITY_REDIRECTS


def _inserted_per_batch(target: str) -> str:
    """Rows each queue batch of the append contributed. Batch ids only grow, so the range
    filter lets zone maps skip older row groups without reading them."""
    return (
        sqlglot.select("batch_id", "count(*)")
        .from_(target)
        .where("batch_id BETWEEN $lo AND $hi")
        .group_by("batch_id")
        .sql("duckdb")
    )


class WarehouseLocked(QuanyuError):
    status = 503
    code = "warehouse_locked"


class DuckDBWarehouse:
    def __init__(self, path: str) -> None:
        if path not in ("", ":memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(path or ":memory:")
        except duckdb.IOException as exc:
            raise WarehouseLocked(
                f"仓库文件被其他进程占用 / warehouse {path} is held by another process "
                "(is `quanyu serve` running? point the CLI at it with --api-url)"
            ) from exc
        self._local = threading.local()
        self._ensure_tables()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self._con.cursor()
        return cur

    def _ibis(self) -> ibis.BaseBackend:
        backend = getattr(self._local, "ibis", None)
        if backend is None:
            backend = self._local.ibis = ibis.duckdb.from_connection(self._cursor())
        return backend

    def _ensure_tables(self) -> None:
        backend = self._ibis()
        existing = set(backend.list_tables())
        tables = (
            ("events", EVENTS),
            ("applied_batches", APPLIED_BATCHES),
            ("identity_nodes", IDENTITY_NODES),
            ("identity_redirects", IDENTITY_REDIRECTS),
        )
        for name, schema in tables:
            if name not in existing:
                backend.create_table(name, schema=schema)
        # Files written before per-batch counts were recorded.
        self._cursor().execute(
            "ALTER TABLE applied_batches ADD COLUMN IF NOT EXISTS inserted BIGINT DEFAULT 0"
        )

    def table(self, name: str) -> ibis.Table:
        return self._ibis().table(name)

    def execute(self, expr: ibis.Expr) -> pa.Table:
        sql = compiler.to_sqlglot(expr).sql("duckdb")
        try:
            return self._cursor().execute(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise StorageUnavailable(f"仓库查询失败 / warehouse query failed: {exc}\n{sql}") from exc

    def append(
        self, target: str, rows: ibis.Table, inputs: dict[str, pa.Table], batch_ids: list[int]
    ) -> dict[int, int]:
        cur = self._cursor()
        # No RETURNING: it would hold the rows back until commit instead of letting the engine
        # write row groups while it inserts.
        insert = sqlglot.exp.insert(compiler.to_sqlglot(rows), target).sql("duckdb")
        for name, table in inputs.items():
            cur.register(name, table)
        try:
            cur.execute("BEGIN TRANSACTION")
            cur.execute(insert)
            span = {"lo": min(batch_ids), "hi": max(batch_ids)}
            counts = {int(b): int(n) for b, n in cur.execute(_inserted_per_batch(target), span).fetchall()}
            cur.execute(
                "INSERT INTO applied_batches SELECT unnest($ids), $now, unnest($inserted)",
                {
                    "ids": batch_ids,
                    "now": datetime.now(UTC),
                    "inserted": [counts.get(i, 0) for i in batch_ids],
                },
            )
            cur.execute("COMMIT")
        except duckdb.Error as exc:
            cur.execute("ROLLBACK")
            raise StorageUnavailable(f"写入仓库失败 / warehouse append failed: {exc}\n{insert}") from exc
        finally:
            for name in inputs:
                cur.unregister(name)
        return {i: counts.get(i, 0) for i in batch_ids}

    def replace_workspace_rows(
        self, target: str, workspace_id: str, rows: pa.Table, extra: dict[str, pa.Table] | None = None
    ) -> None:
        """Replace `target`'s rows of one workspace with `rows`, and append each `extra` table
        (name → rows), in one transaction."""
        cur = self._cursor()
        delete = sqlglot.exp.delete(
            target, where=sqlglot.exp.column("workspace_id").eq(sqlglot.exp.Placeholder(this="ws"))
        )
        appends = {target: rows, **(extra or {})}
        try:
            cur.execute("BEGIN TRANSACTION")
            cur.execute(delete.sql("duckdb"), {"ws": workspace_id})
            for i, (name, table) in enumerate(appends.items()):
                view = f"_quanyu_rows_{i}"
                cur.register(view, table)
                try:
                    insert = sqlglot.exp.insert(sqlglot.select("*").from_(view), name)
                    cur.execute(insert.sql("duckdb"))
                finally:
                    cur.unregister(view)
            cur.execute("COMMIT")
        except duckdb.Error as exc:
            cur.execute("ROLLBACK")
            raise StorageUnavailable(f"写入仓库失败 / warehouse write failed: {exc}") from exc

    def applied_batches(self, batch_ids: list[int]) -> dict[int, int]:
        if not batch_ids:
            return {}
        rows = (
            self._cursor()
            .execute(
                "SELECT batch_id, inserted FROM applied_batches WHERE batch_id BETWEEN $lo AND $hi",
                {"lo": min(batch_ids), "hi": max(batch_ids)},
            )
            .fetchall()
        )
        wanted = set(batch_ids)
        return {int(b): int(n or 0) for b, n in rows if b in wanted}

    def close(self) -> None:
        self._con.close()
