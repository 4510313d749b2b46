"""WeChat official-account template messages and subscription notifications, Mini Program subscribe messages.

Adapter types (all take the settings `app_id`, `app_secret` (secret), `base_url` (default
https://api.weixin.qq.com), `timeout` (seconds, default 10), `token_mode` ("stable" default, or
"classic", see `tokens`)):

- `wechat_template` (channel `wechat_oa`): `POST /cgi-bin/message/template/send`. Content:
  `{"template_id": str, "data": {key: value | {"value": value, ...}}, "url"?: str,
  "miniprogram"?: {"appid": str, "pagepath"?: str}}`. `client_msg_id` is the message key (hashed when it
  is not a short plain id), and WeChat documents that it sends only one message per openid +
  client_msg_id, so the adapter is `idempotent`. WeChat keeps that guard for 10 minutes only
  ("10分钟有效,超过10分钟不保证效果"): `idempotency_window` says so for the outbox.
- `wechat_subscribe` (channel `wechat_oa`): 订阅通知, `POST /cgi-bin/message/subscribe/bizsend`. Content:
  `{"template_id", "data", "page"?: web URL (or "url"), "miniprogram"?: {"appid", "pagepath"}}`.
- `miniprogram_subscribe` (channel `mini_program`): 小程序订阅消息, `POST /cgi-bin/message/subscribe/send`.
  Content: `{"template_id", "data", "page"?: Mini Program path, "miniprogram_state"?, "lang"?}`; the
  settings `miniprogram_state` (default "formal") and `lang` (default "zh_CN") give the defaults.

Neither subscribe API documents an idempotency field, so those two are not idempotent: a timeout
after sending stays `unknown` and is never resent. `Message.to` is the user's openid for the app.

Outcomes: errcode 0 -> `sent` (`provider_id` = msgid when WeChat returns one: template messages do,
subscribe messages do not); a refusal of this user or this content (43004 not following, 40003 bad
openid, 40037 bad template, 47003 bad argument, 43101 no subscription left, ...) -> `failed` with
`error_code` = the errcode; quotas and throttling (45009 daily, 45011 per minute, 43108) and
account-level problems (48001 API not authorised, 40164 IP not whitelisted, token errors) -> `retry`,
nothing was sent; -1 "system busy", 5xx and timeouts after sending -> `unknown`. An expired token
(40001/40014/42001) is refreshed once and the message sent again (WeChat refused it, so nothing went out).
A problem that affects every message (quota, account, token, network) stops the batch: the messages
not yet tried come back as `retry` instead of each waiting for the same answer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from quanyu.channels.base import ChannelConfigError, Message, SendResult
from quanyu.channels.registry import AdapterType, register
from quanyu.channels.wechat import tokens
from quanyu.channels.wechat.tokens import Failure, TokenError

DEFAULT_BASE_URL = "https://api.weixin.qq.com"
DEDUP_WINDOW = 600.0  # seconds WeChat honours a client_msg_id

# Refusals of one user or one message's content: never retried.
_REFUSALS: dict[int, str] = {
    40003: "openid 无效(不是本账号的用户?) / invalid openid (not a user of this app?)",
    40036: "template_id 长度不合法 / template_id has an invalid length",
    40037: "template_id 无效 / invalid template_id",
    40165: "miniprogram.pagepath 不合法 / invalid miniprogram pagepath",
    41030: "page 路径不正确 / invalid page path",
    43004: "用户未关注公众号 / the user does not follow the official account",
    43019: "用户在黑名单中 / the user is on the account's blacklist",
    43101: "用户拒绝接收或订阅次数已用完 / the user refused, or has no subscription left",
    43107: "订阅消息能力或该模板被封禁 / subscribe messages or this template are banned",
    43116: "该模板因滥用被限制下发 / this template is restricted for abuse",
    45168: "内容命中敏感词 / the content contains sensitive words",
    47001: "数据格式错误 / malformed request data",
    47003: "模板参数不合法 / a template argument is invalid",
}
# Throttling: (reason, retry_after or None for "at the daily reset", stops the batch?).
_THROTTLES: dict[int, tuple[str, float | None, bool]] = {
    45009: ("接口调用超过每日限额 / daily API quota exhausted", None, True),
    45011: ("接口调用过于频繁 / API minute quota exceeded", 60.0, True),
    43108: ("并发下发给同一用户 / concurrent sends to the same user", 5.0, False),
}
# The account cannot send at all until someone fixes its configuration.
_ACCOUNT: dict[int, str] = {
    40164: "调用 IP 不在 IP 白名单中 / caller IP is not in the IP whitelist",
    48001: "接口未授权(账号未认证或未开通该能力) / API not authorised for this account",
    48004: "接口已被封禁 / API banned for this account",
}

_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_STATES = ("developer", "trial", "formal")
_LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")


class InvalidContent(ValueError):
    """A message's content cannot be sent as it is; it becomes a `failed` result."""


