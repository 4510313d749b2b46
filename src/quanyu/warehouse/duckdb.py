"""DuckDB adapter: an embedded file, one writing process, a cursor per thread."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import ibis
import ibis.expr.operations as ops
import pyarrow as pa
import sqlglot
from ibis.backends.sql.compilers.duckdb import compiler

from quanyu.errors import QuanyuError, QueryTimeout, StorageUnavailable
from quanyu.warehouse.base import Append, Delete, Fill, Replace
from quanyu.warehouse.schema import (
    APPLIED_BATCHES,
    EVENTS,
    IDENTITY_BATCHES,
    IDENTITY_CHANGES,
    IDENTITY_EDGES,
    IDENTITY_EVENT_KEYS,
    IDENTITY_EXCLUSIONS,
    IDENTITY_NODES,
    IDENTITY_REDIRECTS,
    IDENTITY_REVIEWS,
    JOURNEY_BATCHES,
    PERSON_EVENTS,
    PROFILE_TAGS,
    PROFILES,
    SEGMENT_MEMBERS,
    SEGMENT_MEMBERSHIP_LOG,
)


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


def _delete_keys(op: Delete, keys: str) -> str:
    """DELETE the workspace's rows of `op.target` whose key columns equal a row of `keys`."""
    exp = sqlglot.exp
    match = [exp.column(c, table="t").eq(exp.column(c, table="k")) for c in op.keys.column_names]
    mine = exp.column("workspace_id", table="t").eq(exp.Literal.string(op.workspace_id))
    target = exp.alias_(exp.to_table(op.target), "t", table=True)
    using = exp.alias_(exp.to_table(keys), "k", table=True)
    return exp.Delete(this=target, using=[using], where=exp.Where(this=exp.and_(mine, *match))).sql("duckdb")


