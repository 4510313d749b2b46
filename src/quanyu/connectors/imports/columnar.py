"""The fast path for large CSV files: Arrow's C++ parser and column-at-a-time checks.

Reading a million-row export cell by cell in Python costs a minute or more; parsing it with
`pyarrow.csv` and checking each column with Arrow compute functions (times with `strptime`,
amounts with a cast, phones with a regular expression) leaves only the cells that do not match
the common form to the row-by-row readers in `columns.py`, so the rules stay in one place and
the results are the same.

The fast path is taken only when every physical line is one row (no line breaks inside quoted
cells, no blank lines), so a row's index gives its line number. Anything Arrow refuses (a row
with the wrong number of cells, a quote left open) sends the file down the row-by-row path,
which says exactly where and what the problem is.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from quanyu.connectors.imports.columns import CellError, CellReader, Layout
from quanyu.connectors.imports.formats import Parsed
from quanyu.connectors.imports.report import Problem

_MAINLAND = r"^1[3-9][0-9]{9}$"
_MASKED = r"^1[3-9][0-9]\*{4}[0-9]{4}$"
_MONEY_NOISE = r"[¥￥,，元\s\x{00a0}]"
_SCIENTIFIC = r"^[0-9](\.[0-9]+)?[eE]\+?[0-9]+$"


def table_of(text: str, header: Sequence[str]) -> pa.Table | None:
    """The file's rows as a table of strings, or None when the fast path does not apply."""
    body_lines = text.count("\n") + (0 if text.endswith("\n") else 1) - 1
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=[f"c{i}" for i in range(len(header))], skip_rows=1,
                                           block_size=16 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={f"c{i}": pa.string() for i in range(len(header))}, strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )  # fmt: skip
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if table.num_rows != body_lines or "\r" in text.replace("\r\n", ""):
        return None
    return table


def read_table(
    table: pa.Table,
    header: Sequence[str],
    layout: Layout,
    cells: CellReader,
    lines: Sequence[int] | None = None,
) -> tuple[list[Parsed], list[Problem]]:
    """Typed rows of the table and the problems of the rows that failed; a row's line is
    `lines[index]`, or index + 2 (after the header) for a whole file."""
    line_of = lines if lines is not None else range(2, table.num_rows + 2)
    count = table.num_rows
    position = {name: i for i, name in enumerate(header)}
    columns: dict[str, list[Any]] = {}
    problems: dict[int, Problem] = {}

    def bad(index: int, column: str, message: str) -> None:
        problems.setdefault(index, Problem(line_of[index], column, "bad_cell", message))

    for column in layout.columns:
        name = layout.headers[column.field]
        raw = table.column(position[name]).combine_chunks()
        values = unwrap(raw)
        reader = _READERS.get(column.kind, _careful)
        typed = values.to_pylist() if column.kind == "text" else reader(values, cells.zone.key)
        if column.kind != "text":
            # Cells the vectorised check could not settle go through the row-by-row reader.
            fallback = cells.cell_reader(column.kind)
            for i, original in _unsettled(typed, values):
                try:
                    typed[i] = fallback(original, name)
                except CellError as err:
                    bad(i, name, err.message)
        for i, value in enumerate(typed):
            if value == "" or value is None:
                typed[i] = None
                if column.required:
                    bad(i, name, f"{name} 为空 / {name} is empty")
        if column.kind == "id":
            for i in _matches(values, _SCIENTIFIC):
                bad(i, name, f"{name} 被 Excel 改成了科学计数法，原值已丢失 / {name} was turned into scientific "
                             f"notation by Excel ({typed[i]}); export again and open it as text")  # fmt: skip
        columns[column.field] = typed
    fields = list(columns)
    lists = [columns[f] for f in fields]
    parsed = [
        Parsed(line_of[i], {f: v for f, v in zip(fields, row, strict=True) if v is not None})
        for i, row in enumerate(zip(*lists, strict=True))
        if i not in problems
    ] if lists else [Parsed(line_of[i], {}) for i in range(count) if i not in problems]  # fmt: skip
    return parsed, [problems[i] for i in sorted(problems)]


def _unsettled(typed: list[Any], values: pa.Array) -> list[tuple[int, str]]:
    missing = [i for i, v in enumerate(typed) if v is None]
    if not missing:
        return []
    originals = values.take(pa.array(missing, pa.int64())).to_pylist()
    return [(i, o) for i, o in zip(missing, originals, strict=True) if o]


def unwrap(raw: pa.Array) -> pa.Array:
    # ="3012…" (how exports keep long numbers as text in Excel), a leading apostrophe, padding;
    # the wrapped forms are looked for first, as most columns have none.
    values = pc.utf8_trim_whitespace(raw)
    if pc.any(pc.starts_with(values, '="')).as_py():
        wrapped = pc.and_(pc.starts_with(values, '="'), pc.ends_with(values, '"'))
        values = pc.if_else(wrapped, pc.utf8_slice_codeunits(values, 2, -1), values)
    if pc.any(pc.starts_with(values, "'")).as_py():
        quoted = pc.starts_with(values, "'")
        values = pc.if_else(quoted, pc.utf8_trim_whitespace(pc.utf8_ltrim(values, characters="'")), values)
    return values


def _matches(values: pa.Array, pattern: str) -> list[int]:
    hits = pc.match_substring_regex(values, pattern)
    return [i for i, hit in enumerate(hits.to_pylist()) if hit]


def _times(values: pa.Array, zone: str) -> list[Any]:
    local = pc.strptime(values, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True)
    aware = pc.assume_timezone(local, zone, ambiguous="earliest", nonexistent="earliest")
    utc = aware.cast(pa.timestamp("s", tz="UTC"))
    return pc.strftime(utc, format="%Y-%m-%dT%H:%M:%S+00:00").to_pylist()


def _money(values: pa.Array, zone: str) -> list[Any]:
    cleaned = pc.replace_substring_regex(values, _MONEY_NOISE, "")
    try:
        numbers = pc.cast(pc.if_else(pc.equal(cleaned, ""), None, cleaned), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return [None] * len(values)  # every non-empty cell goes through the careful reader
    ok = pc.and_(pc.is_finite(numbers), pc.greater_equal(numbers, 0))
    return pc.if_else(ok, pc.round(numbers, 2), None).to_pylist()


def _ints(values: pa.Array, zone: str) -> list[Any]:
    ok = pc.match_substring_regex(values, r"^[0-9]{1,15}$")
    return pc.if_else(ok, values, None).cast(pa.int64()).to_pylist()


def _phones(values: pa.Array, zone: str) -> list[Any]:
    ok = pc.or_(pc.match_substring_regex(values, _MAINLAND), pc.match_substring_regex(values, _MASKED))
    return pc.if_else(ok, values, None).to_pylist()


def _ids(values: pa.Array, zone: str) -> list[Any]:
    ok = pc.less_equal(pc.utf8_length(values), 128)
    return pc.if_else(ok, values, None).to_pylist()


def _careful(values: pa.Array, zone: str) -> list[Any]:
    return [None] * len(values)  # rare kinds (e-mail, yes/no): every cell through the row reader


_READERS: dict[str, Callable[[pa.Array, str], list[Any]]] = {
    "time": _times,
    "money": _money,
    "int": _ints,
    "phone": _phones,
    "id": _ids,
}
