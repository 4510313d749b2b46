"""File imports: platform order exports, POS, sign-up lists, live-stream exports, customer lists.

The file is the raw request body (any content type), so `curl --data-binary @orders.csv` works.
Nothing is written unless every row can be read (or `skip_bad` is set); the answer is the report.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from quanyu.api.bodies import read_limited
from quanyu.api.deps import Caller, PlatformDep
from quanyu.connectors.imports import catalog
from quanyu.connectors.imports.importer import parse_mapping, run_import

router = APIRouter(prefix="/api/v1/imports", tags=["imports 导入"])

# A million order rows of a marketplace export is about 400 MB.
MAX_IMPORT_BYTES = 1024 * 1024 * 1024

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unreadable file: wrong encoding, truncated, missing columns, wrong source type"},
    404: {"description": "No such source in this workspace"},
    413: {"description": "File too large"},
    422: {"description": "Bad rows (`details.problems` lists them by line); nothing was written"},
}


@router.get("/formats", operation_id="import_formats")
def import_formats(caller: Caller) -> list[dict[str, Any]]:
    """Every import format with the header names it accepts for each field."""
    return catalog.describe()


@router.post("/{kind}", operation_id="import_file", responses=_RESPONSES)
async def import_file(
    kind: str,
    request: Request,
    caller: Caller,
    platform: PlatformDep,
    source_id: str,
    platform_name: Annotated[
        str | None,
        Query(
            alias="platform", description="orders: tmall | jd | youzan | douyin | xiaohongshu; live: douyin …"
        ),
    ] = None,
    dry_run: bool = False,
    skip_bad: bool = False,
    encoding: str = "auto",
    timezone: str | None = None,
    event_name: str | None = None,
    mapping: Annotated[
        list[str] | None, Query(alias="map", description="HEADER=field, for customer lists")
    ] = None,
) -> dict[str, Any]:
    """Import one file into a source; the report says what was read, skipped and written."""
    fmt = catalog.find(kind, platform_name)
    source = await run_in_threadpool(platform.sources.get, caller.workspace_id, source_id)
    data = await read_limited(request, MAX_IMPORT_BYTES)
    options = {k: v for k, v in (("event_name", event_name), ("platform", platform_name)) if v}
    report = await run_in_threadpool(
        run_import, platform, source, fmt, data, encoding=encoding, timezone=timezone, options=options,
        mapping=parse_mapping(mapping or []), dry_run=dry_run, skip_bad=skip_bad,
    )  # fmt: skip
    return report.public()