@functools.lru_cache(maxsize=256)
def _render(statement: sqlglot.exp.Expression) -> str:
    return statement.sql("duckdb")


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
            # Times are stored and compared in UTC; the machine's zone (often Asia/Shanghai for
            # our users) must not leak into casts and date parts. Zones are applied explicitly.
            cur.execute("SET TimeZone = 'UTC'")
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
            ("person_events", PERSON_EVENTS),
            ("applied_batches", APPLIED_BATCHES),
            ("identity_nodes", IDENTITY_NODES),
            ("identity_redirects", IDENTITY_REDIRECTS),
            ("identity_edges", IDENTITY_EDGES),
            ("identity_event_keys", IDENTITY_EVENT_KEYS),
            ("identity_exclusions", IDENTITY_EXCLUSIONS),
            ("identity_changes", IDENTITY_CHANGES),
            ("identity_batches", IDENTITY_BATCHES),
            ("journey_batches", JOURNEY_BATCHES),
            ("identity_reviews", IDENTITY_REVIEWS),
            ("profiles", PROFILES),
            ("profile_tags", PROFILE_TAGS),
            ("segment_members", SEGMENT_MEMBERS),
            ("segment_membership_log", SEGMENT_MEMBERSHIP_LOG),
        )
        for name, schema in tables:
            if name not in existing:
                backend.create_table(name, schema=schema)
        # Files written before per-batch counts (and raw components) were recorded.
        self._cursor().execute(
            "ALTER TABLE applied_batches ADD COLUMN IF NOT EXISTS inserted BIGINT DEFAULT 0;"
            "ALTER TABLE identity_nodes ADD COLUMN IF NOT EXISTS component VARCHAR;"
            # Point lookups (which person has this identifier, what does this person hold) use
            # these ART indexes when filtered on the one column with a constant.
            "CREATE INDEX IF NOT EXISTS identity_nodes_key ON identity_nodes(key);"
            "CREATE INDEX IF NOT EXISTS identity_nodes_profile ON identity_nodes(profile_id)"
        )
        if "person_events" not in existing and "identity_event_keys" in existing:
            self._backfill_person_events()
        if "segment_membership_log" in existing:
            self._number_segment_log()

    def _number_segment_log(self) -> None:
        """A file from before the log's rows were numbered (`seq`, the signal cursor): number
        the old rows once, by time."""
        cur = self._cursor()
        columns = cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'segment_membership_log'"
        ).fetchall()
        if ("seq",) in columns:
            return
        cur.execute(
            "ALTER TABLE segment_membership_log ADD COLUMN seq BIGINT;"
            "UPDATE segment_membership_log AS l SET seq = n.seq FROM ("
            ' SELECT rowid AS r, row_number() OVER (ORDER BY "at", run_id, segment_id, kind, profile_id) AS seq'
            " FROM segment_membership_log) AS n WHERE l.rowid = n.r"
        )

    def _backfill_person_events(self) -> None:
        """A file from before person events were kept: derive them once from the graph."""
        from quanyu.identity.person_events import refill  # the identity layer builds the rows

        nodes = self.table("identity_nodes")
        workspaces = self.execute(nodes.select("workspace_id").distinct()).column(0).to_pylist()
        self.write([refill(self, ws) for ws in workspaces])

    def table(self, name: str) -> ibis.Table:
        return self._ibis().table(name)

    def execute(self, expr: ibis.Expr, timeout: float | None = None) -> pa.Table:
        sql = compiler.to_sqlglot(expr).sql("duckdb")
        cur = self._cursor()
        # In-memory tables (ibis.memtable: a set of keys to look up) are views for this query.
        memtables = [op for op in expr.op().find(ops.InMemoryTable)]
        for op in memtables:
            cur.register(op.name, op.data.to_pyarrow(op.schema))
        # A late interrupt that lands after the query finished is harmless: DuckDB clears the
        # flag when the next query starts.
        timer = threading.Timer(timeout, cur.interrupt) if timeout is not None else None
        try:
            if timer is not None:
                timer.start()
            return cur.execute(sql).to_arrow_table()
        except duckdb.InterruptException as exc:
            raise QueryTimeout(
                f"查询超时 / query stopped after its time limit of {timeout:g} s\n{sql}"
            ) from exc
        except duckdb.Error as exc:
            raise StorageUnavailable(f"仓库查询失败 / warehouse query failed: {exc}\n{sql}") from exc
        finally:
            if timer is not None:
                timer.cancel()
            for op in memtables:
                cur.unregister(op.name)

    def query(self, statement: sqlglot.exp.Expression, params: dict[str, object]) -> pa.Table:
        sql = _render(statement)
        try:
            return self._cursor().execute(sql, params).to_arrow_table()
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

    def write(self, ops: Sequence[Append | Replace | Delete | Fill]) -> None:
        cur = self._cursor()
        registered: list[str] = []

        def view(table: pa.Table) -> str:
            name = f"_quanyu_rows_{len(registered)}"
            cur.register(name, table)
            registered.append(name)
            return name

        try:
            cur.execute("BEGIN TRANSACTION")
            for op in ops:
                if isinstance(op, Fill):
                    mine = sqlglot.exp.column("workspace_id").eq(sqlglot.exp.Literal.string(op.workspace_id))
                    cur.execute(sqlglot.exp.delete(op.target, where=mine).sql("duckdb"))
                    cur.execute(f"INSERT INTO {op.target} {ibis.to_sql(op.rows, dialect='duckdb')}")
                    continue
                if isinstance(op, Delete):
                    if op.keys.num_rows:
                        cur.execute(_delete_keys(op, view(op.keys)))
                    continue
                if isinstance(op, Replace):
                    where: list[sqlglot.exp.Expression] = [
                        sqlglot.exp.column("workspace_id").eq(sqlglot.exp.Literal.string(op.workspace_id))
                    ]
                    if op.column is not None:
                        keys = view(pa.table({"v": pa.array(list(op.values), pa.string())}))
                        where.append(
                            sqlglot.exp.column(op.column).isin(query=sqlglot.select("v").from_(keys))
                        )
                    cur.execute(sqlglot.exp.delete(op.target, where=sqlglot.exp.and_(*where)).sql("duckdb"))
                if op.rows.num_rows:
                    insert = sqlglot.exp.insert(sqlglot.select("*").from_(view(op.rows)), op.target)
                    cur.execute(insert.sql("duckdb"))
            cur.execute("COMMIT")
        except duckdb.Error as exc:
            cur.execute("ROLLBACK")
            raise StorageUnavailable(f"写入仓库失败 / warehouse write failed: {exc}") from exc
        finally:
            for name in registered:
                cur.unregister(name)

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
