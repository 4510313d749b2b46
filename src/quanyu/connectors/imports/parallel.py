"""Large files on every core: rows split by order (so an order's lines stay together), each
part checked, built and serialised in its own process, the results put back together.

Only the parent writes: workers return serialised messages and problems, so a file is still
written in one transaction, or not at all. Workers are spawned, not forked: the parent holds
database connections and threads that a forked child must not inherit.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context

import numpy as np
import pyarrow as pa

from quanyu.collect.sources import SourceInfo
from quanyu.connectors.imports.columnar import read_table, unwrap
from quanyu.connectors.imports.columns import CellReader, Column, layout
from quanyu.connectors.imports.formats import Context, Format
from quanyu.connectors.imports.report import Problem

# Below this a process pool costs more (about a second to start) than it saves.
PARALLEL_ROWS = 200_000
# Which columns keep rows together: an order's item rows must reach the same worker.
_GROUP_FIELDS = {"orders": ("order_id",), "pos": ("store_id", "receipt_no")}


@dataclass
class Part:
    encoded: list[tuple[str, bytes]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    built_problems: list[Problem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)


def workers_for(rows: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 4) if rows >= PARALLEL_ROWS else 1


def partitions(
    table: pa.Table, header: Sequence[str], columns: Sequence[Column], kind: str, parts: int
) -> list[np.ndarray]:
    """Row indices of each part: by a hash of the group key, or in contiguous blocks."""
    position = {name: i for i, name in enumerate(header)}
    keys: list[list[str]] = []
    for field_name in _GROUP_FIELDS.get(kind, ()):
        column = next((c for c in columns if c.field == field_name), None)
        name = next((a for a in column.aliases if a in position), None) if column else None
        if name is not None:
            keys.append(unwrap(table.column(position[name]).combine_chunks()).to_pylist())
    if not keys:
        return [block for block in np.array_split(np.arange(table.num_rows), parts) if len(block)]
    joined = keys[0] if len(keys) == 1 else ["\x1f".join(k) for k in zip(*keys, strict=True)]
    assignment = np.fromiter((hash(k) % parts for k in joined), dtype=np.int64, count=len(joined))
    return [np.nonzero(assignment == p)[0] for p in range(parts)]


def run_parts(
    table: pa.Table, header: Sequence[str], columns: tuple[Column, ...], label: str, zone: str, fmt: Format,
    source: SourceInfo, options: dict[str, str], parts: list[np.ndarray],
) -> list[Part]:  # fmt: skip
    jobs = [(table.take(pa.array(idx)), [int(i) + 2 for i in idx], list(header), columns, label, zone, fmt.kind,
             fmt.name, source, options) for idx in parts]  # fmt: skip
    with ProcessPoolExecutor(len(jobs), mp_context=get_context("spawn")) as pool:
        return list(pool.map(_part, *zip(*jobs, strict=True)))


def _part(
    table: pa.Table, lines: list[int], header: list[str], columns: tuple[Column, ...], label: str, zone: str,
    kind: str, name: str, source: SourceInfo, options: dict[str, str],
) -> Part:  # fmt: skip
    from quanyu.connectors.imports import catalog
    from quanyu.connectors.imports.importer import encode
    from quanyu.connectors.imports.report import ImportReport

    fmt = catalog.find(kind, name if kind in ("orders",) else None)
    reader = CellReader(layout(header, columns, label), zone)
    parsed, problems = read_table(table, header, reader.layout, reader, lines)
    output = fmt.build(parsed, Context(source, options))
    report = ImportReport(kind, name, source.id)
    part = Part(problems=problems, built_problems=output.problems, skipped=output.skipped)
    # Built even when some rows are bad: the parent decides whether they stop the import.
    part.encoded = encode(source, output, report)
    part.events = report.events
    return part
