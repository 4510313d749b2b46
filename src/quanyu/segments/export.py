"""Member exports as files: CSV for spreadsheets, Parquet for data tools.

A CSV opened in Excel or WPS runs any cell that starts like a formula, and member names, cities
and other traits come from customers. Every text cell starting with = + - @, a tab or a carriage
return gets a leading apostrophe (OWASP's CSV injection advice), so it shows as text. CSV files
start with a UTF-8 byte order mark, which Chinese Excel needs to read UTF-8.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from quanyu.segments.membership import all_members
from quanyu.warehouse.base import Warehouse

FORMULA_START = r"^[=+\-@\t\r]"
BOM = "\ufeff".encode()


def neutralise(table: pa.Table) -> pa.Table:
    """The table with every formula-like text cell prefixed by an apostrophe."""
    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            risky = pc.match_substring_regex(column, FORMULA_START)
            column = pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def to_csv(table: pa.Table) -> bytes:
    out = io.BytesIO()
    out.write(BOM)
    pacsv.write_csv(neutralise(table), out)
    return out.getvalue()


def to_parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def export(warehouse: Warehouse, workspace_id: str, segment_id: str, format_: str) -> bytes:
    """Every member of a segment with their key fields, as a `csv` or `parquet` file."""
    rows = all_members(warehouse, workspace_id, segment_id)
    return to_csv(rows) if format_ == "csv" else to_parquet(rows)
