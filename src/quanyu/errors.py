"""Domain errors. Each carries a stable code, an HTTP status and a bilingual message.

The API turns them into the one JSON error shape; the CLI prints the message.
"""

from __future__ import annotations

from typing import Any


class QuanyuError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class InvalidInput(QuanyuError):
    status = 400
    code = "invalid_request"


class Unauthorized(QuanyuError):
    status = 401
    code = "unauthorized"


class Forbidden(QuanyuError):
    status = 403
    code = "forbidden"


class NotFound(QuanyuError):
    status = 404
    code = "not_found"


class Conflict(QuanyuError):
    status = 409
    code = "conflict"


class PayloadTooLarge(QuanyuError):
    status = 413
    code = "payload_too_large"


class Overloaded(QuanyuError):
    status = 429
    code = "backlog_full"

    def __init__(self, message: str, *, retry_after: int = 5, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class StorageUnavailable(QuanyuError):
    status = 503
    code = "storage_unavailable"


class QueryTimeout(QuanyuError):
    status = 504
    code = "query_timeout"
