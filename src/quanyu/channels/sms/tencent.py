"""Tencent Cloud SMS (腾讯云短信, API 3.0): SendSms, version 2021-01-11.

Settings (`tencent_sms`):
    secret_id        SecretId
    secret_key       SecretKey (stored encrypted; read from `secrets` first)
    sms_sdk_app_id   the SMS application's SdkAppId, e.g. "1400006666"
    sign_name        the approved signature (签名), e.g. "腾讯云"
    region           default ap-guangzhou
    endpoint         default https://sms.tencentcloudapi.com (tests point it at a local server)
    timeout          seconds per request, default 10
    batch_size       numbers per request, 1..200, default 200 (see below)
    proxy            optional HTTP(S) proxy URL

Message.content:
    {"template_id": "1110",       # approved template ID
     "params": ["4370", "5"],     # TemplateParamSet, in the template's {1}, {2}... order
     "text": "...",               # the rendered text, kept for the record only
     "sign_name": "..."}          # optional: overrides the setting for this message

Batching: SendSms takes up to 200 numbers that share one template, one parameter list and one
signature, and answers one SendStatus per number (https://cloud.tencent.com/document/api/382/55981).
Campaign messages often are identical, so messages with the same (template, params, sign) are
grouped into requests of at most `batch_size` distinct numbers and each SendStatus is matched back
to its message by its E.164 `PhoneNumber`; a number the answer does not mention stays `unknown`.
A request for one message carries `SessionContext` = the message key; a grouped request carries
none (it is a single value per request). Delivery reports are matched by `sid` = `SerialNo`, which
every message gets individually, so grouping loses nothing there.

Signing: TC3-HMAC-SHA256 ("签名方法 v3 / Signature v3", https://cloud.tencent.com/document/api/362/4208, with
the worked example that tests/channels/test_sms_tencent.py uses as a golden test):

    CanonicalRequest = "POST\\n/\\n\\n" + "content-type:<ct>\\nhost:<host>\\n" + "\\n"
                       + "content-type;host\\n" + hex(sha256(payload))
    StringToSign     = "TC3-HMAC-SHA256\\n" + timestamp + "\\n" + "<UTC date>/sms/tc3_request\\n"
                       + hex(sha256(CanonicalRequest))
    SecretDate       = HMAC_SHA256("TC3" + SecretKey, <UTC date>)
    SecretService    = HMAC_SHA256(SecretDate, "sms")
    SecretSigning    = HMAC_SHA256(SecretService, "tc3_request")
    Signature        = hex(HMAC_SHA256(SecretSigning, StringToSign))
    Authorization    = "TC3-HMAC-SHA256 Credential=<SecretId>/<date>/sms/tc3_request, "
                       "SignedHeaders=content-type;host, Signature=<Signature>"

Outcomes (error codes: https://cloud.tencent.com/document/api/382/52075):
    SendStatus.Code "Ok"                                         -> sent (provider_id = SerialNo)
    LimitExceeded.* frequency / daily caps, RequestLimitExceeded*,
    FailedOperation.MarketingSendTimeConstraint (08:00-22:00 only) -> retry (nothing was sent)
    InternalError, InternalError.Timeout / SendAndRecvFail / OtherError / UnknownError,
    HTTP 5xx, timeouts after sending                             -> unknown
    connection refused / connect timeout                         -> retry
    anything else (bad number, template, signature, blacklist, balance, AuthFailure.*) -> failed
Tencent does not deduplicate by SessionContext, so `idempotent = False`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from quanyu.channels.base import ChannelConfigError, Message, Outcome, SendResult
from quanyu.channels.registry import AdapterType, register
from quanyu.channels.sms import (
    float_setting,
    make_client,
    seconds_until_china,
    setting,
    transport_outcome,
)
from quanyu.channels.sms.phones import to_e164

log = logging.getLogger(__name__)

TYPE = "tencent_sms"
SERVICE = "sms"
ACTION = "SendSms"
API_VERSION = "2021-01-11"
ALGORITHM = "TC3-HMAC-SHA256"
DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com"
DEFAULT_REGION = "ap-guangzhou"
CONTENT_TYPE = "application/json; charset=utf-8"
MAX_NUMBERS = 200  # SendSms accepts at most 200 numbers per request
_KIND = "腾讯云短信 tencent_sms"

# Refused by frequency or quota control: nothing was sent, the same message can go later.
# Value: seconds to wait, or None for "until the next China midnight" (daily caps).
RETRY_CODES: dict[str, float | None] = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.DeliveryFrequencyLimit": 60.0,
    "LimitExceeded.PhoneNumberDailyLimit": None,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": None,
    "LimitExceeded.AppDailyLimit": None,
    "LimitExceeded.DailyLimit": None,
}
# Tencent failed internally after taking the request: the message may have gone out.
UNKNOWN_CODES = frozenset(
    {
        "InternalError",
        "InternalError.Timeout",
        "InternalError.SendAndRecvFail",
        "InternalError.OtherError",
        "InternalError.UnknownError",
    }
)


# -- signing ---------------------------------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_date(timestamp: int) -> str:
    """The credential-scope date: the UTC date of X-TC-Timestamp (never the local date)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def canonical_request(*, host: str, payload: bytes, content_type: str = CONTENT_TYPE) -> str:
    """The CanonicalRequest of a POST with the two required signed headers, content-type and host."""
    headers = f"content-type:{content_type.strip().lower()}\nhost:{host.strip().lower()}\n"
    return "\n".join(["POST", "/", "", headers, "content-type;host", _sha256_hex(payload)])


