"""`quanyu identity evaluate`: how right the resolved people are, against a ground truth.

The demo brand keeps one (`DATA_DIR/ground_truth.csv`). Evaluation reads the warehouse
directly, so it runs on a data directory no server holds (DuckDB has one writer); it resolves
the workspace first when nobody has yet (or when asked to with `--rebuild`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from quanyu.cli.output import console, emit_json, fail, table
from quanyu.errors import Conflict, InvalidInput, QuanyuError
from quanyu.settings import load_settings
from quanyu.warehouse.base import Warehouse


def evaluate(
    ground_truth: Annotated[
        Path | None,
        typer.Option(
            "--ground-truth",
            help="基准CSV / ground-truth CSV: person_id,source_key,identifier_type,identifier_value "
            "(default: DATA_DIR/ground_truth.csv, as `quanyu demo` writes it)",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", envvar="QUANYU_DATA_DIR", help="数据目录 / data directory")
    ] = None,
    workspace: Annotated[str | None, typer.Option("--workspace", help="workspace id")] = None,
    rebuild_first: Annotated[
        bool, typer.Option("--rebuild", help="先全量重建身份图 / rebuild the identity graph first")
    ] = False,
    examples: Annotated[int, typer.Option(min=0, max=100, help="错误示例数 / worst errors shown")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="机器可读输出 / machine-readable output")] = False,
) -> None:
    """准确率评估 / Score resolved profiles against a ground truth: pairwise and cluster P/R/F1."""
    try:
        result = _run(ground_truth, data_dir, workspace, rebuild_first, examples)
    except QuanyuError as exc:
        fail(exc.message, exc.code, as_json)
        raise typer.Exit(1) from None
    if as_json:
        emit_json(result)
    else:
        _print(result)


def _run(
    ground_truth: Path | None,
    data_dir: Path | None,
    workspace: str | None,
    rebuild_first: bool,
    examples: int,
) -> dict[str, Any]:
    from quanyu.cli.backend import LocalBackend
    from quanyu.identity.evaluate import evaluate_workspace
    from quanyu.identity.resolve import rebuild
    from quanyu.server import running_server

    settings = load_settings(**({"data_dir": data_dir} if data_dir is not None else {}))
    truth = ground_truth or settings.data_dir / "ground_truth.csv"
    if not truth.is_file():
        raise InvalidInput(f"找不到基准数据 / no ground truth at {truth}: pass --ground-truth")
    url = running_server(settings.data_dir)
    if url:
        raise Conflict(
            f"服务 {url} 正占用该数据目录，评估需直接读取仓库，请先停止服务 / a server at {url} holds "
            f"{settings.data_dir}: evaluation reads the warehouse directly, stop the server first"
        )
    backend = LocalBackend(settings, workspace)
    try:
        warehouse, workspace_id = backend.platform.warehouse, backend.workspace_id
        rebuilt = None
        if rebuild_first or not _has_nodes(warehouse, workspace_id):
            with console.status("重建身份图 / rebuilding the identity graph…", spinner="dots"):
                rebuilt = rebuild(warehouse, workspace_id).public()
        with console.status("评估中 / evaluating…", spinner="dots"):
            evaluation = evaluate_workspace(warehouse, workspace_id, truth, examples=examples)
    finally:
        backend.close()
    return {"ground_truth": str(truth), "rebuilt": rebuilt, **evaluation.public()}


def _has_nodes(warehouse: Warehouse, workspace_id: str) -> bool:
    nodes = warehouse.table("identity_nodes")
    found = warehouse.execute(nodes.filter(nodes.workspace_id == workspace_id).select("key").limit(1))
    return bool(found.num_rows)


def _print(result: dict[str, Any]) -> None:
    acc = result["accuracy"]
    pair, cluster = acc["pairwise"], acc["cluster"]
    table(
        "身份识别准确率 / identity accuracy",
        ["", "精确率 precision", "召回率 recall", "F1"],
        [
            ["成对 / pairwise", *(f"{pair[k]:.4f}" for k in ("precision", "recall", "f1"))],
            ["整人 / cluster", *(f"{cluster[k]:.4f}" for k in ("precision", "recall", "f1"))],
        ],
    )
    table(
        "规模 / counts",
        ["项 / item", "值 / value"],
        [
            ["评估的标识 / identifiers scored", f"{acc['items']:,}"],
            ["真实人数 / true people", f"{acc['true_clusters']:,}"],
            ["档案数 / profiles", f"{acc['predicted_clusters']:,}"],
            ["完全正确的档案 / profiles exactly one person", f"{acc['exact_clusters']:,}"],
            ["同人标识对 / true pairs", f"{acc['true_pairs']:,}"],
            ["同档案标识对 / predicted pairs", f"{acc['predicted_pairs']:,}"],
            ["正确的对 / correct pairs", f"{acc['correct_pairs']:,}"],
        ],
    )
    left_out = [
        ("未计分: 规范化拒绝 / refused as junk or malformed", result["refused"]),
        ("未计分: 部分证据 / partial evidence, never linked", result["unlinkable"]),
        ("未计分: 多人共用 / shared by several people", result["shared"]),
        ("图中缺失 / missing from the graph", result["missing"]),
        ("基准未知的图节点 / graph identifiers unknown to the truth", result["unknown"]),
    ]
    rows = [[what, kind, f"{n:,}"] for what, counts in left_out for kind, n in counts.items()]
    if rows:
        table("未计分与缺失 / left out and missing", ["", "type", "count"], rows)
    _print_errors("错误合并 / wrongly merged (worst)", result["merged"], "person_id")
    _print_errors("错误拆分 / wrongly split (worst)", result["split"], "profile_id")


def _print_errors(title: str, errors: list[dict[str, Any]], part: str) -> None:
    if not errors:
        return
    whole = "profile_id" if part == "person_id" else "person_id"
    rows = [
        [e[whole] if i == 0 else "", m[part], m["identifiers"], ", ".join(m["keys"])]
        for e in errors
        for i, m in enumerate(e["members"])
    ]
    table(title, [whole, part, "n", "标识 / identifiers"], rows)
