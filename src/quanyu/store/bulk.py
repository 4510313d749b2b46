"""Fast multi-row writes for the journey engine's hot tables (enrollments, steps, outbox).

SQLAlchemy's per-row parameter processing costs more than the write itself at hundreds of
thousands of rows per second. On SQLite the rows are converted here (once per distinct instant)
and handed to the driver's `executemany`; the stored forms are exactly what SQLAlchemy writes
(its DATETIME string, JSON text, 0/1 booleans), so reads through the models are unchanged. On
PostgreSQL the rows go in with COPY, straight into the table or, when a conflict must be skipped,
a RETURNING clause is needed or rows are updated, through a temporary staging table dropped at
commit (psycopg re-parses every multi-row VALUES statement, which was most of the time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Connection, Table

from quanyu.store.times import UTCDateTime, as_utc


def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME storage format, of the UTC instant (UTCDateTime's rule).
    return as_utc(value).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_converter(col_type: Any) -> Callable[[Any], Any] | None:
    """How a value of this column type is stored by SQLAlchemy on SQLite (None: as it is)."""
    if isinstance(col_type, UTCDateTime):
        cache: dict[datetime, str] = {}  # a batch repeats a few instants many times

        def instant(v: Any) -> Any:
            if v is None:
                return None
            found = cache.get(v)
            if found is None:
                found = cache[v] = _sqlite_time(v)
            return found

        return instant
    if isinstance(col_type, JSON):
        return lambda v: None if v is None else orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode()
    if isinstance(col_type, Boolean):
        return lambda v: None if v is None else int(bool(v))
    return None


def insert_rows(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *, ignore_key: str | None = None
) -> None:
    """Insert `rows` (all with the same keys); with `ignore_key`, rows whose unique `ignore_key`
    already exists are skipped (ON CONFLICT DO NOTHING)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        names = list(rows[0])
        if ignore_key is None:
            _copy(conn, table.name, names, table, rows)
        else:
            stage = _stage(conn, table, names, rows)
            cols = ", ".join(f'"{n}"' for n in names)
            conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM {stage} '  # noqa: S608
                                 f'ON CONFLICT ("{ignore_key}") DO NOTHING')  # fmt: skip
        return
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), list(rows))
        return
    names = list(rows[0])
    converters: list[Callable[[Any], Any] | None] = [_sqlite_converter(table.c[n].type) for n in names]
    pairs = list(zip(names, converters, strict=True))
    values = [tuple(v if c is None else c(v) for (n, c), v in zip(pairs, (r[n] for n in names), strict=True))
              for r in rows]  # fmt: skip
    conflict = f' ON CONFLICT ("{ignore_key}") DO NOTHING' if ignore_key is not None else ""
    cols = ", ".join(f'"{n}"' for n in names)
    marks = ", ".join("?" for _ in names)
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks}){conflict}', values)  # noqa: S608


def update_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]],
                *, key: str = "id", guard: str | None = None) -> None:  # fmt: skip
    """Per-row UPDATEs in one executemany: each row is the values of `columns` followed by the
    `key` value; `guard` is extra SQL for the WHERE clause (a constant condition)."""
    if not rows:
        return
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        kinds = [table.c[c].type for c in columns]
        times: dict[datetime, str] = {}  # a batch repeats a few instants many times
        converted = []
        for row in rows:
            out = []
            for kind, value in zip(kinds, row, strict=False):
                if value is not None and isinstance(kind, UTCDateTime):
                    found = times.get(value)
                    if found is None:
                        found = times[value] = _sqlite_time(value)
                    value = found
                elif value is not None and isinstance(kind, JSON):
                    value = orjson.dumps(value).decode()
                elif value is not None and isinstance(kind, Boolean):
                    value = int(bool(value))
                out.append(value)
            out.append(row[-1])
            converted.append(tuple(out))
        sets = ", ".join(f'"{c}" = ?' for c in columns)
        where = f'"{key}" = ?' + (f" AND {guard}" if guard else "")
        conn.exec_driver_sql(f'UPDATE "{table.name}" SET {sets} WHERE {where}', converted)  # noqa: S608
        return
    if conn.dialect.name == "postgresql":
        names = [*columns, key]
        stage = _stage(conn, table, names, [dict(zip(names, row, strict=True)) for row in rows])
        sets = ", ".join(f'"{c}" = s."{c}"' for c in columns)
        where = f't."{key}" = s."{key}"' + (f" AND t.{guard}" if guard else "")
        conn.exec_driver_sql(f'UPDATE "{table.name}" AS t SET {sets} FROM {stage} AS s WHERE {where}')  # noqa: S608
        return
    from sqlalchemy import bindparam, text, update

    stmt = update(table).where(table.c[key] == bindparam("_k"))
    if guard:
        stmt = stmt.where(text(guard))
    stmt = stmt.values({c: bindparam(f"_v{i}") for i, c in enumerate(columns)})
    conn.execute(stmt, [{"_k": row[-1], **{f"_v{i}": v for i, v in enumerate(row[:-1])}} for row in rows])


def insert_returning(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], conflict: Sequence[str],
                     returning: Sequence[str]) -> list[tuple[Any, ...]]:  # fmt: skip
    """Insert rows, skipping those that conflict on `conflict`; the `returning` columns of the
    rows that went in."""
    if not rows:
        return []
    back = ", ".join(f'"{c}"' for c in returning)
    target = ", ".join(f'"{c}"' for c in conflict)
    if conn.dialect.name == "postgresql":
        names = list(rows[0])
        stage = _stage(conn, table, names, rows)
        cols = ", ".join(f'"{n}"' for n in names)
        result = conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM {stage} '  # noqa: S608
                                      f"ON CONFLICT ({target}) DO NOTHING RETURNING {back}")  # fmt: skip
        return [tuple(r) for r in result]
    from sqlalchemy.dialects import sqlite

    stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    result = conn.execute(stmt.returning(*[table.c[c] for c in returning]), list(rows))
    return [tuple(r) for r in result]


_staged = 0


def _stage(conn: Connection, table: Table, names: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """A temporary table (dropped at commit) with `names` columns of `table`, holding `rows`."""
    global _staged
    _staged += 1
    stage = f"_stage_{table.name}_{_staged}"
    cols = ", ".join(f'"{n}"' for n in names)
    conn.exec_driver_sql(f'CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols} FROM "{table.name}" '  # noqa: S608
                         "WITH NO DATA")  # fmt: skip
    _copy(conn, stage, names, table, rows)
    return stage


def _copy(
    conn: Connection, target: str, names: Sequence[str], table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    json_cols = {n for n in names if isinstance(table.c[n].type, JSON)}
    cols = ", ".join(f'"{n}"' for n in names)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f'COPY "{target}" ({cols}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([orjson.dumps(row[n], option=orjson.OPT_NON_STR_KEYS).decode()
                            if n in json_cols and row[n] is not None else row[n] for n in names])  # fmt: skip


def among(conn: Connection, column: Any, values: Sequence[Any]) -> Any:
    """`column IN values`, as one array parameter on PostgreSQL (`= ANY(:values)`): a query
    with thousands of placeholders costs psycopg more to parse than the server to run."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy import any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type), unique=True))
    return column.in_(list(values))
