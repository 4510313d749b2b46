"""Alibaba Cloud SMS (阿里云短信服务, dysmsapi): SendSms, API version 2017-05-25.

Settings (`aliyun_sms`):
    access_key_id      AccessKey ID
    access_key_secret  AccessKey secret (stored encrypted; read from `secrets` first)
    sign_name          the approved signature (短信签名), e.g. "阿里云短信测试"
    endpoint           default https://dysmsapi.aliyuncs.com/ (tests point it at a local server)
    region_id          default cn-hangzhou
    timeout            seconds per request, default 10
    proxy              optional HTTP(S) proxy URL

Message.content:
    {"template_code": "SMS_123456789",          # approved template (模板 CODE)
     "params": {"name": "张三", "code": "1234"},  # template variables; values are sent as strings
     "text": "...",                               # the rendered text, kept for the record only
     "sign_name": "..."}                          # optional: overrides the setting for this message

One request per message: SendSms takes one TemplateParam and one OutId per request and answers a
single BizId, so a batch could not be mapped back to our keys. OutId is the message key, so the
delivery report (SmsReport `out_id`) finds its message again.

Signing: the RPC signature, HMAC-SHA1 (https://www.alibabacloud.com/help/en/sms/signature-method,
"Signature mechanism"; help.aliyun.com/document_detail/56189 gives the worked example that
tests/channels/test_sms_aliyun.py uses as a golden test):

    CanonicalizedQueryString = "&".join(percentEncode(k) + "=" + percentEncode(v)
                                        for k, v in sorted(params))          # without Signature
    StringToSign = "GET" + "&" + percentEncode("/") + "&" + percentEncode(CanonicalizedQueryString)
    Signature = Base64(HMAC-SHA1(AccessKeySecret + "&", UTF-8(StringToSign)))

where percentEncode is RFC 3986: A-Z a-z 0-9 - _ . ~ stay, everything else is %XY (upper-case hex)
of its UTF-8 bytes, so a space is %20, never "+".

Outcomes (error codes: https://help.aliyun.com/document_detail/101346.html):
    Code "OK"                                              -> sent (provider_id = BizId)
    isv.BUSINESS_LIMIT_CONTROL, isv.DAY_LIMIT_CONTROL,
    isv.MONTH_LIMIT_CONTROL, Throttling*                   -> retry (refused, nothing was sent)
    isp.SYSTEM_ERROR, ServiceUnavailable, InternalError,
    HTTP 5xx without a known code, timeouts after sending  -> unknown
    connection refused / connect timeout                   -> retry
    any other code (bad number, template, signature, blacklist, balance, auth) -> failed
Aliyun does not deduplicate by OutId, so `idempotent = False`: `unknown` is never re-sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from quanyu.channels.base import ChannelConfigError, Message, Outcome, SendResult
from quanyu.channels.outcomes import send_each
from quanyu.channels.registry import AdapterType, register
from quanyu.channels.sms import (
    float_setting,
    make_client,
    seconds_until_china,
    seconds_until_next_china_month,
    setting,
    transport_outcome,
)
from quanyu.channels.sms.phones import normalize_cn_mobile

log = logging.getLogger(__name__)

TYPE = "aliyun_sms"
API_VERSION = "2017-05-25"
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
DEFAULT_REGION = "cn-hangzhou"
_KIND = "阿里云短信 aliyun_sms"

# The provider refused the request under flow control: nothing was sent, a later try can succeed.
RETRY_CODES = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL"})
# The provider failed internally: the message may or may not have gone out.
UNKNOWN_CODES = frozenset({"isp.SYSTEM_ERROR", "ServiceUnavailable", "InternalError", "UnknownError"})


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding as the signature requires (space -> %20, ~ kept, * -> %2A)."""
    return quote(value, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    """The canonicalised query string: parameters sorted by name, both sides percent-encoded."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def string_to_sign(params: Mapping[str, str], method: str = "GET") -> str:
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def rpc_signature(params: Mapping[str, str], access_key_secret: str, method: str = "GET") -> str:
    """Base64(HMAC-SHA1(secret + "&", StringToSign)) over every parameter except Signature."""
    unsigned = {k: v for k, v in params.items() if k != "Signature"}
    digest = hmac.new(
        (access_key_secret + "&").encode(), string_to_sign(unsigned, method).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def timestamp(now: datetime | None = None) -> str:
    """ISO 8601 in UTC, as the common parameter Timestamp wants: 2017-07-12T02:42:19Z."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _retry_after(code: str, message: str) -> float:
    """How long the flow control lasts, from the code and the documented message text.

    isv.BUSINESS_LIMIT_CONTROL says which window tripped: 触发分钟级流控 (minute), 触发小时级流控
    (hour) or 触发天级流控 (day, resets at China midnight). DAY/MONTH_LIMIT_CONTROL are the
    account's own daily / monthly caps.
    """
    if code == "isv.DAY_LIMIT_CONTROL" or "天级" in message:
        return seconds_until_china(0)
    if code == "isv.MONTH_LIMIT_CONTROL":
        return seconds_until_next_china_month()
    if "小时级" in message:
        return 3600.0
    if "分钟级" in message:
        return 60.0
    return 60.0


def outcome_for(code: str | None, message: str, status: int) -> tuple[Outcome, float | None]:
    """The outcome of a SendSms answer that is not "OK", from its Code and the HTTP status."""
    if code:
        if code in RETRY_CODES:
            return "retry", _retry_after(code, message)
        if code == "Throttling" or code.startswith("Throttling."):
            return "retry", 1.0
        if code in UNKNOWN_CODES or status >= 500:
            # A 5xx with any code is the provider failing midway: it may have sent.
            return "unknown", None
        return "failed", None
    if status == 429:
        return "retry", 1.0
    if status >= 500:
        return "unknown", None
    return "failed", None


def _template_params(params: Any) -> str:
    """TemplateParam JSON. Aliyun accepts string values only (isv.INVALID_JSON_PARAM otherwise)."""
    if params is None:
        return "{}"
    if not isinstance(params, Mapping):
        raise ValueError("content.params 必须是对象 / content.params must be an object")
    out: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, bool) or value is None or isinstance(value, Mapping | list | tuple | set):
            raise ValueError(
                f"模板变量 {name!r} 必须是字符串或数字 / template variable {name!r} must be a string or a number"
            )
        out[str(name)] = value if isinstance(value, str) else str(value)
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


