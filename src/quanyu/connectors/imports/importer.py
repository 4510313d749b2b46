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

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
import pyarrow as pa

from quanyu.collect.limits import MAX_EVENT_BYTES, MAX_ID_LENGTH
from quanyu.collect.queue import QueuedBatch
from quanyu.collect.sources import SourceInfo
from quanyu.connectors.imports import parallel
from quanyu.connectors.imports.columnar import read_table, table_of
from quanyu.connectors.imports.columns import CellError, CellReader, Column, layout
from quanyu.connectors.imports.files import AUTO, FileProblem, Row, csv_rows, decode, json_rows, width_problem
from quanyu.connectors.imports.formats import Context, Format, Output, Parsed
from quanyu.connectors.imports.report import BadRows, ImportReport, Problem
from quanyu.errors import InvalidInput

if TYPE_CHECKING:
    from quanyu.platform import Platform

_NAMESPACE = uuid.UUID("2f0b7f4e-8c1d-4b53-9a51-5175616e7969")
_NAMESPACE_BYTES = _NAMESPACE.bytes
_BATCH_MESSAGES = 2_000
# Progress is reported as (stage, done, total): "read" counts rows, "write" counts messages.
Progress = Callable[[str, int, int], None]


def message_id(source: SourceInfo, key: str) -> str:
    """The stable id of an imported message: the same order from the same source is one message."""
    return _uuid5(f"{source.workspace_id}/{source.id}/{key}")


def _uuid5(name: str) -> str:
    # uuid.uuid5(_NAMESPACE, name), without building a UUID object: a million ids a run.
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
    encoded = _process(decoded.text, fmt, mapping or {}, zone, source, options or {}, report, progress)
    if report.bad_rows and not skip_bad:
        report.seconds = time.perf_counter() - started
        raise BadRows(report)
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


def _process(
    text: str, fmt: Format, mapping: dict[str, str], zone: str, source: SourceInfo, options: dict[str, str],
    report: ImportReport, progress: Progress | None,
) -> list[tuple[str, bytes]]:  # fmt: skip
    """Every row read and built: (messageId, serialised message) of the good ones; problems,
    skips and counts go to `report`."""
    if mapping and not fmt.mappable:
        raise InvalidInput(f"{fmt.label} 不支持 --map / {fmt.label} takes no --map", code="invalid_mapping")
    columns = _mapped(fmt.columns, mapping) if mapping else fmt.columns
    header, rows = _rows(text)
    reader = CellReader(layout(header, columns, fmt.label), zone)
    table = None if text.lstrip()[:1] in ("[", "{") else table_of(text, header)
    workers = parallel.workers_for(table.num_rows) if table is not None else 1
    if table is not None and workers > 1:
        report.rows = table.num_rows
        chunks = parallel.partitions(table, header, columns, fmt.kind, workers)
        merged: list[tuple[str, bytes]] = []
        seen: set[str] = set()
        for part in parallel.run_parts(table, header, columns, fmt.label, zone, fmt, source, options, chunks):
            for problem in [*part.problems, *part.built_problems]:
                _bad(report, problem)
            report.skipped.update(part.skipped)
            report.events.update(part.events)
            for item in part.encoded:
                if item[0] not in seen:  # rows of a row-based format repeated across parts
                    seen.add(item[0])
                    merged.append(item)
        report.problems.sort(key=lambda p: p.line)
        if progress is not None:
            progress("read", report.rows, report.rows)
        return merged
    parsed = _read(header, rows, table, reader, report, progress)
    output = fmt.build(parsed, Context(source, options))
    _merge_problems(report, output)
    return encode(source, output, report)


def _read(
    header: list[str], rows: Iterator[Row], table: pa.Table | None, reader: CellReader, report: ImportReport,
    progress: Progress | None,
) -> list[Parsed]:  # fmt: skip
    if table is not None:
        fast, problems = read_table(table, header, reader.layout, reader)
        report.rows = table.num_rows
        for problem in problems:
            _bad(report, problem)
        if progress is not None:
            progress("read", report.rows, report.rows)
        if not report.rows:
            raise FileProblem("文件只有表头，没有数据 / the file has a header but no rows", code="no_rows")
        return fast
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


def encode(source: SourceInfo, output: Output, report: ImportReport) -> list[tuple[str, bytes]]:
    """(messageId, serialised message) for every built message.

    The messages are built by the formats from typed cells, not taken from a client, so the
    collector's per-message validation is reduced to what can still go wrong: the size limit
    and the ids' length. Times are already UTC ISO-8601, kept as `originalTimestamp` too, which
    is what the collector's completion produces for a message without `sentAt`.
    """
    received = datetime.now(UTC).isoformat()
    prefix = f"{source.workspace_id}/{source.id}/"
    encoded: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for built in output.messages:
        mid = _uuid5(prefix + built.key)
        if mid in seen:  # the same order twice in one file (an export with repeated rows)
            continue
        seen.add(mid)
        message = built.message
        message["messageId"] = mid
        if "timestamp" in message:
            message["originalTimestamp"] = message["timestamp"]
        else:
            message["timestamp"] = received
        part = orjson.dumps(message)
        if len(part) > MAX_EVENT_BYTES or any(len(str(message.get(k, ""))) > MAX_ID_LENGTH for k in _IDS):
            raise InvalidInput(
                f"第 {built.line} 行生成的消息过大 / line {built.line} makes a message over the limits "
                f"({len(part)} bytes; ids at most {MAX_ID_LENGTH} characters)",
                code="event_too_large",
            )
        encoded.append((mid, part))
        report.events[str(message.get("event") or message["type"])] += 1
    return encoded


_IDS = ("userId", "anonymousId")


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
