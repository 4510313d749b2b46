"""Write-key authentication for the tracking API, cached because it runs on every request."""

from __future__ import annotations

import base64
import binascii
import threading
import time

from quanyu.collect.sources import SourceInfo, Sources
from quanyu.errors import Unauthorized

_HIT_TTL = 30.0
_MISS_TTL = 2.0


class WriteKeys:
    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self._cache: dict[str, tuple[SourceInfo | None, float]] = {}
        self._lock = threading.Lock()

    def resolve(self, write_key: str) -> SourceInfo:
        now = time.monotonic()
        cached = self._cache.get(write_key)
        if cached is None or cached[1] < now:
            source = self.sources.by_write_key(write_key)
            with self._lock:
                self._cache[write_key] = (source, now + (_HIT_TTL if source else _MISS_TTL))
        else:
            source = cached[0]
        if source is None:
            raise Unauthorized("写入密钥无效 / invalid write key", code="invalid_write_key")
        return source

    def authenticate(self, authorization: str | None, body_key: object) -> SourceInfo:
        """Pick the source from HTTP Basic (key as user) or the body's writeKey.

        A body key never reaches another workspace than the header's key.
        """
        header_key = basic_user(authorization)
        if header_key:
            source = self.resolve(header_key)
            if isinstance(body_key, str) and body_key and body_key != header_key:
                other = self.resolve(body_key)
                if other.workspace_id != source.workspace_id:
                    raise Unauthorized(
                        "请求体中的 writeKey 属于其他工作空间 / body writeKey belongs to another workspace",
                        code="write_key_mismatch",
                    )
            return source
        if isinstance(body_key, str) and body_key:
            return self.resolve(body_key)
        raise Unauthorized(
            "缺少写入密钥 / missing write key (HTTP Basic user or writeKey)", code="missing_write_key"
        )


def basic_user(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthorized(
            "Authorization 头无效 / malformed Basic authorization", code="invalid_write_key"
        ) from exc
    return decoded.partition(":")[0] or None
