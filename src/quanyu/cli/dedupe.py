"""`quanyu identity dedupe`: deduplicate a customer list CSV, no data directory needed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from quanyu.cli.output import emit_json, err_console, fail, pairs
from quanyu.errors import InvalidInput, QuanyuError
from quanyu.identity.dedupe import STAGES, DedupeSummary, dedupe_csv, parse_overrides
from quanyu.identity.matching import DEFAULT_THRESHOLD

_STAGE_LABELS = {
    "reading": "读取 / reading",
    "standardising": "标准化 / standardising",
    "training": "训练 / training",
    "scoring": "打分 / scoring",
    "clustering": "聚类 / clustering",
    "writing": "写出 / writing",
}


def dedupe(
    input_csv: Annotated[Path, typer.Argument(metavar="INPUT.csv", help="客户名单 / customer list (CSV)")],
    id_column: Annotated[str, typer.Option("--id-column", help="记录 ID 列 / the column of record ids")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="输出 / where to write record_id,cluster_id")
    ],
    threshold: Annotated[
        str,
        typer.Option(
            metavar="P",
            help=f"合并阈值 / match probability to merge at (0<P<1) [default: {DEFAULT_THRESHOLD}]",
        ),
    ] = str(DEFAULT_THRESHOLD),
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column", metavar="ROLE=NAME", help="指定列的角色 / map a column to a role, e.g. phone=手机"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="机器可读输出 / machine-readable output")] = False,
) -> None:
    """客户名单去重 / Deduplicate a customer list: writes record_id,cluster_id for every row.

    Columns map to roles by their header, in English or Chinese (姓名 → full_name, 手机号 → phone).

    Roles: first_name, last_name, full_name, birth_date, phone, email, address, street_number, city,
    district, postcode, region, national_id. --column ROLE=NAME overrides a guess.

    A cluster's id is its smallest record id; a row without duplicates is its own cluster.
    """
    try:
        summary = _run(
            input_csv, output, id_column, _threshold(threshold), parse_overrides(column or []), as_json
        )
    except QuanyuError as exc:
        fail(exc.message, exc.code, as_json)
        raise typer.Exit(1) from None
    if as_json:
        emit_json(summary.as_dict())
        return
    shown = {k: v for k, v in summary.as_dict().items() if k != "roles"}
    shown["roles"] = ", ".join(f"{role}={name}" for role, name in summary.roles.items())
    pairs(f"去重完成 / deduplicated → {output}", shown)


def _run(
    source: Path, output: Path, id_column: str, threshold: float, overrides: dict[str, str], as_json: bool
) -> DedupeSummary:
    if as_json:  # stderr carries only the error line in JSON mode
        return dedupe_csv(source, output, id_column, threshold, overrides)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task(_STAGE_LABELS[STAGES[0]], total=len(STAGES))

        def report(stage: str) -> None:
            progress.update(task, description=_STAGE_LABELS[stage], completed=STAGES.index(stage))

        summary = dedupe_csv(source, output, id_column, threshold, overrides, progress=report)
        progress.update(task, description="完成 / done", completed=len(STAGES))
    return summary


def _threshold(value: str) -> float:
    try:
        p = float(value)
    except ValueError:
        p = float("nan")
    if not 0 < p < 1:
        raise InvalidInput(
            f"阈值须在 0 和 1 之间 / --threshold must be between 0 and 1 (exclusive), got {value!r}",
            code="invalid_threshold",
        )
    return p
