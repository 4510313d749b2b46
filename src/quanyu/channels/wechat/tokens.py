"""Access tokens for WeChat (official accounts, Mini Programs) and WeCom, plus the HTTP plumbing both use.

A token lives 7200 s and every API call needs it, so one `TokenCache` per account is shared by every
adapter in the process (`shared()`): fetched on first use, reused until `expires_in` minus a safety
margin, dropped with `invalidate(token)` when an API answers an expiry errcode (the caller then fetches
once more and retries). The token endpoints have small daily quotas (2000/day for
`/cgi-bin/token`), which is why it is shared, why concurrent callers wait for one fetch instead of
each fetching, and why a refused fetch is remembered for a short while instead of being asked again
for every message.

Official accounts default to the stable token (`POST /cgi-bin/stable_token`): in its normal mode a
repeat call returns the token still in force instead of minting a new one, so our workers and any
other system using the same AppID (an e-commerce backend, a CRM) do not invalidate each other's
tokens, as the classic `GET /cgi-bin/token` does. `token_mode = "classic"` selects the old endpoint.

Tokens and secrets are never logged and are scrubbed from any error text.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import httpx
import orjson

from quanyu.channels.base import ChannelConfigError, Outcome, SendResult
from quanyu.channels.outcomes import parse_retry_after

log = logging.getLogger(__name__)

TokenMode = Literal["stable", "classic"]

# API errcodes meaning "this access token is no longer valid": drop it, fetch once more, retry.
# (On WeCom 40001 means a wrong secret at gettoken, so it is not in the WeCom set.)
OA_TOKEN_EXPIRED = frozenset({40001, 40014, 42001})
WECOM_TOKEN_EXPIRED = frozenset({40014, 42001})

# A refused token fetch is answered from memory for this long, so a wrong secret costs one call to
# the quota-limited endpoint per minute instead of one per message.
CONFIG_HOLD = 60.0
TRANSIENT_HOLD = 5.0
# How long the outbox should wait before trying a message again after an account-level problem
# (wrong secret, IP not whitelisted): someone has to fix the settings first.
CONFIG_RETRY_AFTER = 600.0
TRANSIENT_RETRY_AFTER = 30.0

_CHINA = timezone(timedelta(hours=8))  # WeChat quotas reset at midnight Beijing time (no DST)


@dataclass(frozen=True)
class Failure:
    """One outcome for one or more messages, before we know their keys."""

    outcome: Outcome
    error_code: str
    error: str
    retry_after: float | None = None

    def result(self, key: str) -> SendResult:
        return SendResult(
            key=key,
            outcome=self.outcome,
            error_code=self.error_code,
            error=self.error,
            retry_after=self.retry_after,
        )


class TokenError(Exception):
    """The token endpoint refused or could not be reached. Nothing was sent, so it is a `retry`."""

    def __init__(self, failure: Failure, hold: float) -> None:
        super().__init__(failure.error)
        self.failure = failure
        self.hold = hold  # seconds the cache answers this error without asking again


# force_refresh -> (access_token, expires_in seconds); raises TokenError.
Fetch = Callable[[bool], tuple[str, float]]


class TokenCache:
    """One account's access token, safe to use from many threads at once."""

    def __init__(self, *, margin: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.margin = margin
        self.clock = clock
        self.fetches = 0  # successful fetches, for tests and metrics
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._rejected: str | None = None
        self._error: TokenError | None = None
        self._error_until = 0.0

    def get(self, fetch: Fetch) -> str:
        """The current token, fetching one if there is none or it is about to expire.

        The fetch happens under the lock on purpose: threads arriving meanwhile wait for its result
        instead of each spending one call of the endpoint's daily quota.
        """
        with self._lock:
            now = self.clock()
            if self._token is not None and now < self._expires_at:
                return self._token
            if self._error is not None and now < self._error_until:
                raise TokenError(self._error.failure, self._error.hold)
            try:
                token, expires_in = fetch(False)
                if token == self._rejected:
                    # The endpoint handed back the very token an API just refused (stable token in
                    # normal mode): only a forced refresh gets a new one.
                    token, expires_in = fetch(True)
            except TokenError as exc:
                self._error, self._error_until = exc, now + exc.hold
                raise
            self.fetches += 1
            self._error = None
            self._token, self._rejected = token, None
            # Renew ahead of expiry so a token never dies between our check and WeChat's.
            self._expires_at = now + max(0.0, expires_in - min(self.margin, expires_in * 0.1))
            return token

    def invalidate(self, token: str) -> None:
        """An API said `token` is invalid or expired. Only the current token is dropped: when many
        threads report the same stale token, the first drops it and the rest reuse the new one."""
        with self._lock:
            if self._token == token:
                self._token = None
                self._rejected = token


_SHARED: dict[tuple[str, str, str], TokenCache] = {}
_SHARED_LOCK = threading.Lock()


def shared(base_url: str, account_id: str, secret: str) -> TokenCache:
    """The process-wide cache for one account. The key includes a fingerprint of the secret because
    WeCom issues a different token per secret (客户联系 vs an app's), and a rotated secret must not
    keep using a token fetched with the old one."""
    fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:16]
    key = (base_url.rstrip("/"), account_id, fingerprint)
    with _SHARED_LOCK:
        cache = _SHARED.get(key)
        if cache is None:
            cache = _SHARED[key] = TokenCache()
        return cache


