"""The fast (Arrow, several processes) and careful (row by row) paths give the same result."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quanyu.connectors.imports import catalog, parallel
from quanyu.connectors.imports.importer import _NAMESPACE, _uuid5, run_import
from quanyu.connectors.imports.report import BadRows
from quanyu.platform import Platform
from testkit import new_tenant

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "imports"


def _source(platform: Platform, type_: str) -> Any:
    t = new_tenant(platform, type_)
    return platform.sources.get(t.workspace_id, t.source_id)


def _many_orders(copies: int) -> bytes:
    lines = (EXAMPLES / "jd_orders.csv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    out = [header]
    for n in range(copies):
        out += [f"7{n:04d}{row}" for row in rows]  # a new order number per copy
    return ("\n".join(out) + "\n").encode()


def test_parallel_parts_match_one_process(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _many_orders(50)
    one = run_import(platform, _source(platform, "jd"), catalog.find("orders", "jd"), data, dry_run=True)
    monkeypatch.setattr(parallel, "workers_for", lambda rows: 2)
    many = run_import(platform, _source(platform, "jd"), catalog.find("orders", "jd"), data, dry_run=True)
    assert (many.rows, many.new, dict(many.events)) == (one.rows, one.new, dict(one.events))
    assert one.new == 150 and dict(one.events) == {"Order Completed": 100, "Order Cancelled": 50}


def test_parallel_parts_report_bad_rows_by_line(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _many_orders(20).decode().splitlines()
    text[39] = text[39].replace("2026-11-12 21:30:00", "2026-11-99 21:30:00")
    monkeypatch.setattr(parallel, "workers_for", lambda rows: 2)
    with pytest.raises(BadRows) as caught:
        run_import(
            platform, _source(platform, "jd"), catalog.find("orders", "jd"), ("\n".join(text) + "\n").encode()
        )
    assert [(p.line, p.column) for p in caught.value.report.problems] == [(40, "下单时间")]


def test_line_breaks_inside_cells_take_the_careful_path(platform: Platform) -> None:
    text = (EXAMPLES / "jd_orders.csv").read_text(encoding="utf-8")
    header, first, *rest = text.splitlines()
    first = first.replace("浙江 杭州市 西湖区 ****", '"浙江 杭州市\n西湖区 ****"')
    bad = rest[-1].replace("2026-11-13 08:00:00", "later")
    data = "\n".join([header, first, *rest[:-1], bad]) + "\n"
    with pytest.raises(BadRows) as caught:
        run_import(platform, _source(platform, "jd"), catalog.find("orders", "jd"), data.encode())
    assert caught.value.report.problems[0].line == 6  # the quoted line break counted


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_message_ids_are_uuid5(name: str) -> None:
    assert _uuid5(name) == str(uuid.uuid5(_NAMESPACE, name))
