"""Running one import: read the whole file, check every row, then write in one transaction.

The order matters for data safety. Nothing is written until the whole file has been decoded and
every row read: a wrong encoding, a truncated file or a bad row means nothing of the file is
imported (unless the caller asks to skip bad rows, which are then reported and left out).
Messages get ids derived from the source and a key per order/row, and those already stored for
the source are left out, so re-importing a file, or an export that overlaps the last one, adds
nothing twice. What is written goes into the durable ingestion queue in one transaction, the
same queue the collector writes, so the pipeline, identity and segments treat imported events
exactly like collected ones.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from quanyu.collect.messages import Envelope, MessageError, complete
from quanyu.collect.queue import QueuedBatch
from quanyu.collect.sources import SourceInfo
from quanyu.connectors.imports.columns import CellError, CellReader, Column, layout
from quanyu.connectors.imports.files import AUTO, FileProblem, Row, csv_rows, decode, json_rows, width_problem
from quanyu.connectors.imports.formats import Context, Format, Output, Parsed
from quanyu.connectors.imports.report import BadRows, ImportReport, Problem
from quanyu.errors import InvalidInput

if TYPE_CHECKING:
    from quanyu.platform import Platform

_NAMESPACE = uuid.UUID("2f0b7f4e-8c1d-4b53-9a51-5175616e7969")
_BATCH_MESSAGES = 2_000
# Progress is reported as (stage, done, total): "read" counts rows, "write" counts messages.
Progress = Callable[[str, int, int], None]


def message_id(source: SourceInfo, key: str) -> str:
    """The stable id of an imported message: the same order from the same source is one message."""
    return str(uuid.uuid5(_NAMESPACE, f"{source.workspace_id}/{source.id}/{key}"))


def run_import(
    platform: Platform,
    source: SourceInfo,
    fmt: Format,
    data: bytes,
    *,
    encoding: str = AUTO,
    timezone: str | None = None,
    options: dict[str, str] | None = None,
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
    skip_bad: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import one file into `source`; BadRows (nothing written) when rows fail and not `skip_bad`."""
    started = time.perf_counter()
    if fmt.source_types and source.type not in fmt.source_types:
        raise InvalidInput(
            f"来源类型 {source.type} 不能导入 {fmt.label} / a {source.type} source cannot take {fmt.label} "
            f"imports (use a source of type {', '.join(sorted(fmt.source_types))})",
            code="wrong_source_type",
        )
    report = ImportReport(fmt.kind, fmt.name, source.id, dry_run=dry_run)
    decoded = decode(data, encoding)
    report.encoding = decoded.encoding
    zone = timezone or platform.workspaces.get(source.workspace_id).timezone
    parsed = _read(decoded.text, fmt, mapping or {}, zone, report, progress)
    output = fmt.build(parsed, Context(source, options or {}))
    _merge_problems(report, output)
    if report.bad_rows and not skip_bad:
        report.seconds = time.perf_counter() - started
        raise BadRows(report)
    encoded = _encode(source, output, report)
    fresh = _not_stored(platform, source, encoded)
    report.already_stored = len(encoded) - len(fresh)
    report.new = len(fresh)
    if not dry_run and fresh:
        _write(platform, source, [part for _, part in fresh], progress)
        report.written = True
    report.seconds = time.perf_counter() - started
    return report


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """`HEADER=field` pairs (`--map 会员手机=phone`) as {header: field}."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        header, sep, field_name = pair.rpartition("=")
        if not sep or not header.strip() or not field_name.strip():
            raise InvalidInput(
                f"映射应为 列名=字段 / a mapping is HEADER=field, got {pair!r}", code="invalid_mapping"
            )
        mapping[header.strip()] = field_name.strip()
    return mapping


def _read(
    text: str,
    fmt: Format,
    mapping: dict[str, str],
    zone: str,
    report: ImportReport,
    progress: Progress | None,
) -> list[Parsed]:
    header, rows = _rows(text)
    if mapping and not fmt.mappable:
        raise InvalidInput(f"{fmt.label} 不支持 --map / {fmt.label} takes no --map", code="invalid_mapping")
    columns = _mapped(fmt.columns, mapping) if mapping else fmt.columns
    reader = CellReader(layout(header, columns, fmt.label), zone)
    parsed: list[Parsed] = []
    for row in rows:
        report.rows += 1
        if progress is not None and report.rows % 10_000 == 0:
            progress("read", report.rows, 0)
        width = width_problem(row)
        if width is not None:
            _bad(report, Problem(row.line, None, "wrong_width",
                                 f"第 {row.line} 行有 {width} 列，表头有 {len(header)} 列 / line {row.line} has "
                                 f"{width} cells, the header has {len(header)}"))  # fmt: skip
            continue
        try:
            parsed.append(Parsed(row.line, reader.read(row.cells)))
        except CellError as err:
            _bad(report, Problem(row.line, err.column, "bad_cell", err.message))
    if not report.rows:
        raise FileProblem("文件只有表头，没有数据 / the file has a header but no rows", code="no_rows")
    return parsed


def _rows(text: str) -> tuple[list[str], Iterator[Row]]:
    if text.lstrip()[:1] in ("[", "{"):
        rows = list(json_rows(text))
        header: dict[str, None] = {}
        for row in rows:
            header.update(dict.fromkeys(row.cells))
        return list(header), iter(rows)
    return csv_rows(text)


def _mapped(columns: tuple[Column, ...], mapping: dict[str, str]) -> tuple[Column, ...]:
    """The format's columns with the file's own header names (`--map 手机=phone`) put first;
    `--map 列名=traits.NAME` carries any other column as a text trait."""
    by_field: dict[str, list[str]] = {}
    for header, field_name in mapping.items():
        by_field.setdefault(field_name, []).append(header)
    known = {c.field for c in columns}
    extra = tuple(
        Column(f, tuple(headers), "text")
        for f, headers in by_field.items()
        if f.startswith("traits.") and len(f) > len("traits.")
    )
    unknown = sorted(set(by_field) - known - {c.field for c in extra})
    if unknown:
        raise InvalidInput(
            f"映射到未知字段 / --map names unknown fields {unknown}; known: {sorted(known)} or traits.NAME",
            code="invalid_mapping",
        )
    mapped = tuple(
        Column(c.field, (*by_field.get(c.field, ()), *c.aliases), c.kind, c.required) for c in columns
    )
    return mapped + extra


def _bad(report: ImportReport, problem: Problem) -> None:
    report.bad_rows += 1
    report.add_problem(problem)


def _merge_problems(report: ImportReport, output: Output) -> None:
    for problem in output.problems:
        _bad(report, problem)
    report.skipped.update(output.skipped)
    report.problems.sort(key=lambda p: p.line)


def _encode(source: SourceInfo, output: Output, report: ImportReport) -> list[tuple[str, bytes]]:
    """(messageId, completed message) for every built message, validated like collected ones."""
    received_at = datetime.now(UTC)
    envelope = Envelope()
    encoded: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for built in output.messages:
        mid = message_id(source, built.key)
        if mid in seen:  # the same order twice in one file (an export with repeated rows)
            continue
        seen.add(mid)
        built.message["messageId"] = mid
        try:
            encoded.append((mid, complete(built.message, None, envelope, received_at)))
        except MessageError as err:  # a format bug more than a file problem, but never silent
            raise InvalidInput(
                f"第 {built.line} 行 / line {built.line}: {err.message}", code=err.code
            ) from None
        report.events[str(built.message.get("event") or built.message["type"])] += 1
    return encoded


def _not_stored(
    platform: Platform, source: SourceInfo, encoded: list[tuple[str, bytes]]
) -> list[tuple[str, bytes]]:
    if not encoded:
        return []
    events = platform.warehouse.table("events")
    stored_ids = platform.warehouse.execute(
        events.filter((events.workspace_id == source.workspace_id) & (events.source_id == source.id)).select(
            "message_id"
        )
    )
    stored = set(stored_ids.column("message_id").to_pylist())
    return [(mid, part) for mid, part in encoded if mid not in stored]


def _write(platform: Platform, source: SourceInfo, parts: list[bytes], progress: Progress | None) -> None:
    received_at = datetime.now(UTC)
    batches = [
        QueuedBatch(source.workspace_id, source.id, received_at, len(chunk), b"[" + b",".join(chunk) + b"]")
        for chunk in (parts[i : i + _BATCH_MESSAGES] for i in range(0, len(parts), _BATCH_MESSAGES))
    ]
    # One transaction: a file is imported whole or not at all.
    with platform.engine.begin() as conn:
        for i in range(0, len(batches), 50):
            platform.queue.append_in(conn, batches[i : i + 50])
            if progress is not None:
                progress("write", min((i + 50) * _BATCH_MESSAGES, len(parts)), len(parts))
    platform.backlog.on_commit(batches)