def clear_shared() -> None:
    """Forget every cached token (tests; an operator who rotated a secret)."""
    with _SHARED_LOCK:
        _SHARED.clear()


# Token endpoint errcodes: (readable reason, account-level misconfiguration?).
_OA_TOKEN_CODES: dict[int, tuple[str, bool]] = {
    -1: ("微信系统繁忙 / WeChat system busy", False),
    40001: ("AppSecret 错误 / wrong AppSecret", True),
    40002: ("grant_type 不合法 / invalid grant_type", True),
    40013: ("AppID 无效 / invalid AppID", True),
    40125: ("AppSecret 无效 / invalid AppSecret", True),
    40164: ("调用 IP 不在公众平台的 IP 白名单中 / caller IP is not in the account's IP whitelist", True),
    40243: ("AppSecret 已被冻结 / AppSecret is frozen", True),
    45009: ("获取 access_token 的每日调用次数已用完 / daily access_token quota exhausted", False),
    45011: ("获取 access_token 过于频繁 / access_token requested too often", False),
    89501: ("此 IP 正等待管理员确认 / this IP awaits the administrator's confirmation", True),
    89503: ("此 IP 调用需要管理员确认 / this IP needs the administrator's confirmation", True),
    89506: ("管理员拒绝了此 IP 的调用 / the administrator refused calls from this IP", True),
    89507: ("管理员拒绝了此 IP 的调用 / the administrator refused calls from this IP", True),
}
_WECOM_TOKEN_CODES: dict[int, tuple[str, bool]] = {
    -1: ("企业微信系统繁忙 / WeCom system busy", False),
    40001: ("corp_secret 错误 / wrong corp_secret", True),
    40013: ("corp_id 无效 / invalid corp_id", True),
    40091: ("corp_secret 不合法 / invalid corp_secret", True),
    41002: ("缺少 corp_id / corp_id missing", True),
    41004: ("缺少 corp_secret / corp_secret missing", True),
    45009: ("获取 access_token 过于频繁 / access_token requested too often", False),
    60020: ("调用 IP 不在企业微信可信 IP 列表中 / caller IP is not a trusted IP of this WeCom app", True),
}


def _token_failure(codes: Mapping[int, tuple[str, bool]], reply: Mapping[str, Any], who: str) -> TokenError:
    code = errcode(reply)
    reason, config = codes.get(code, ("获取 access_token 失败 / access_token request refused", True))
    failure = Failure(
        "retry",
        str(code),
        f"{reason}({who}, errcode {code}: {reply.get('errmsg', '')}),消息未发出 / nothing was sent",
        CONFIG_RETRY_AFTER if config else TRANSIENT_RETRY_AFTER,
    )
    if config:
        log.warning("token request for %s refused: errcode %s", who, code)
    return TokenError(failure, CONFIG_HOLD if config else TRANSIENT_HOLD)


