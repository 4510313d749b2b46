"""Generic inbound webhooks: `POST /connect/webhook/{source_id}` (HMAC-signed JSON mapped to
Segment messages by the source's mapping), and the management routes that save and try a mapping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from quanyu.api.bodies import read_limited
from quanyu.api.deps import Caller, PlatformDep, get_platform
from quanyu.collect.committer import Submission
from quanyu.collect.messages import Envelope, MessageError, complete
from quanyu.collect.quarantine import Reject
from quanyu.collect.sources import SourceInfo
from quanyu.connectors import webhook_in
from quanyu.errors import Conflict, Forbidden, NotFound
from quanyu.platform import Platform
from quanyu.segments import webhook_export

router = APIRouter(tags=["connect 连接器"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not JSON, no items at the items path, or too many items"},
    403: {"description": "Bad or missing signature (invalid_signature), stale timestamp (stale_timestamp)"},
    404: {"description": "No enabled webhook source (or source with a mapping) with this id"},
    409: {"description": "The source has no mapping yet (mapping_missing)"},
    413: {"description": "Body too large"},
    429: {"description": "Backlog full"},
}


def _webhook_source(platform: Platform, source_id: str) -> tuple[SourceInfo, str]:
    source = platform.sources.by_id(source_id)
    if source is None or (source.type != "webhook" and "mapping" not in source.settings):
        raise NotFound(f"Webhook 来源不存在 / webhook source {source_id} not found", code="source_not_found")
    secret = platform.sources.secret_settings(source.workspace_id, source.id).get("secret", "")
    if not secret:
        # Unsigned pushes are never accepted: anyone who guessed the URL could write events.
        raise Forbidden(
            "来源未配置 secret / the source has no secret configured", code="webhook_not_configured"
        )
    return source, secret


def _mapping_of(source: SourceInfo) -> webhook_in.Mapping:
    raw = source.settings.get("mapping")
    if raw is None:
        raise Conflict("来源尚未配置映射 / the source has no mapping yet (PUT /api/v1/sources/{id}/mapping)",
                       code="mapping_missing")  # fmt: skip
    return webhook_in.parse_mapping(raw)


@router.post("/connect/webhook/{source_id}", operation_id="webhook_push", responses=_RESPONSES)
async def webhook_push(source_id: str, request: Request) -> dict[str, Any]:
    """Receive a signed JSON push; answers how many items were accepted and which were
    quarantined (index, JSON path, reason). Retried items are stored once."""
    platform = get_platform(request)
    source, secret = await run_in_threadpool(_webhook_source, platform, source_id)
    body = await read_limited(request, webhook_in.MAX_BODY_BYTES)
    webhook_in.verify(secret, body, request.headers.get(webhook_in.SIGNATURE_HEADER),
                      request.headers.get(webhook_in.TIMESTAMP_HEADER),
                      require_timestamp=bool(source.settings.get("require_timestamp")))  # fmt: skip
    mapping = _mapping_of(source)
    items = webhook_in.map_items(mapping, webhook_in.decode(body), source.id)
    mapped = [i for i in items if i.message is not None]
    received_at = datetime.now(UTC)
    # Items the mapping could not read are quarantined with the payload path at fault, next to
    # what intake refuses, so operators see both in `quanyu quarantine list`.
    failed = [i for i in items if i.error is not None]
    rejects = [Reject(source.workspace_id, source.id, received_at, i.error.code, i.problem()["message"],
                      orjson.dumps(i.raw, option=orjson.OPT_NON_STR_KEYS).decode(), i.index)
               for i in failed if i.error is not None]  # fmt: skip
    futures = []
    quarantined = [i.problem() for i in failed]
    if mapped:
        future, receipt = platform.intake.accept(source, [i.message for i in mapped], None, Envelope())
        futures.append(future)
        for q in receipt.quarantined:
            item = mapped[q["index"]]
            quarantined.append({**q, "index": item.index, "path": item.path})
    if rejects:
        futures.append(platform.intake.committer.submit(Submission([], rejects)))
    for future in futures:
        await asyncio.wrap_future(future)
    quarantined.sort(key=lambda q: q["index"])
    return {"success": True, "items": len(items), "accepted": len(items) - len(quarantined),
            "quarantined": quarantined}  # fmt: skip


# -- management: save and try a mapping ------------------------------------------------------------


class MappingPreview(BaseModel):
    payload: Any = Field(description="a sample body as the sender would POST it")
    mapping: dict[str, Any] | None = Field(
        default=None, description="a mapping to try (default: the saved one)"
    )


@router.put("/api/v1/sources/{source_id}/mapping", operation_id="put_source_mapping", tags=["sources 来源"])
def put_mapping(source_id: str, caller: Caller, platform: PlatformDep,
                mapping: Annotated[dict[str, Any], Body(description="docs/connectors-webhooks-forms.md")],
                ) -> dict[str, Any]:  # fmt: skip
    """Validate and save a source's webhook mapping; errors name their JSON path in the mapping."""
    platform.sources.get(caller.workspace_id, source_id)
    webhook_in.parse_mapping(mapping)
    webhook_in.save_mapping(platform.engine, caller.workspace_id, source_id, mapping)
    return {"source_id": source_id, "mapping": mapping}


