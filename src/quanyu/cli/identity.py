"""`quanyu identity …` and `quanyu profiles …`: resolve people, find one, deduplicate lists."""

from __future__ import annotations

import typer

identity_app = typer.Typer(help="身份识别 / identity resolution", no_args_is_help=True)
profiles_app = typer.Typer(help="用户档案 / customer profiles", no_args_is_help=True)

from quanyu.cli.evaluate import evaluate  # noqa: E402

identity_app.command("evaluate")(evaluate)

from quanyu.cli.dedupe import dedupe  # noqa: E402

identity_app.command("dedupe")(dedupe)