def _token_reply(client: httpx.Client, request: httpx.Request, secret: str, who: str) -> Mapping[str, Any]:
    """Send a token request; any transport problem is a `retry` (no message was involved)."""
    try:
        resp = client.send(request)
    except httpx.HTTPError as exc:
        raise TokenError(
            Failure(
                "retry",
                "token_unreachable",
                f"无法获取 access_token({who}),消息未发出 / could not reach the token endpoint, nothing "
                f"was sent: {_scrub(f'{type(exc).__name__}: {exc}', secret)}",
                TRANSIENT_RETRY_AFTER,
            ),
            TRANSIENT_HOLD,
        ) from None
    reply = _decode(resp)
    if reply is None:
        raise TokenError(
            Failure(
                "retry",
                f"http_{resp.status_code}",
                f"access_token 接口返回异常(HTTP {resp.status_code}),消息未发出 / "
                f"unexpected token endpoint answer, nothing was sent",
                TRANSIENT_RETRY_AFTER,
            ),
            TRANSIENT_HOLD,
        )
    return reply


def _token_from(
    reply: Mapping[str, Any], codes: Mapping[int, tuple[str, bool]], who: str
) -> tuple[str, float]:
    token = reply.get("access_token")
    if errcode(reply) != 0 or not isinstance(token, str) or not token:
        raise _token_failure(codes, reply, who)
    try:
        expires_in = float(reply.get("expires_in", 7200))
    except (TypeError, ValueError):
        expires_in = 7200.0
    log.debug("fetched an access token for %s (expires in %.0f s)", who, expires_in)
    return token, expires_in


def oa_fetcher(
    client: httpx.Client, base_url: str, app_id: str, secret: str, mode: TokenMode = "stable"
) -> Fetch:
    """Fetch an official-account / Mini Program token (stable or classic endpoint)."""
    base = base_url.rstrip("/")
    who = f"AppID {app_id}"

    def fetch(force: bool) -> tuple[str, float]:
        if mode == "classic":
            request = client.build_request(
                "GET",
                f"{base}/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": app_id, "secret": secret},
            )
        else:
            body: dict[str, Any] = {"grant_type": "client_credential", "appid": app_id, "secret": secret}
            if force:
                body["force_refresh"] = True
            request = client.build_request(
                "POST",
                f"{base}/cgi-bin/stable_token",
                content=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
            )
        return _token_from(_token_reply(client, request, secret, who), _OA_TOKEN_CODES, who)

    return fetch


def wecom_fetcher(client: httpx.Client, base_url: str, corp_id: str, secret: str) -> Fetch:
    """Fetch a WeCom token (`GET /cgi-bin/gettoken`); it has no forced-refresh mode."""
    base = base_url.rstrip("/")
    who = f"corp_id {corp_id}"

    def fetch(force: bool) -> tuple[str, float]:
        request = client.build_request(
            "GET", f"{base}/cgi-bin/gettoken", params={"corpid": corp_id, "corpsecret": secret}
        )
        return _token_from(_token_reply(client, request, secret, who), _WECOM_TOKEN_CODES, who)

    return fetch


