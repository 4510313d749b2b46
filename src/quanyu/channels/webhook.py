"""Webhook channel: POST each message as JSON to a URL the workspace configured.

Settings:
- `url` (required): http(s) target. Checked by the private-address guard when saved
  (`validate_settings`), again at every send and at every redirect hop (`netguard`).
- `secret` (stored encrypted): when set, each request is signed.
- `headers`: extra request headers (a string map), e.g. an API key the receiver expects.
- `allow`: CIDRs the guard permits despite being private (on-prem receivers, tests).
- `timeout`: seconds per request (default 10).
- `receiver_dedupes`: set it only when the receiver drops a repeated `Idempotency-Key`; the outbox
  then retries an `unknown` send (timeout, 5xx) instead of giving it up.

The body is `Message.content["body"]` when present, else the whole content. Headers sent:
`Idempotency-Key: <message key>`, `X-Quanyu-Timestamp: <unix seconds>` and, with a secret,
`X-Quanyu-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>`. A receiver checks
the signature over the raw bytes and rejects old timestamps (replay).

Outcomes: 2xx sent; 429 retry (Retry-After honoured); 408 and 5xx unknown (the receiver may have
acted); other 4xx and 3xx left after redirects failed; a connection that could not be opened retry;
a timeout or a dropped connection after the request went out unknown; a refused address failed.
After a connection failure or a timeout the rest of the batch is `retry` (error_code `not_attempted`)
without being tried, instead of each message waiting out the same timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from quanyu.channels.base import ChannelConfigError, Message, SendResult
from quanyu.channels.netguard import (
    PrivateAddressError,
    UnresolvableHostError,
    check_url,
    guarded_post,
    parse_allow,
)
from quanyu.channels.outcomes import parse_retry_after, send_each
from quanyu.channels.registry import AdapterType, register

USER_AGENT = "Quanyu-Webhook/1"
_ERROR_TEXT = 300  # characters of a refusing response's body kept in the error


def signature(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The `X-Quanyu-Signature` value: `v1=` + hex HMAC-SHA256 over `timestamp.body`."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    mac = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def validate_settings(settings: Mapping[str, Any]) -> None:
    """Refuse settings that cannot work: no/bad URL, a private target not allowed, bad extras.

    Resolves the host now, so a name that does not resolve is reported when the channel is saved
    (`UnresolvableHostError`, a `ChannelConfigError`).
    """
    url = settings.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ChannelConfigError("Webhook 缺少 url 设置 / the webhook needs a `url` setting")
    allow = _allow(settings)
    _headers(settings)
    _timeout(settings)
    check_url(url.strip(), allow)


def _allow(settings: Mapping[str, Any]) -> list[str]:
    allow = settings.get("allow") or []
    if isinstance(allow, str) or not all(isinstance(a, str) for a in allow):
        raise ChannelConfigError("allow 必须是网段列表 / `allow` must be a list of CIDRs")
    parse_allow(allow)
    return list(allow)


def _headers(settings: Mapping[str, Any]) -> dict[str, str]:
    headers = settings.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and "\n" not in k + v and "\r" not in k + v
        for k, v in headers.items()
    ):
        raise ChannelConfigError("headers 必须是字符串映射 / `headers` must map strings to strings")
    reserved = {"host", "content-length", "idempotency-key", "x-quanyu-timestamp", "x-quanyu-signature"}
    clash = sorted(k for k in headers if k.lower() in reserved)
    if clash:
        raise ChannelConfigError(f"headers 不能设置 {clash} / `headers` may not set {clash}")
    return dict(headers)


def _timeout(settings: Mapping[str, Any]) -> float:
    value = settings.get("timeout", 10.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 120:
        raise ChannelConfigError(
            "timeout 必须在 0 到 120 秒之间 / `timeout` must be between 0 and 120 seconds"
        )
    return float(value)


class WebhookAdapter:
    type = "webhook"
    channel = "webhook"

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        headers: Mapping[str, str] | None = None,
        allow: Sequence[str] = (),
        timeout: float = 10.0,
        receiver_dedupes: bool = False,
    ) -> None:
        self.url = url
        self.secret = secret
        self.headers = dict(headers or {})
        self.allow = list(allow)
        self.timeout = timeout
        # Only true when the receiver says it drops repeats of the Idempotency-Key.
        self.idempotent = receiver_dedupes

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        # One pool per batch: keep-alive across the batch, nothing left open between batches.
        # trust_env=False: a proxy would resolve the name itself, behind the guard's back.
        with httpx.Client(
            trust_env=False, follow_redirects=False, headers={"User-Agent": USER_AGENT}
        ) as client:
            # A receiver that is unreachable or hanging stops the batch (the rest would only wait
            # out the same timeout).
            return send_each(messages, lambda m: self._send_one(client, m),
                             lambda r: r.error_code in ("connect", "timeout"), "not_attempted")  # fmt: skip

    def _send_one(self, client: httpx.Client, message: Message) -> SendResult:
        content = message.content
        payload = content["body"] if "body" in content else dict(content)
        try:
            body = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:
            return SendResult(
                message.key,
                "failed",
                error_code="not_json",
                error=f"内容无法序列化 / body is not JSON: {exc}",
            )
        timestamp = str(int(time.time()))
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": message.key,
            "X-Quanyu-Timestamp": timestamp,
        }
        if self.secret:
            headers["X-Quanyu-Signature"] = signature(self.secret, timestamp, body)
        key = message.key
        try:
            response = guarded_post(
                self.url, body=body, headers=headers, allow=self.allow, timeout=self.timeout, client=client
            )
        except PrivateAddressError as exc:
            return SendResult(key, "failed", error_code="private_address", error=str(exc))
        except UnresolvableHostError as exc:
            return SendResult(key, "retry", error_code="connect", error=str(exc))
        except ChannelConfigError as exc:  # a redirect to a malformed URL
            return SendResult(key, "failed", error_code="bad_redirect", error=str(exc))
        except httpx.TooManyRedirects as exc:
            return SendResult(key, "failed", error_code="too_many_redirects", error=str(exc))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The connection never opened: the request was not written.
            return SendResult(key, "retry", error_code="connect", error=f"无法连接 / cannot connect: {exc!r}")
        except httpx.TimeoutException as exc:
            return SendResult(
                key, "unknown", error_code="timeout", error=f"请求超时 / request timed out: {exc!r}"
            )
        except httpx.HTTPError as exc:  # dropped connection, protocol error: the request may have arrived
            return SendResult(
                key, "unknown", error_code="transport", error=f"连接中断 / connection failed: {exc!r}"
            )
        status = response.status_code  # the body was read already (not streamed)
        text = response.text[:_ERROR_TEXT] if status >= 300 else ""
        provider_id = response.headers.get("x-request-id")
        code = str(status)
        if 200 <= status < 300:
            return SendResult(key, "sent", provider_id=provider_id)
        if status == 429:
            wait = parse_retry_after(response.headers.get("retry-after"))
            return SendResult(
                key, "retry", error_code=code, error=f"HTTP 429 {text}".strip(), retry_after=wait
            )
        if status == 408 or status >= 500:
            return SendResult(key, "unknown", error_code=code, error=f"HTTP {status} {text}".strip())
        return SendResult(key, "failed", error_code=code, error=f"HTTP {status} {text}".strip())

    def close(self) -> None:
        pass


def _factory(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> WebhookAdapter:
    # DNS may be down when a worker builds the adapter; each send checks again (and retries).
    with contextlib.suppress(UnresolvableHostError):
        validate_settings(settings)
    secret = secrets.get("secret") or settings.get("secret") or None
    return WebhookAdapter(
        str(settings["url"]).strip(),
        secret=str(secret) if secret else None,
        headers=_headers(settings),
        allow=_allow(settings),
        timeout=_timeout(settings),
        receiver_dedupes=bool(settings.get("receiver_dedupes", False)),
    )


register(
    AdapterType(type="webhook", channel="webhook", factory=_factory, label="Webhook", secrets=("secret",))
)