@router.post("/api/v1/sources/{source_id}/mapping/preview", operation_id="preview_source_mapping",
             tags=["sources 来源"])  # fmt: skip
def preview_mapping(
    source_id: str, body: MappingPreview, caller: Caller, platform: PlatformDep
) -> dict[str, Any]:
    """Map a sample payload without storing anything: the messages it would produce and, per item,
    what would be quarantined and where in the payload."""
    source = platform.sources.get(caller.workspace_id, source_id)
    mapping = webhook_in.parse_mapping(body.mapping) if body.mapping is not None else _mapping_of(source)
    now = datetime.now(UTC)
    messages: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for item in webhook_in.map_items(mapping, body.payload, source.id):
        if item.message is None:
            errors.append(item.problem())
            continue
        try:
            # The same check intake makes, so the preview shows what would really be stored.
            complete(item.message, None, Envelope(), now)
        except MessageError as err:
            errors.append({"index": item.index, "path": item.path, "code": err.code, "message": err.message})
            continue
        messages.append({"index": item.index, "path": item.path, "message": item.message})
    return {"messages": messages, "errors": errors}


# -- segment members out to a webhook --------------------------------------------------------------


class WebhookExport(BaseModel):
    url: str = Field(
        min_length=1, max_length=2000, description="http(s) receiver; private addresses are refused"
    )
    secret: str = Field(
        min_length=1, max_length=500, description="HMAC key (X-Quanyu-Signature, as webhooks)"
    )
    format: Literal["json"] = "json"
    batch_size: int = Field(default=webhook_export.DEFAULT_BATCH, ge=1, le=webhook_export.MAX_BATCH)
    allow: list[str] = Field(
        default_factory=list, description="CIDRs permitted despite being private (on-prem)"
    )
    timeout: float = Field(default=10.0, gt=0, le=120)


@router.post("/api/v1/segments/{segment_id}/export/webhook", operation_id="export_segment_webhook",
             tags=["segments 分群"])  # fmt: skip
def export_segment_webhook(segment_id: str, body: WebhookExport, caller: Caller,
                           platform: PlatformDep) -> dict[str, Any]:  # fmt: skip
    """POST every member to a URL in signed JSON batches (retried on 429/5xx with backoff);
    answers the batches and members sent, and where it stopped if a batch was refused."""
    platform.segments.current(caller.workspace_id, segment_id)  # 404 for unknown and deleted ones
    return webhook_export.export_to_webhook(platform.warehouse, caller.workspace_id, segment_id, body.url.strip(),
                                            body.secret, batch_size=body.batch_size, allow=body.allow,
                                            timeout=body.timeout)  # fmt: skip