def post_json(
    client: httpx.Client, url: str, token: str, body: Mapping[str, Any]
) -> dict[str, Any] | Failure:
    """POST `body` with the token; the decoded answer, or the outcome when there is none.

    A connection that never opened is a `retry` (nothing was sent); a timeout or a dropped connection
    after the request went out, and a 5xx, are `unknown` (WeChat may have taken it).
    """
    try:
        resp = client.post(
            url,
            params={"access_token": token},
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
        )
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        return Failure(
            "retry",
            "connect",
            f"无法连接,消息未发出 / could not connect, nothing was sent: {_scrub(str(exc), token)}",
            TRANSIENT_RETRY_AFTER,
        )
    except httpx.TimeoutException as exc:
        return Failure(
            "unknown",
            "timeout",
            f"请求已发出但超时,结果未知 / timed out after sending, outcome unknown: {_scrub(str(exc), token)}",
        )
    except httpx.HTTPError as exc:
        return Failure(
            "unknown",
            "network",
            f"连接中断,结果未知 / connection dropped, outcome unknown: "
            f"{_scrub(f'{type(exc).__name__}: {exc}', token)}",
        )
    if resp.status_code == 429:
        return Failure("retry", "http_429", "请求过于频繁 / throttled (HTTP 429)", _retry_after(resp))
    if resp.status_code >= 500:
        return Failure(
            "unknown",
            f"http_{resp.status_code}",
            f"服务端错误,结果未知 / server error HTTP {resp.status_code}",
        )
    reply = _decode(resp)
    if reply is None:
        if resp.status_code != 200:
            return Failure(
                "failed", f"http_{resp.status_code}", f"请求被拒绝 / refused with HTTP {resp.status_code}"
            )
        return Failure(
            "unknown", "bad_response", "无法解析返回内容,结果未知 / unreadable answer, outcome unknown"
        )
    return reply


def seconds_to_quota_reset(now: datetime | None = None) -> float:
    """Seconds until the next midnight in Beijing, when WeChat's daily API quotas reset."""
    now = (now or datetime.now(_CHINA)).astimezone(_CHINA)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - now).total_seconds())


def setting_text(settings: Mapping[str, Any], name: str, kind: str) -> str:
    """A required, non-empty string setting."""
    value = settings.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ChannelConfigError(f"{kind} 渠道缺少设置 {name} / {kind} channel setting {name!r} is required")
    return value.strip()


def setting_secret(settings: Mapping[str, Any], secrets: Mapping[str, str], name: str, kind: str) -> str:
    """A secret setting: from the decrypted secrets, or (plain configs, tests) from the settings."""
    value = secrets.get(name) or settings.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ChannelConfigError(f"{kind} 渠道缺少密钥 {name} / {kind} channel secret {name!r} is required")
    return value.strip()


def setting_base_url(settings: Mapping[str, Any], default: str, kind: str) -> str:
    value = settings.get("base_url") or default
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ChannelConfigError(
            f"{kind} 渠道的 base_url 必须以 https:// 或 http:// 开头 / {kind} base_url must be an http(s) URL"
        )
    return value.rstrip("/")


def setting_timeout(settings: Mapping[str, Any], kind: str, default: float = 10.0) -> float:
    value = settings.get("timeout")
    if value is None or value == "":
        value = default
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        timeout = 0.0
    if not 0 < timeout <= 300:
        raise ChannelConfigError(
            f"{kind} 渠道的 timeout 必须是 0 到 300 秒之间的数 / {kind} timeout must be a number of seconds in (0, 300]"
        )
    return timeout


def halt_after(failure: Failure) -> Failure:
    """What the rest of a batch gets after a transport failure: it is not attempted (the next call
    would most likely wait for the same timeout), so it was certainly not sent."""
    if failure.outcome == "retry":
        return failure
    return Failure(
        "retry",
        "halted",
        f"本批次在前一次调用失败({failure.error_code})后停止,消息未发出 / "
        f"batch stopped after an earlier failure ({failure.error_code}), nothing was sent",
        TRANSIENT_RETRY_AFTER,
    )


def errcode(reply: Mapping[str, Any]) -> int:
    """The reply's errcode; a reply without one (a token, a success) counts as 0."""
    try:
        return int(reply.get("errcode", 0) or 0)
    except (TypeError, ValueError):
        return -1


def _decode(resp: httpx.Response) -> dict[str, Any] | None:
    try:
        data = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _retry_after(resp: httpx.Response) -> float | None:
    return parse_retry_after(resp.headers.get("Retry-After"))


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text
