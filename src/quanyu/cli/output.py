"""Printing: JSON for scripts, rich tables and messages for people."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

# Piped into a file or a CI log there is no terminal width to respect: print tables whole
# instead of rich's 80-column default, which would cut values off.
_PIPED_WIDTH = 160
console = Console() if sys.stdout.isatty() else Console(width=_PIPED_WIDTH)
err_console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=_PIPED_WIDTH)


def emit_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(title=title, show_lines=False)
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    console.print(t)


def pairs(title: str, data: dict[str, Any]) -> None:
    table(title, ["项 / field", "值 / value"], list(data.items()))


def fail(message: str, code: str = "error", as_json: bool = False) -> None:
    if as_json:
        sys.stderr.write(orjson.dumps({"code": code, "message": message}).decode() + "\n")
    else:
        err_console.print(f"[bold red]错误 / error[/]: {escape(message)}", soft_wrap=True)


def row_progress(disabled: bool) -> Progress:
    """The progress bar of long file work (imports), on stderr so `--json` output stays clean."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, transient=True, disable=disabled)  # fmt: skip
