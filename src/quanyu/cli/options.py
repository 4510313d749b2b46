"""Options and helpers every CLI command shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from quanyu.cli.output import fail
from quanyu.errors import QuanyuError
from quanyu.settings import Settings, load_settings

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", envvar="QUANYU_DATA_DIR", help="数据目录 / data directory")
]
ApiUrl = Annotated[str | None, typer.Option("--api-url", envvar="QUANYU_API_URL", help="running server URL")]
Token = Annotated[str | None, typer.Option("--token", envvar="QUANYU_API_TOKEN", help="management token")]
Workspace = Annotated[str | None, typer.Option("--workspace", help="workspace id (local mode)")]
Json = Annotated[bool, typer.Option("--json", help="机器可读输出 / machine-readable output")]


def settings_from(data_dir: Path | None, **extra: Any) -> Settings:
    values = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return load_settings(**values)


def guard(as_json: bool) -> Any:
    """Turn domain errors into a readable message and exit code 1."""

    class _Guard:
        def __enter__(self) -> None:
            return None

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            if isinstance(exc, QuanyuError):
                fail(exc.message, exc.code, as_json)
                raise typer.Exit(1)

    return _Guard()