class AliyunSmsAdapter:
    """Sends each message with one signed SendSms GET request."""

    type = TYPE
    channel = "sms"
    idempotent = False  # Aliyun does not drop a repeat of the same OutId

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        endpoint: str = DEFAULT_ENDPOINT,
        region_id: str = DEFAULT_REGION,
        timeout: float = 10.0,
        proxy: str | None = None,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.sign_name = sign_name
        self.endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        self.region_id = region_id
        self._client = client or make_client(timeout, proxy)
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:  # never print the secret
        return f"AliyunSmsAdapter(access_key_id={self.access_key_id!r}, endpoint={self.endpoint!r})"

    def close(self) -> None:
        self._client.close()

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        # The endpoint is unreachable: the rest would only wait for the same failure.
        return send_each(
            messages, self._send_one, lambda r: r.outcome == "retry" and r.error_code == "connect", "connect"
        )

    def request_params(self, message: Message) -> dict[str, str]:
        """The signed query parameters for one message; raises ValueError on bad content."""
        content = message.content
        template_code = content.get("template_code")
        if not isinstance(template_code, str) or not template_code.strip():
            raise ValueError("content.template_code 缺失 / content.template_code is missing")
        sign_name = content.get("sign_name") or self.sign_name
        if not isinstance(sign_name, str) or not sign_name.strip():
            raise ValueError("短信签名缺失 / sign_name is missing")
        params = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": message.key,
            "PhoneNumbers": normalize_cn_mobile(message.to),
            "RegionId": self.region_id,
            "SignName": sign_name.strip(),
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": template_code.strip(),
            "TemplateParam": _template_params(content.get("params")),
            "Timestamp": timestamp(self._clock()),
            "Version": API_VERSION,
        }
        params["Signature"] = rpc_signature(params, self._secret, "GET")
        return params

    def _send_one(self, message: Message) -> SendResult:
        try:
            params = self.request_params(message)
        except ValueError as exc:
            return SendResult(message.key, "failed", error=str(exc))
        url = self.endpoint + "?" + canonical_query(params)
        try:
            response = self._client.get(url)
        except httpx.HTTPError as exc:
            outcome, reason = transport_outcome(exc)
            log.warning("aliyun sms %s: %s", message.key, reason)
            return SendResult(
                message.key, outcome, error_code="connect" if outcome == "retry" else None, error=reason
            )
        return self._result(message.key, response)

    def _result(self, key: str, response: httpx.Response) -> SendResult:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, Mapping):
            outcome, retry_after = outcome_for(None, "", response.status_code)
            return SendResult(
                key,
                outcome,
                error_code=f"HTTP {response.status_code}",
                error=f"无法解析的响应 / unreadable response: {response.text[:200]!r}",
                retry_after=retry_after,
            )
        code = body.get("Code")
        message = str(body.get("Message") or "")
        if code == "OK" and response.status_code < 300:
            biz_id = body.get("BizId")
            return SendResult(key, "sent", provider_id=str(biz_id) if biz_id else None)
        code_text = str(code) if code else None
        outcome, retry_after = outcome_for(code_text, message, response.status_code)
        return SendResult(
            key,
            outcome,
            error_code=code_text or f"HTTP {response.status_code}",
            error=message or f"HTTP {response.status_code}",
            retry_after=retry_after,
        )


def build(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> AliyunSmsAdapter:
    """An `aliyun_sms` adapter from its settings; wrong or missing ones raise ChannelConfigError."""
    endpoint = str(
        setting(settings, secrets, "endpoint", kind=_KIND, required=False, default=DEFAULT_ENDPOINT)
    )
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChannelConfigError(
            f"{_KIND} 的 endpoint 必须是 http(s) URL / endpoint must be an http(s) URL, got {endpoint!r}"
        )
    if parts.query or parts.fragment:
        raise ChannelConfigError(f"{_KIND} 的 endpoint 不能带查询串 / endpoint must not carry a query string")
    return AliyunSmsAdapter(
        access_key_id=str(setting(settings, secrets, "access_key_id", kind=_KIND)),
        access_key_secret=str(setting(settings, secrets, "access_key_secret", kind=_KIND, secret=True)),
        sign_name=str(setting(settings, secrets, "sign_name", kind=_KIND)),
        endpoint=endpoint,
        region_id=str(
            setting(settings, secrets, "region_id", kind=_KIND, required=False, default=DEFAULT_REGION)
        ),
        timeout=float_setting(settings, "timeout", 10.0, kind=_KIND),
        proxy=setting(settings, secrets, "proxy", kind=_KIND, required=False),
    )


register(
    AdapterType(
        type=TYPE,
        channel="sms",
        factory=build,
        label="阿里云短信 / Alibaba Cloud SMS",
        secrets=("access_key_secret",),
    )
)