def client_msg_id(key: str) -> str:
    """WeChat's 防重入 id for a message key: the key itself when it is a plain id of at most 64
    bytes, otherwise its SHA-256 (64 hex characters). Stable, so a resend of the same key carries the
    same id. Only `[A-Za-z0-9_.:-]` is passed through because WeChat documents the length (64 bytes)
    but not the alphabet."""
    if _PLAIN_ID.fullmatch(key):
        return key
    return hashlib.sha256(key.encode()).hexdigest()


def template_data(data: Any) -> dict[str, dict[str, Any]]:
    """`{key: value}` or `{key: {"value": value, ...}}` -> WeChat's `{key: {"value": "text", ...}}`."""
    if not isinstance(data, Mapping):
        raise InvalidContent(
            "content.data 必须是对象 {字段: 值} / content.data must be an object {key: value}"
        )
    out: dict[str, dict[str, Any]] = {}
    for name, value in data.items():
        if isinstance(value, Mapping):
            if "value" not in value:
                raise InvalidContent(f"content.data.{name} 缺少 value / content.data.{name} has no 'value'")
            item = dict(value)
            item["value"] = _text(value["value"])
        else:
            item = {"value": _text(value)}
        out[str(name)] = item
    return out


class _WeChatAdapter:
    """One app (official account or Mini Program) and one send API."""

    type = ""
    channel = ""
    idempotent = False
    path = ""

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        kind = self.type
        self.app_id = tokens.setting_text(settings, "app_id", kind)
        secret = tokens.setting_secret(settings, secrets, "app_secret", kind)
        self.base_url = tokens.setting_base_url(settings, DEFAULT_BASE_URL, kind)
        timeout = tokens.setting_timeout(settings, kind)
        mode = settings.get("token_mode") or "stable"
        if mode not in ("stable", "classic"):
            raise ChannelConfigError(
                f"{kind} 渠道的 token_mode 只能是 stable 或 classic / {kind} token_mode must be 'stable' or 'classic'"
            )
        self._client = httpx.Client(timeout=timeout)
        self._tokens = tokens.shared(self.base_url, self.app_id, secret)
        self._fetch = tokens.oa_fetcher(
            self._client, self.base_url, self.app_id, secret, "classic" if mode == "classic" else "stable"
        )
        self._url = f"{self.base_url}{self.path}"

    def body(self, message: Message) -> dict[str, Any]:
        raise NotImplementedError

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        results: list[SendResult] = []
        halted: Failure | None = None
        for message in messages:
            if halted is not None:
                results.append(halted.result(message.key))
                continue
            try:
                body = self.body(message)
            except InvalidContent as exc:
                results.append(
                    SendResult(message.key, "failed", error_code="invalid_content", error=str(exc))
                )
                continue
            result, halted = self._deliver(message.key, body)
            results.append(result)
        return results

    def close(self) -> None:
        self._client.close()

    def _deliver(self, key: str, body: Mapping[str, Any]) -> tuple[SendResult, Failure | None]:
        """Send one message: its result, and the failure every later message in the batch gets when
        the problem is not this message's own."""
        for attempt in (1, 2):
            try:
                token = self._tokens.get(self._fetch)
            except TokenError as exc:
                return exc.failure.result(key), exc.failure
            reply = tokens.post_json(self._client, self._url, token, body)
            if isinstance(reply, Failure):
                return reply.result(key), tokens.halt_after(reply)
            code = tokens.errcode(reply)
            if code in tokens.OA_TOKEN_EXPIRED:
                # WeChat refused the call for the token alone, so sending again cannot duplicate.
                self._tokens.invalidate(token)
                if attempt == 1:
                    continue
                failure = Failure(
                    "retry",
                    str(code),
                    f"access_token 刷新后仍被拒绝,消息未发出 / access_token still refused after a refresh, "
                    f"nothing was sent (errcode {code}: {reply.get('errmsg', '')})",
                    tokens.TRANSIENT_RETRY_AFTER,
                )
                return failure.result(key), failure
            return _classify(key, code, reply)
        raise AssertionError("unreachable")


def _classify(key: str, code: int, reply: Mapping[str, Any]) -> tuple[SendResult, Failure | None]:
    errmsg = f"errcode {code}: {reply.get('errmsg', '')}"
    if code == 0:
        msgid = reply.get("msgid")
        return SendResult(key, "sent", provider_id=None if msgid in (None, "") else str(msgid)), None
    if code in _THROTTLES:
        reason, after, stops = _THROTTLES[code]
        failure = Failure(
            "retry",
            str(code),
            f"{reason},消息未发出 / nothing was sent ({errmsg})",
            after or tokens.seconds_to_quota_reset(),
        )
        return failure.result(key), failure if stops else None
    if code in _ACCOUNT:
        failure = Failure(
            "retry",
            str(code),
            f"{_ACCOUNT[code]},消息未发出 / nothing was sent ({errmsg})",
            tokens.CONFIG_RETRY_AFTER,
        )
        return failure.result(key), failure
    if code == -1:
        return SendResult(
            key,
            "unknown",
            error_code="-1",
            error=f"微信系统繁忙,结果未知 / WeChat system busy, outcome unknown ({errmsg})",
        ), None
    reason = _REFUSALS.get(code, "微信拒绝了该消息 / WeChat refused the message")
    return SendResult(key, "failed", error_code=str(code), error=f"{reason} ({errmsg})"), None


