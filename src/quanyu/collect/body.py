"""Request bodies: bounded gzip/deflate decompression, strict UTF-8, JSON parsing."""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from quanyu.errors import InvalidInput, PayloadTooLarge


def decode_body(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding, refusing anything that would grow past `limit` bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        data = raw
    elif encoding in ("gzip", "x-gzip", "deflate"):
        data = _inflate(raw, encoding, limit)
    else:
        raise InvalidInput(f"不支持的 Content-Encoding / unsupported Content-Encoding {encoding!r}")
    if len(data) > limit:
        raise PayloadTooLarge(
            f"请求体超过 {limit // 1024}KB / request body is {len(data)} bytes, over the {limit} byte limit",
            code="request_too_large",
        )
    return data


def _inflate(raw: bytes, encoding: str, limit: int) -> bytes:
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(
            f"无法解压请求体 / body is not valid {encoding}: {exc}", code="invalid_encoding"
        ) from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(
            f"解压后超过 {limit // 1024}KB / decompressed body exceeds {limit} bytes",
            code="request_too_large",
        )
    return data


def parse_json(data: bytes) -> Any:
    """Parse JSON; orjson rejects invalid UTF-8 and nesting deeper than 1024 levels."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"请求体不是合法 JSON / body is not valid JSON: {exc}", code="invalid_json"
        ) from exc
