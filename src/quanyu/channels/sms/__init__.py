"""SMS adapters for mainland-China numbers: Alibaba Cloud (阿里云短信), Tencent Cloud (腾讯云短信) and a
generic HTTP gateway, plus the parsers for their inbound replies and delivery reports.

- `aliyun` registers `aliyun_sms` (dysmsapi SendSms 2017-05-25, RPC HMAC-SHA1 signature);
- `tencent` registers `tencent_sms` (SendSms 2021-01-11, TC3-HMAC-SHA256 signature);
- `generic` registers `http_sms` (POST JSON to your own gateway, HMAC-SHA256 signed);
- `inbound` turns the providers' callbacks into `InboundReply` / `DeliveryReport` and decides
  whether a reply is an unsubscribe (`is_unsubscribe`);
- `phones` normalises a mainland mobile number (11 digits) and its E.164 form (+86...).

The few helpers below are shared by the three adapters: how a transport error maps to an outcome,
the HTTP client they build, and "how long until a given hour in China" for quota resets.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from quanyu.channels.base import ChannelConfigError, Outcome

CHINA = ZoneInfo("Asia/Shanghai")


def transport_outcome(exc: httpx.HTTPError) -> tuple[Outcome, str]:
    """What a failed HTTP exchange means for the message, and a readable reason.

    Only errors raised while *establishing* the connection prove that nothing reached the provider
    (`retry`). Anything after the request started to be written (read/write timeouts, a dropped
    connection, a malformed response) may have been processed, so it is `unknown`.
    """
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError | httpx.PoolTimeout):
        return "retry", f"连接服务商失败，短信未发出 / could not connect, nothing was sent: {exc!r}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.InvalidURL):
        return "failed", f"请求无法构造 / the request could not be built: {exc!r}"
    if isinstance(exc, httpx.TimeoutException):
        return (
            "unknown",
            f"等待服务商响应超时，短信可能已发出 / timed out after sending, may have been sent: {exc!r}",
        )
    return (
        "unknown",
        f"连接中断，短信可能已发出 / connection broke after sending, may have been sent: {exc!r}",
    )


def make_client(timeout: float, proxy: str | None = None) -> httpx.Client:
    """The adapters' HTTP client: bounded connect time, no redirects, proxies only when configured.

    `trust_env=False` because an ambient HTTP(S)_PROXY would silently route provider traffic (and
    secrets) through whatever the host happens to have set; a proxy must be an explicit setting.
    """
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        follow_redirects=False,
        trust_env=False,
        proxy=proxy or None,
    )


def seconds_until_china(hour: int = 0, now: datetime | None = None) -> float:
    """Seconds until the next `hour`:00 in China time; provider quotas reset at China midnight."""
    current = (now or datetime.now(UTC)).astimezone(CHINA)
    target = current.replace(hour=hour, minute=0, second=0, microsecond=0)
    if target <= current:
        target += timedelta(days=1)
    return max(1.0, (target - current).total_seconds())


def seconds_until_next_china_month(now: datetime | None = None) -> float:
    """Seconds until 00:00 China time on the 1st of next month (monthly quotas reset then)."""
    current = (now or datetime.now(UTC)).astimezone(CHINA)
    year, month = (current.year + 1, 1) if current.month == 12 else (current.year, current.month + 1)
    target = datetime(year, month, 1, tzinfo=CHINA)
    return max(1.0, (target - current).total_seconds())


def setting(
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
    name: str,
    *,
    kind: str,
    secret: bool = False,
    required: bool = True,
    default: Any = None,
) -> Any:
    """One setting, read from `secrets` first when it is a secret; a missing required one raises."""
    value = secrets.get(name) if secret else None
    if value in (None, ""):
        value = settings.get(name)
    if value in (None, ""):
        if required:
            raise ChannelConfigError(f"{kind} 缺少设置 {name!r} / {kind} is missing the setting {name!r}")
        return default
    return value


def float_setting(settings: Mapping[str, Any], name: str, default: float, *, kind: str) -> float:
    value = settings.get(name, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ChannelConfigError(
            f"{kind} 的设置 {name!r} 必须是数字 / {kind} setting {name!r} must be a number, got {value!r}"
        ) from None
    if not 0 < number <= 300:
        raise ChannelConfigError(
            f"{kind} 的设置 {name!r} 必须在 0 到 300 秒之间 / {kind} setting {name!r} must be in (0, 300] seconds"
        )
    return number