class WeChatTemplateAdapter(_WeChatAdapter):
    type = "wechat_template"
    channel = "wechat_oa"
    idempotent = True  # WeChat sends one message per openid + client_msg_id ...
    idempotency_window = DEDUP_WINDOW  # ... within 10 minutes of the first request
    path = "/cgi-bin/message/template/send"

    def body(self, message: Message) -> dict[str, Any]:
        content = message.content
        body: dict[str, Any] = {
            "touser": _openid(message),
            "template_id": _template_id(content),
            "data": template_data(content.get("data")),
            "client_msg_id": client_msg_id(message.key),
        }
        url = _optional_text(content, "url")
        if url:
            body["url"] = url
        if content.get("miniprogram"):
            body["miniprogram"] = _miniprogram(content["miniprogram"])
        return body


class WeChatSubscribeAdapter(_WeChatAdapter):
    type = "wechat_subscribe"
    channel = "wechat_oa"
    idempotent = False  # bizsend documents no idempotency field
    path = "/cgi-bin/message/subscribe/bizsend"

    def body(self, message: Message) -> dict[str, Any]:
        content = message.content
        body: dict[str, Any] = {
            "touser": _openid(message),
            "template_id": _template_id(content),
            "data": template_data(content.get("data")),
        }
        page = _optional_text(content, "page") or _optional_text(content, "url")
        if page:
            body["page"] = page
        if content.get("miniprogram"):
            body["miniprogram"] = _miniprogram(content["miniprogram"])
        return body


class MiniProgramSubscribeAdapter(_WeChatAdapter):
    type = "miniprogram_subscribe"
    channel = "mini_program"
    idempotent = False  # subscribe/send documents no idempotency field
    path = "/cgi-bin/message/subscribe/send"

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        super().__init__(settings, secrets)
        self.state = settings.get("miniprogram_state") or "formal"
        self.lang = settings.get("lang") or "zh_CN"
        if self.state not in _STATES:
            raise ChannelConfigError(
                f"miniprogram_state 只能是 {'/'.join(_STATES)} / miniprogram_state must be one of {', '.join(_STATES)}"
            )
        if self.lang not in _LANGS:
            raise ChannelConfigError(
                f"lang 只能是 {'/'.join(_LANGS)} / lang must be one of {', '.join(_LANGS)}"
            )

    def body(self, message: Message) -> dict[str, Any]:
        content = message.content
        state = content.get("miniprogram_state") or self.state
        lang = content.get("lang") or self.lang
        if state not in _STATES:
            raise InvalidContent(
                f"miniprogram_state 只能是 {'/'.join(_STATES)} / miniprogram_state must be one of {_STATES}"
            )
        if lang not in _LANGS:
            raise InvalidContent(f"lang 只能是 {'/'.join(_LANGS)} / lang must be one of {_LANGS}")
        body: dict[str, Any] = {
            "touser": _openid(message),
            "template_id": _template_id(content),
            "data": template_data(content.get("data")),
            "miniprogram_state": state,
            "lang": lang,
        }
        page = _optional_text(content, "page")
        if page:
            body["page"] = page
        return body


def _openid(message: Message) -> str:
    to = message.to.strip() if isinstance(message.to, str) else ""
    if not to:
        raise InvalidContent("缺少接收者 openid / the recipient openid (Message.to) is empty")
    return to


def _template_id(content: Mapping[str, Any]) -> str:
    value = content.get("template_id")
    if not isinstance(value, str) or not value.strip():
        raise InvalidContent("缺少 content.template_id / content.template_id is required")
    return value.strip()


def _optional_text(content: Mapping[str, Any], name: str) -> str | None:
    value = content.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidContent(f"content.{name} 必须是字符串 / content.{name} must be a string")
    return value


def _miniprogram(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not isinstance(value.get("appid"), str) or not value["appid"]:
        raise InvalidContent(
            "content.miniprogram 必须是 {appid, pagepath} / content.miniprogram must be {appid, pagepath}"
        )
    out = {"appid": value["appid"]}
    pagepath = value.get("pagepath")
    if pagepath:
        if not isinstance(pagepath, str):
            raise InvalidContent(
                "content.miniprogram.pagepath 必须是字符串 / miniprogram.pagepath must be a string"
            )
        out["pagepath"] = pagepath
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


for _adapter, _label in (
    (WeChatTemplateAdapter, "微信公众号模板消息 / WeChat official account template message"),
    (WeChatSubscribeAdapter, "微信公众号订阅通知 / WeChat official account subscription notification"),
    (MiniProgramSubscribeAdapter, "微信小程序订阅消息 / WeChat Mini Program subscribe message"),
):
    register(AdapterType(type=_adapter.type, channel=_adapter.channel, factory=_adapter, label=_label,
                         secrets=("app_secret",)))  # fmt: skip
