"""Segment members pushed to a webhook in signed JSON batches (a CRM, a data tool, an ad
platform's audience uploader behind a small adapter).

Each batch is `POST {url}` with the body
`{"segment_id", "export_id", "batch", "batches", "total", "members": [...]}` and the headers of the
webhook channel (`channels.webhook`): `X-Quanyu-Timestamp`, `X-Quanyu-Signature: v1=<hex
HMAC-SHA256(secret, timestamp + "." + body)>` and `Idempotency-Key: <export_id>:<batch>` (the same
on every retry of a batch, so a receiver can drop repeats). Requests go through the private-address
guard (`channels.netguard`): the URL, every redirect hop and the address connected to.

429 and 5xx (and connections that fail or time out) are retried with exponential backoff
(Retry-After honoured, capped); any other answer, or a batch still failing after the last
attempt, stops the export and the report says how far it got.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson

from quanyu.channels.base import ChannelConfigError
from quanyu.channels.netguard import PrivateAddressError, check_url, guarded_post, parse_allow
from quanyu.channels.outcomes import parse_retry_after
from quanyu.channels.webhook import USER_AGENT, signature
from quanyu.errors import InvalidInput
from quanyu.segments.membership import _plain, all_members
from quanyu.warehouse.base import Warehouse

DEFAULT_BATCH = 500
MAX_BATCH = 5000
MAX_ATTEMPTS = 5
BACKOFF_SECONDS = 1.0  # 1, 2, 4, 8 s between attempts
MAX_WAIT_SECONDS = 30.0
_ERROR_TEXT = 300


def check_target(url: str, allow: Sequence[str] = ()) -> None:
    """Refuse a URL the guard would refuse, before anything is read or sent (InvalidInput)."""
    try:
        parse_allow(allow)
        check_url(url, allow)
    except PrivateAddressError as exc:
        raise InvalidInput(str(exc), code="private_address") from None
    except ChannelConfigError as exc:  # a malformed URL, an unresolvable host, a bad CIDR
        raise InvalidInput(str(exc), code="invalid_url") from None


def export_to_webhook(warehouse: Warehouse, workspace_id: str, segment_id: str, url: str, secret: str, *,
                      batch_size: int = DEFAULT_BATCH, allow: Sequence[str] = (), timeout: float = 10.0,
                      sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:  # fmt: skip
    """Send every member of the segment; returns what was sent (and why it stopped, if it did)."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise InvalidInput(
            f"batch_size 须在 1–{MAX_BATCH} / batch_size must be 1–{MAX_BATCH}", code="invalid_batch_size"
        )
    if not secret:
        raise InvalidInput(
            "需要 secret 用于签名 / a secret is required to sign the batches", code="missing_secret"
        )
    check_target(url, allow)
    rows = [_plain(r) for r in all_members(warehouse, workspace_id, segment_id).to_pylist()]
    export_id = f"exp_{uuid.uuid4().hex[:16]}"
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)] or [[]]
    report: dict[str, Any] = {"segment_id": segment_id, "export_id": export_id, "status": "sent",
                              "batches": len(batches), "batches_sent": 0, "members": len(rows),
                              "members_sent": 0, "attempts": 0}  # fmt: skip
    # One pool for the export (keep-alive); trust_env=False so no proxy resolves names behind the guard.
    with httpx.Client(trust_env=False, follow_redirects=False, headers={"User-Agent": USER_AGENT}) as client:
        for number, members in enumerate(batches, start=1):
            body = orjson.dumps({"segment_id": segment_id, "export_id": export_id, "batch": number,
                                 "batches": len(batches), "total": len(rows), "members": members},
                                default=str)  # fmt: skip
            error = _send(client, url, body, secret, f"{export_id}:{number}", allow, timeout, sleep, report)
            if error is not None:
                report.update(status="failed", error=error, failed_batch=number)
                break
            report["batches_sent"] += 1
            report["members_sent"] += len(members)
    return report


def _send(client: httpx.Client, url: str, body: bytes, secret: str, key: str, allow: Sequence[str],
          timeout: float, sleep: Callable[[float], None], report: dict[str, Any]) -> str | None:  # fmt: skip
    """None once the batch is accepted (2xx), else why it was given up."""
    error = ""
    for attempt in range(MAX_ATTEMPTS):
        report["attempts"] += 1
        # Signed afresh on each attempt: a receiver's replay window counts from the timestamp.
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "Idempotency-Key": key, "X-Quanyu-Timestamp": timestamp,
                   "X-Quanyu-Signature": signature(secret, timestamp, body)}  # fmt: skip
        wait = BACKOFF_SECONDS * 2**attempt
        try:
            response = guarded_post(
                url, body=body, headers=headers, allow=allow, timeout=timeout, client=client
            )
        except PrivateAddressError as exc:  # a redirect towards the private network
            return f"private_address: {exc}"
        except ChannelConfigError as exc:  # a malformed redirect, a name that stopped resolving
            error = f"config: {exc}"
        except httpx.TooManyRedirects as exc:
            return f"too_many_redirects: {exc}"
        except httpx.HTTPError as exc:  # connection refused, timeout, dropped: try again
            error = f"transport: {exc!r}"
        else:
            status = response.status_code
            if 200 <= status < 300:
                return None
            error = f"HTTP {status} {response.text[:_ERROR_TEXT]}".strip()
            if status != 429 and status < 500:
                return error
            after = parse_retry_after(response.headers.get("retry-after"))
            wait = wait if after is None else after
        if attempt + 1 < MAX_ATTEMPTS:
            sleep(min(wait, MAX_WAIT_SECONDS))
    return error
