"""Reading request bodies with a size limit enforced while streaming (a declared length is
checked first, but a client may lie or send chunked)."""

from __future__ import annotations

from fastapi import Request

from quanyu.errors import PayloadTooLarge


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    too_large = PayloadTooLarge(
        f"请求体超过 {limit} 字节 / body exceeds {limit} bytes", code="request_too_large"
    )
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
