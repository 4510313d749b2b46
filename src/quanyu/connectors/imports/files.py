"""Reading export files as platforms write them: CSV in UTF-8 (with or without a BOM), UTF-16
(Excel's "Unicode text") or GBK/GB18030 (what Chinese Excel and many seller back-ends still
save), or JSON (an array, or one object per line).

Every row keeps the line it started on, so problems can be reported where a person will look
for them in a spreadsheet. Anything that makes the whole file untrustworthy (undecodable bytes,
a binary file, an unterminated quote, a last row cut short) is a `FileProblem`: nothing of such
a file is imported.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from quanyu.errors import InvalidInput

# Encodings tried when none is given, in order. GB18030 is a superset of GBK and GB2312 and
# decodes any file those produce; it is tried last because it also "decodes" many non-Chinese
# byte sequences, which the mojibake check below catches.
AUTO = "auto"
_NAMED = {"utf-8", "utf-8-sig", "utf-16", "gbk", "gb18030", "gb2312", "big5"}
# The cell key under which a row whose width does not match the header records its width.
WIDTH = "\x00width"


class FileProblem(InvalidInput):
    """The file as a whole cannot be read; nothing in it is imported."""


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str


def decode(data: bytes, encoding: str = AUTO) -> Decoded:
    """The file's text, decoded with `encoding` or the detected one; FileProblem if it is not text."""
    if not data.strip():
        raise FileProblem("文件为空 / the file is empty", code="empty_file")
    if encoding != AUTO:
        return Decoded(_strict(data, _encoding_name(encoding)), _encoding_name(encoding))
    if data.startswith(codecs.BOM_UTF8):
        return Decoded(_strict(data, "utf-8-sig"), "utf-8-sig")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Decoded(_strict(data, "utf-16"), "utf-16")
    if b"\x00" in data[:65536]:
        raise FileProblem(
            "文件含有 NUL 字节，不是文本文件（是 Excel .xlsx 吗？请另存为 CSV）/ the file contains NUL bytes: "
            "not a text file (an .xlsx workbook? save it as CSV)",
            code="not_text",
        )
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return Decoded(data.decode("gb18030"), "gb18030")
    except UnicodeDecodeError as exc:
        raise FileProblem(
            f"无法识别文件编码（第 {_line_of(data, exc.start)} 行）；请用 --encoding 指定 / cannot tell the "
            f"file's encoding (undecodable bytes on line {_line_of(data, exc.start)}): pass --encoding",
            code="unknown_encoding",
        ) from None


def _encoding_name(encoding: str) -> str:
    name = codecs.lookup(encoding).name if _known(encoding) else ""
    if name not in _NAMED:
        raise FileProblem(
            f"不支持的编码 / unsupported encoding {encoding!r}: use utf-8, utf-8-sig, utf-16, gbk or gb18030",
            code="unsupported_encoding",
        )
    return name


def _known(encoding: str) -> bool:
    try:
        codecs.lookup(encoding)
    except LookupError:
        return False
    return True


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = _line_of(data, exc.start)
        raise FileProblem(
            f"文件不是 {encoding} 编码：第 {line} 行有无法解码的字节 / the file is not valid {encoding}: "
            f"undecodable bytes on line {line} (try --encoding gbk or utf-8)",
            code="wrong_encoding",
            details={"line": line, "encoding": encoding},
        ) from None


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


@dataclass(frozen=True)
class Row:
    line: int
    cells: dict[str, str]


def csv_rows(text: str) -> tuple[list[str], Iterator[Row]]:
    """The header and an iterator of rows (cells by header name, stripped, with their line)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise FileProblem("文件没有表头 / the file has no header row", code="no_header") from None
    except csv.Error as exc:
        raise _csv_problem(exc, 1) from None
    names = [_header(h) for h in header]
    _check_header(names)
    return names, _rows(reader, names, text.endswith(("\n", "\r")))


def _header(cell: str) -> str:
    # Seller back-ends pad headers, quote them, or prefix a BOM once more after re-saving.
    return cell.strip().lstrip("\ufeff").strip().strip('"').strip()


def _check_header(names: list[str]) -> None:
    if not any(names):
        raise FileProblem("表头为空 / the header row is empty", code="no_header")
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise FileProblem(f"表头重复 / duplicate column {name!r}", code="duplicate_column")
        seen.add(name)


def _rows(reader: Iterator[list[str]], names: list[str], ends_cleanly: bool) -> Iterator[Row]:
    width = len(names)
    line = 1
    short: Row | None = None  # a row with too few cells, held back: it may be a cut-off last row
    while True:
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            if short is not None and not ends_cleanly:
                raise FileProblem(
                    f"文件在第 {short.line} 行被截断 / the file is truncated at line {short.line} "
                    "(its last row is incomplete)",
                    code="truncated_file",
                    details={"line": short.line},
                ) from None
            if short is not None:
                yield short
            return
        except csv.Error as exc:
            raise _csv_problem(exc, start) from None
        line = reader.line_num  # type: ignore[attr-defined]
        if short is not None:
            yield short
            short = None
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        if len(cells) != width:
            mismatched = Row(start, {WIDTH: str(len(cells))})
            if len(cells) < width:
                short = mismatched
            else:
                yield mismatched
            continue
        yield Row(start, {name: cell.strip() for name, cell in zip(names, cells, strict=True) if name})


def width_problem(row: Row) -> int | None:
    """The number of cells of a row whose width did not match the header, else None."""
    value = row.cells.get(WIDTH)
    return int(value) if value is not None else None


def _csv_problem(exc: csv.Error, line: int) -> FileProblem:
    text = str(exc)
    if "unexpected end of data" in text or "EOF" in text:
        return FileProblem(
            f"文件在第 {line} 行被截断（引号未闭合）/ the file is truncated at line {line} (an unterminated quote)",
            code="truncated_file",
            details={"line": line},
        )
    return FileProblem(
        f"第 {line} 行不是有效的 CSV / line {line} is not valid CSV: {text}",
        code="invalid_csv",
        details={"line": line},
    )


def json_rows(text: str) -> Iterator[Row]:
    """Rows of a JSON array of objects, or of JSON Lines (one object per line)."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise FileProblem(
                f"JSON 无效或被截断 / invalid or truncated JSON: {exc}", code="invalid_json"
            ) from None
        for index, item in enumerate(items):
            yield _json_row(index + 1, item)
        return
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise FileProblem(
                f"第 {number} 行不是有效的 JSON（文件被截断？）/ line {number} is not valid JSON (a truncated file?)",
                code="invalid_json",
                details={"line": number},
            ) from None
        yield _json_row(number, item)


def _json_row(line: int, item: object) -> Row:
    if not isinstance(item, dict):
        raise FileProblem(
            f"第 {line} 条不是 JSON 对象 / item {line} is not a JSON object", code="invalid_json"
        )
    return Row(line, {str(k): _cell(v) for k, v in item.items()})


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()
