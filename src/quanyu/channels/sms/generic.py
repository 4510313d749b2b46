"""A generic HTTP SMS gateway (`http_sms`): POST one JSON object per message to your own endpoint.

For brands whose SMS goes through an operator gateway, an aggregator or an in-house service that
is neither Aliyun nor Tencent: put a small HTTP shim in front of it and point this adapter at it.

Settings:
    url               required http(s) URL the messages are POSTed to
    secret            optional (stored encrypted): when set, each request is signed
    id_field          where the gateway's message id is in its 2xx JSON answer, dotted for nested
                      objects ("id" by default, e.g. "data.msgid")
    phone_format      "cn" (11 digits, default), "e164" (+86...) or "raw" (as the profile has it)
    timeout           seconds per request, default 10
    receiver_dedupes  true only if the gateway drops a repeated `key`: `unknown` may then be retried
    allow_private     false by default: a literal loopback / private / link-local IP (or localhost)
                      in `url` is refused, so a workspace cannot aim the platform at internal
                      services. Host names that *resolve* to such addresses are not caught here:
                      that needs the DNS-time guard (quanyu.channels.netguard), see `_guard_url`.

Message.content: {"text": "【品牌】您的订单已发货…"}; `to` is the phone number.

Request: POST url, `Content-Type: application/json`, body {"to": ..., "text": ..., "key": ...},
headers `Idempotency-Key: <key>`, `X-Quanyu-Timestamp: <unix seconds>` and, with a secret,
`X-Quanyu-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>` - the same scheme
as the webhook channel, so one receiver-side check serves both. Verify it over the raw bytes and
reject old timestamps.

Outcomes: 2xx sent (provider_id from `id_field` when present); 429 retry (Retry-After honoured);
408 and 5xx unknown (the gateway may have acted); other 4xx and 3xx failed; connection refused
retry; a timeout or a dropped connection after sending unknown.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from quanyu.channels.base import ChannelConfigError, Message, SendResult
from quanyu.channels.outcomes import parse_retry_after, send_each
from quanyu.channels.registry import AdapterType, register
from quanyu.channels.sms import float_setting, make_client, setting, transport_outcome
from quanyu.channels.sms.phones import normalize_cn_mobile, to_e164

log = logging.getLogger(__name__)

TYPE = "http_sms"
USER_AGENT = "Quanyu-SMS/1"
PHONE_FORMATS = ("cn", "e164", "raw")
_KIND = "HTTP 短信网关 http_sms"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Quanyu-Signature` value: `v1=` + hex HMAC-SHA256 over `timestamp + "." + body`."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def _is_blocked_ip(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for loopback, RFC 1918, link-local, CGNAT 100.64/10, unspecified, reserved...
    return not ip.is_global or ip.is_multicast


def _guard_url(url: str, allow_private: bool) -> None:
    """Refuse a literal private address unless allowed.

    Hook: when quanyu.channels.netguard lands, call its check here (and pin the resolved address
    at send time) so host names resolving to private ranges are refused too.
    """
    if allow_private:
        return
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost") or _is_blocked_ip(host):
        raise ChannelConfigError(
            f"{_KIND} 的 url 指向内网或本机地址 {host!r}，已拒绝（如确需使用请设置 allow_private）/ "
            f"url points at a private or loopback address {host!r}; set allow_private to permit it"
        )


def _lookup(body: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(body, Mapping) or part not in body:
            return None
        body = body[part]
    return body


class HttpSmsAdapter:
    """POSTs each message to the gateway, one request per message."""

    type = TYPE
    channel = "sms"

    def __init__(
        self,
        *,
        url: str,
        secret: str | None = None,
        id_field: str = "id",
        phone_format: str = "cn",
        timeout: float = 10.0,
        receiver_dedupes: bool = False,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self._secret = secret or None
        self.id_field = id_field
        self.phone_format = phone_format
        # The gateway is told the key; only it knows whether it drops repeats.
        self.idempotent = receiver_dedupes
        self._client = client or make_client(timeout)
        self._clock = clock

    def __repr__(self) -> str:  # never print the secret
        return f"HttpSmsAdapter(url={self.url!r})"

    def close(self) -> None:
        self._client.close()

    def _phone(self, raw: str) -> str:
        if self.phone_format == "e164":
            return to_e164(raw)
        if self.phone_format == "raw":
            if not raw or not raw.strip():
                raise ValueError("手机号为空 / phone number is empty")
            return raw.strip()
        return normalize_cn_mobile(raw)

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        # The gateway is unreachable: the rest would only wait for the same failure.
        return send_each(
            messages, self._send_one, lambda r: r.outcome == "retry" and r.error_code == "connect", "connect"
        )

    def request(self, message: Message) -> tuple[bytes, dict[str, str]]:
        """The body and headers for one message; raises ValueError on bad content."""
        text = message.content.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("content.text 缺失 / content.text is missing")
        body = json.dumps(
            {"to": self._phone(message.to), "text": text, "key": message.key},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": message.key,
            "X-Quanyu-Timestamp": timestamp,
        }
        if self._secret:
            headers["X-Quanyu-Signature"] = signature(self._secret, timestamp, body)
        return body, headers

    def _send_one(self, message: Message) -> SendResult:
        try:
            body, headers = self.request(message)
        except ValueError as exc:
            return SendResult(message.key, "failed", error=str(exc))
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            outcome, reason = transport_outcome(exc)
            log.warning("http sms %s: %s", message.key, reason)
            code = "connect" if outcome == "retry" else None
            return SendResult(message.key, outcome, error_code=code, error=reason)
        status = response.status_code
        if 200 <= status < 300:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            provider_id = _lookup(answer, self.id_field)
            if provider_id is not None and not isinstance(provider_id, str | int):
                provider_id = None
            return SendResult(
                message.key, "sent", provider_id=None if provider_id is None else str(provider_id)
            )
        error = f"HTTP {status}: {response.text[:300]}"
        if status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            return SendResult(
                message.key, "retry", error_code=str(status), error=error, retry_after=wait or 1.0
            )
        if status == 408 or status >= 500:
            return SendResult(message.key, "unknown", error_code=str(status), error=error)
        return SendResult(message.key, "failed", error_code=str(status), error=error)


def build(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> HttpSmsAdapter:
    """An `http_sms` adapter from its settings; wrong or missing ones raise ChannelConfigError."""
    url = str(setting(settings, secrets, "url", kind=_KIND))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChannelConfigError(
            f"{_KIND} 的 url 必须是 http(s) URL / url must be an http(s) URL, got {url!r}"
        )
    _guard_url(url, settings.get("allow_private") is True)
    phone_format = settings.get("phone_format", "cn")
    if phone_format not in PHONE_FORMATS:
        raise ChannelConfigError(
            f"{_KIND} 的 phone_format 只能是 cn / e164 / raw / phone_format must be one of {PHONE_FORMATS}"
        )
    id_field = settings.get("id_field", "id")
    if not isinstance(id_field, str) or not id_field.strip():
        raise ChannelConfigError(f"{_KIND} 的 id_field 必须是字符串 / id_field must be a string")
    secret = setting(settings, secrets, "secret", kind=_KIND, secret=True, required=False)
    return HttpSmsAdapter(
        url=url,
        secret=str(secret) if secret else None,
        id_field=id_field.strip(),
        phone_format=str(phone_format),
        timeout=float_setting(settings, "timeout", 10.0, kind=_KIND),
        receiver_dedupes=settings.get("receiver_dedupes") is True,
    )


register(
    AdapterType(
        type=TYPE,
        channel="sms",
        factory=build,
        label="HTTP 短信网关 / HTTP SMS gateway",
        secrets=("secret",),
    )
)
