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
from quanyu.warehouse.events import INCOMING, new_events
from quanyu.warehouse.schema import APPLIED_BATCHES, EVENTS


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
        for name, schema in (("events", EVENTS), ("applied_batches", APPLIED_BATCHES)):
            if name not in existing:
                backend.create_table(name, schema=schema)

    def table(self, name: str) -> ibis.Table:
        return self._ibis().table(name)

    def execute(self, expr: ibis.Expr) -> pa.Table:
        sql = compiler.to_sqlglot(expr).sql("duckdb")
        try:
            return self._cursor().execute(sql).fetch_arrow_table()
        except duckdb.Error as exc:
            raise StorageUnavailable(f"仓库查询失败 / warehouse query failed: {exc}\n{sql}") from exc

    def append_events(self, incoming: pa.Table, batch_ids: list[int], dedupe_since: datetime) -> dict[str, int]:
        cur = self._cursor()
        select = compiler.to_sqlglot(new_events(dedupe_since))
        insert = sqlglot.exp.insert(select, "events", returning="workspace_id").sql("duckdb")
        cur.register(INCOMING, incoming)
        try:
            cur.execute("BEGIN TRANSACTION")
            inserted = cur.execute(insert).fetch_arrow_table()
            cur.execute(
                "INSERT INTO applied_batches SELECT unnest($ids), $now",
                {"ids": batch_ids, "now": datetime.now(UTC)},
            )
            cur.execute("COMMIT")
        except duckdb.Error as exc:
            cur.execute("ROLLBACK")
            raise StorageUnavailable(f"写入仓库失败 / warehouse append failed: {exc}") from exc
        finally:
            cur.unregister(INCOMING)
        counts = inserted.column("workspace_id").value_counts().to_pylist()
        return {c["values"]: int(c["counts"]) for c in counts}

    def applied_batches(self, batch_ids: list[int]) -> set[int]:
        if not batch_ids:
            return set()
        rows = self._cursor().execute(
            "SELECT batch_id FROM applied_batches WHERE list_contains($ids, batch_id)", {"ids": batch_ids}
        ).fetchall()
        return {int(r[0]) for r in rows}

    def close(self) -> None:
        self._con.close()
