"""Printing: JSON for scripts, rich tables and messages for people."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


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
