"""CORS for the public browser-facing routes only (collection, the tracker and its settings).

网站跨域采集：仅对采集与网站脚本路由开放 CORS。Pages on any origin post events with a write key
that is public by design, and no cookie is sent (`Access-Control-Allow-Origin: *` forbids
credentials), so any origin may. The management API (/api/v1) gets no CORS headers at all.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_PREFIXES = ("/v1/", "/js/", "/analytics.js/")
# What the browser SDKs send: analytics.js (Content-Type, Authorization Basic), RudderStack
# (AnonymousId), gzip bodies (Content-Encoding).
_ALLOW_HEADERS = "Authorization, Content-Type, Content-Encoding, AnonymousId"
_PREFLIGHT = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": _ALLOW_HEADERS,
    "Access-Control-Max-Age": "86400",
}


def is_public(path: str) -> bool:
    return path.startswith(_PREFIXES)


class PublicCors:
    """Pure ASGI (no BaseHTTPMiddleware): the collector streams bodies and is on the hot path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await Response(status_code=204, headers=_PREFLIGHT)(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Access-Control-Allow-Origin"] = "*"
            await send(message)

        await self.app(scope, receive, send_with_cors)
