"""One JSON error shape on every route: {"code", "message", "details"?}.

`code` and `message` at the top level are also what the Segment and RudderStack SDKs read.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from quanyu.api.responses import JSONBytes
from quanyu.errors import Overloaded, QuanyuError

log = logging.getLogger(__name__)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return body


def install(app: FastAPI) -> None:
    @app.exception_handler(QuanyuError)
    async def _domain(_: Request, exc: QuanyuError) -> JSONBytes:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Overloaded) else None
        return JSONBytes(error_body(exc.code, exc.message, exc.details), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONBytes:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()
        ]
        return JSONBytes(
            error_body("invalid_request", "请求参数无效 / invalid request parameters", details), 400
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONBytes:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONBytes(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONBytes:
        log.exception("unhandled error", exc_info=exc)
        return JSONBytes(error_body("internal_error", "服务器内部错误 / internal server error"), 500)
