"""Segment-compatible HTTP Tracking API: /v1/identify|track|page|screen|group|alias|batch."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from quanyu.api.deps import get_platform
from quanyu.api.responses import JSONBytes
from quanyu.collect.body import decode_body, parse_json
from quanyu.collect.limits import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_BYTES
from quanyu.collect.messages import Envelope
from quanyu.errors import InvalidInput, PayloadTooLarge

router = APIRouter(tags=["collect 采集"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid JSON or fields (the message is quarantined when the key is valid)"},
    401: {"description": "Missing or invalid write key"},
    413: {"description": "Too large"},
    429: {"description": "Backlog full; retry after Retry-After seconds"},
    503: {"description": "Storage could not commit; retry"},
}
_BODY = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}}


async def _collect(request: Request, kind: str | None) -> JSONBytes:
    platform = get_platform(request)
    limit = MAX_BATCH_BYTES if kind is None else MAX_EVENT_BYTES
    raw = await _read(request, limit)
    body = parse_json(decode_body(raw, request.headers.get("content-encoding"), limit))
    if not isinstance(body, dict):
        raise InvalidInput("请求体必须是 JSON 对象 / body must be a JSON object", code="invalid_json")
    source = platform.write_keys.authenticate(request.headers.get("authorization"), body.get("writeKey"))
    if kind is None:
        items, envelope = _unwrap_batch(body)
    else:
        items, envelope = [body], Envelope()
    future, receipt = platform.intake.accept(source, items, kind, envelope)
    await asyncio.wrap_future(future)
    if receipt.accepted == 0:
        first = receipt.quarantined[0]
        raise InvalidInput(first["message"], code=first["code"], details={"quarantined": receipt.quarantined})
    return JSONBytes(receipt.public())


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    encoded = request.headers.get("content-encoding", "identity").lower() not in ("", "identity")
    if declared and declared.isdigit() and int(declared) > limit and not encoded:
        raise PayloadTooLarge(
            f"请求体超过 {limit} 字节 / body exceeds {limit} bytes", code="request_too_large"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"请求体超过 {limit} 字节 / body exceeds {limit} bytes", code="request_too_large"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _unwrap_batch(body: dict[str, Any]) -> tuple[list[Any], Envelope]:
    items = body.get("batch")
    if not isinstance(items, list):
        raise InvalidInput("batch 必须是数组 / `batch` must be an array", code="invalid_batch")
    if not items:
        raise InvalidInput("batch 为空 / `batch` is empty", code="invalid_batch")
    if len(items) > MAX_BATCH_EVENTS:
        raise PayloadTooLarge(
            f"每批最多 {MAX_BATCH_EVENTS} 条 / at most {MAX_BATCH_EVENTS} events per batch, got {len(items)}",
            code="batch_too_large",
        )
    context, integrations, sent_at = body.get("context"), body.get("integrations"), body.get("sentAt")
    return items, Envelope(
        sent_at=sent_at if isinstance(sent_at, str) else None,
        context=context if isinstance(context, dict) else None,
        integrations=integrations if isinstance(integrations, dict) else None,
    )


def _route(kind: str | None) -> Any:
    async def endpoint(request: Request) -> JSONBytes:
        return await _collect(request, kind)

    return endpoint


for _kind in ("identify", "track", "page", "screen", "group", "alias"):
    router.add_api_route(
        f"/v1/{_kind}",
        _route(_kind),
        methods=["POST"],
        operation_id=f"collect_{_kind}",
        summary=f"Segment {_kind}",
        responses=_RESPONSES,
        openapi_extra=_BODY,
    )
router.add_api_route(
    "/v1/batch",
    _route(None),
    methods=["POST"],
    operation_id="collect_batch",
    summary="Segment batch (≤500 KB, ≤2,500 events)",
    responses=_RESPONSES,
    openapi_extra=_BODY,
)