def string_to_sign(*, timestamp: int, service: str, canonical: str) -> str:
    scope = f"{utc_date(timestamp)}/{service}/tc3_request"
    return "\n".join([ALGORITHM, str(timestamp), scope, _sha256_hex(canonical.encode("utf-8"))])


def tc3_signature(*, secret_key: str, date: str, service: str, to_sign: str) -> str:
    """hex(HMAC_SHA256(SecretSigning, StringToSign)) with the derived-key chain of the doc."""
    secret_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    secret_service = _hmac(secret_date, service)
    secret_signing = _hmac(secret_service, "tc3_request")
    return hmac.new(secret_signing, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    *,
    secret_id: str,
    secret_key: str,
    host: str,
    payload: bytes,
    timestamp: int,
    service: str = SERVICE,
    content_type: str = CONTENT_TYPE,
) -> str:
    """The Authorization header value for one POST request."""
    canonical = canonical_request(host=host, payload=payload, content_type=content_type)
    to_sign = string_to_sign(timestamp=timestamp, service=service, canonical=canonical)
    signature = tc3_signature(
        secret_key=secret_key, date=utc_date(timestamp), service=service, to_sign=to_sign
    )
    return (
        f"{ALGORITHM} Credential={secret_id}/{utc_date(timestamp)}/{service}/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


# -- outcomes --------------------------------------------------------------------------------


def outcome_for(code: str, status: int = 200) -> tuple[Outcome, float | None]:
    """The outcome of a non-"Ok" code, per-number or top-level, with how long to wait on retry."""
    if code in RETRY_CODES:
        wait = RETRY_CODES[code]
        return "retry", wait if wait is not None else seconds_until_china(0)
    if code == "RequestLimitExceeded" or code.startswith("RequestLimitExceeded."):
        return "retry", 1.0
    if code == "FailedOperation.MarketingSendTimeConstraint":
        # Marketing SMS may only go out 08:00-22:00 China time: try again at 08:00.
        return "retry", seconds_until_china(8)
    if code in UNKNOWN_CODES or status >= 500:
        return "unknown", None
    return "failed", None


# -- adapter ---------------------------------------------------------------------------------


@dataclass
class _Item:
    message: Message
    phone: str  # E.164


def _params(value: Any) -> list[str]:
    """TemplateParamSet: a list of strings in template order."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(
            "content.params 必须是按模板顺序排列的字符串列表 / content.params must be a list of strings in template order"
        )
    out = []
    for item in value:
        if isinstance(item, bool) or item is None or not isinstance(item, str | int | float):
            raise ValueError("模板参数必须是字符串或数字 / template parameters must be strings or numbers")
        out.append(item if isinstance(item, str) else str(item))
    return out


class TencentSmsAdapter:
    """Sends with signed SendSms POST requests, grouping identical messages (see module docstring)."""

    type = TYPE
    channel = "sms"
    idempotent = False  # Tencent does not drop a repeated SessionContext

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        sms_sdk_app_id: str,
        sign_name: str,
        region: str = DEFAULT_REGION,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = 10.0,
        batch_size: int = MAX_NUMBERS,
        proxy: str | None = None,
        client: httpx.Client | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.secret_id = secret_id
        self._secret_key = secret_key
        self.sms_sdk_app_id = sms_sdk_app_id
        self.sign_name = sign_name
        self.region = region
        self.endpoint = endpoint.rstrip("/") + "/"
        self.host = httpx.URL(self.endpoint).netloc.decode("ascii")
        self.batch_size = max(1, min(MAX_NUMBERS, batch_size))
        self._client = client or make_client(timeout, proxy)
        self._clock = clock or (lambda: datetime.now(UTC).timestamp())

    def __repr__(self) -> str:  # never print the secret
        return f"TencentSmsAdapter(secret_id={self.secret_id!r}, endpoint={self.endpoint!r})"

    def close(self) -> None:
        self._client.close()

    # grouping

    def _groups(self, messages: Sequence[Message]) -> tuple[list[list[_Item]], list[SendResult]]:
        """Requests to make (each a list of items with distinct numbers) and results already known."""
        failed: list[SendResult] = []
        by_content: dict[tuple[str, tuple[str, ...], str], list[_Item]] = {}
        for message in messages:
            try:
                template_id = message.content.get("template_id")
                if (
                    not isinstance(template_id, str | int)
                    or isinstance(template_id, bool)
                    or not str(template_id)
                ):
                    raise ValueError("content.template_id 缺失 / content.template_id is missing")
                sign_name = message.content.get("sign_name") or self.sign_name
                if not isinstance(sign_name, str) or not sign_name.strip():
                    raise ValueError("短信签名缺失 / sign_name is missing")
                params = tuple(_params(message.content.get("params")))
                phone = to_e164(message.to)
            except ValueError as exc:
                failed.append(SendResult(message.key, "failed", error=str(exc)))
                continue
            group_key = (str(template_id).strip(), params, sign_name.strip())
            by_content.setdefault(group_key, []).append(_Item(message, phone))
        requests: list[list[_Item]] = []
        for items in by_content.values():
            # Fill requests in order; a repeated number (two messages for one person) starts its
            # own request, since answers are matched back by number.
            batches: list[tuple[list[_Item], set[str]]] = []
            first_open = 0  # batches before this one are full
            for item in items:
                for batch, phones in batches[first_open:]:
                    if item.phone not in phones:
                        batch.append(item)
                        phones.add(item.phone)
                        break
                else:
                    batches.append(([item], {item.phone}))
                    requests.append(batches[-1][0])
                while first_open < len(batches) and len(batches[first_open][0]) >= self.batch_size:
                    first_open += 1
        return requests, failed

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        requests, results = self._groups(messages)
        for batch in requests:
            results.extend(self._send_batch(batch))
        return results

    def request_body(self, batch: Sequence[_Item]) -> dict[str, Any]:
        first = batch[0].message.content
        body: dict[str, Any] = {
            "PhoneNumberSet": [item.phone for item in batch],
            "SmsSdkAppId": self.sms_sdk_app_id,
            "SignName": (first.get("sign_name") or self.sign_name).strip(),
            "TemplateId": str(first["template_id"]).strip(),
            "TemplateParamSet": _params(first.get("params")),
        }
        if len(batch) == 1:
            body["SessionContext"] = batch[0].message.key
        return body

    def _send_batch(self, batch: Sequence[_Item]) -> list[SendResult]:
        payload = json.dumps(self.request_body(batch), ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )
        timestamp = int(self._clock())
        headers = {
            "Authorization": authorization(
                secret_id=self.secret_id,
                secret_key=self._secret_key,
                host=self.host,
                payload=payload,
                timestamp=timestamp,
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": self.host,
            "X-TC-Action": ACTION,
            "X-TC-Version": API_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region,
        }
        try:
            response = self._client.post(self.endpoint, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            outcome, reason = transport_outcome(exc)
            log.warning("tencent sms batch of %d: %s", len(batch), reason)
            return [SendResult(item.message.key, outcome, error=reason) for item in batch]
        return self._results(batch, response)

    def _results(self, batch: Sequence[_Item], response: httpx.Response) -> list[SendResult]:
        try:
            body = response.json()
        except ValueError:
            body = None
        answer = body.get("Response") if isinstance(body, Mapping) else None
        if not isinstance(answer, Mapping):
            if response.status_code == 429:
                outcome: Outcome = "retry"
                wait: float | None = 1.0
            else:
                outcome, wait = ("unknown", None) if response.status_code >= 500 else ("failed", None)
            error = (
                f"无法解析的响应 / unreadable response (HTTP {response.status_code}): {response.text[:200]!r}"
            )
            return [
                SendResult(
                    i.message.key,
                    outcome,
                    error_code=f"HTTP {response.status_code}",
                    error=error,
                    retry_after=wait,
                )
                for i in batch
            ]
        error_obj = answer.get("Error")
        if isinstance(error_obj, Mapping):
            code = str(error_obj.get("Code") or "Error")
            outcome, wait = outcome_for(code, response.status_code)
            text = str(error_obj.get("Message") or code)
            return [
                SendResult(i.message.key, outcome, error_code=code, error=text, retry_after=wait)
                for i in batch
            ]
        statuses = answer.get("SendStatusSet")
        by_phone: dict[str, Mapping[str, Any]] = {}
        if isinstance(statuses, list):
            for status in statuses:
                if isinstance(status, Mapping) and isinstance(status.get("PhoneNumber"), str):
                    by_phone[status["PhoneNumber"]] = status
        results = []
        for item in batch:
            status = by_phone.get(item.phone)
            if status is None:
                results.append(
                    SendResult(
                        item.message.key,
                        "unknown",
                        error="应答中没有这个号码的状态 / the answer has no status for this number",
                    )
                )
                continue
            code = str(status.get("Code") or "")
            if code == "Ok":
                serial = status.get("SerialNo")
                results.append(
                    SendResult(item.message.key, "sent", provider_id=str(serial) if serial else None)
                )
                continue
            outcome, wait = outcome_for(code or "InternalError.UnknownError")
            results.append(
                SendResult(
                    item.message.key,
                    outcome,
                    error_code=code or None,
                    error=str(status.get("Message") or code),
                    retry_after=wait,
                )
            )
        return results


def build(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> TencentSmsAdapter:
    """A `tencent_sms` adapter from its settings; wrong or missing ones raise ChannelConfigError."""
    endpoint = str(
        setting(settings, secrets, "endpoint", kind=_KIND, required=False, default=DEFAULT_ENDPOINT)
    )
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChannelConfigError(
            f"{_KIND} 的 endpoint 必须是 http(s) URL / endpoint must be an http(s) URL, got {endpoint!r}"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        # API 3.0 signs CanonicalURI "/": a path or query would not match the signature.
        raise ChannelConfigError(f"{_KIND} 的 endpoint 只能是主机地址 / endpoint must be a bare host URL")
    raw_batch = settings.get("batch_size", MAX_NUMBERS)
    try:
        batch_size = int(raw_batch)
    except (TypeError, ValueError):
        batch_size = 0
    if not 1 <= batch_size <= MAX_NUMBERS or isinstance(raw_batch, bool):
        raise ChannelConfigError(
            f"{_KIND} 的 batch_size 必须在 1 到 200 之间 / batch_size must be between 1 and 200, got {raw_batch!r}"
        )
    app_id = str(setting(settings, secrets, "sms_sdk_app_id", kind=_KIND)).strip()
    return TencentSmsAdapter(
        secret_id=str(setting(settings, secrets, "secret_id", kind=_KIND)),
        secret_key=str(setting(settings, secrets, "secret_key", kind=_KIND, secret=True)),
        sms_sdk_app_id=app_id,
        sign_name=str(setting(settings, secrets, "sign_name", kind=_KIND)),
        region=str(setting(settings, secrets, "region", kind=_KIND, required=False, default=DEFAULT_REGION)),
        endpoint=endpoint,
        timeout=float_setting(settings, "timeout", 10.0, kind=_KIND),
        batch_size=batch_size,
        proxy=setting(settings, secrets, "proxy", kind=_KIND, required=False),
    )


register(
    AdapterType(
        type=TYPE,
        channel="sms",
        factory=build,
        label="腾讯云短信 / Tencent Cloud SMS",
        secrets=("secret_key",),
    )
)
