"""WeCom (企业微信) customer messages sent through a store guide: 创建企业群发, `add_msg_template`.

Adapter type `wecom_guide` (channel `wecom`). Settings: `corp_id`, `corp_secret` (secret: the
客户联系 secret, or that of an app allowed to call the customer-contact APIs), `base_url` (default
https://qyapi.weixin.qq.com), `timeout` (seconds, default 10).

Content: `{"sender": the guide's WeCom userid (required: the store guide the customer added), "text"?:
str (at most 4000 bytes), "attachments"?: [{"msgtype": "image" | "link" | "miniprogram" | "video" |
"file", <msgtype>: {...}}] (at most 9, WeCom's own shape)}`; at least one of text and attachments.
`Message.to` is the customer's external_userid.

WeCom does not message the customer directly: the call creates a task that the guide confirms in the
WeCom app, and only then is it sent. So `sent` here means "task created, waiting for the guide";
`provider_id` is the task's `msgid`, shared by every customer in the task, which
`get_groupmsg_send_result` can later turn into per-customer delivery (not done here). Customers WeCom
puts in `fail_list` (invalid, not this guide's customer, receive limit reached) come back `failed`.

Messages with the same sender, text and attachments become one task (up to 10000 customers each), as
a guide confirms one task per content rather than one per customer. WeCom refuses the whole call when
one external_userid is invalid (40096); the group is then split in halves until the bad ids are
isolated, which is safe because a refused call created nothing, but the guide may see several tasks.

The API has no idempotency key, so the adapter is not `idempotent`: after a timeout or -1 the task may
or may not exist and the messages stay `unknown`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from quanyu.channels.base import Message, SendResult
from quanyu.channels.registry import AdapterType, register
from quanyu.channels.wechat import tokens
from quanyu.channels.wechat.tokens import Failure, TokenError

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
MAX_RECIPIENTS = 10_000
MAX_ATTACHMENTS = 9
MAX_TEXT_BYTES = 4000
ATTACHMENT_TYPES = ("image", "link", "miniprogram", "video", "file")

_INVALID_RECIPIENT = 40096
_REFUSALS: dict[int, str] = {
    40063: "参数为空 / a required parameter is empty",
    40096: "external_userid 无效 / invalid external_userid",
    41048: "没有可发送的客户(已达接收上限?) / no customer can receive it (receive limit reached?)",
    60111: "sender 不是本企业成员的 userid / sender is not a member userid of this corp",
}
# Throttling: (reason, retry_after, stops the batch?).
_THROTTLES: dict[int, tuple[str, float, bool]] = {
    45009: ("接口调用过于频繁 / API call frequency exceeded", 60.0, True),
    45033: ("接口并发调用超过限制 / too many concurrent calls", 5.0, False),
}
_ACCOUNT: dict[int, str] = {
    48002: "API 被禁用(该 secret 有客户联系权限吗?) / API forbidden (does this secret have customer-contact access?)",
    60020: "调用 IP 不在可信 IP 列表中 / caller IP is not a trusted IP",
}


class InvalidContent(ValueError):
    """A message's content cannot be sent as it is; it becomes a `failed` result."""


def task_template(message: Message) -> dict[str, Any]:
    """The part of the add_msg_template body a message decides: sender, text, attachments."""
    content = message.content
    if not isinstance(message.to, str) or not message.to.strip():
        raise InvalidContent(
            "缺少客户 external_userid / the customer's external_userid (Message.to) is empty"
        )
    sender = content.get("sender")
    if not isinstance(sender, str) or not sender.strip():
        raise InvalidContent(
            "缺少 content.sender:发送消息的门店导购的企业微信 userid / content.sender is required: the WeCom "
            "userid of the store guide who sends the message"
        )
    template: dict[str, Any] = {"sender": sender.strip()}
    text = content.get("text")
    if isinstance(text, Mapping):  # WeCom's own {"content": ...} shape
        text = text.get("content")
    if text is not None and not isinstance(text, str):
        raise InvalidContent("content.text 必须是字符串 / content.text must be a string")
    if text:
        if len(text.encode()) > MAX_TEXT_BYTES:
            raise InvalidContent(
                f"content.text 超过 {MAX_TEXT_BYTES} 字节 / content.text is longer than {MAX_TEXT_BYTES} bytes"
            )
        template["text"] = {"content": text}
    attachments = content.get("attachments") or []
    if not isinstance(attachments, Sequence) or isinstance(attachments, str):
        raise InvalidContent("content.attachments 必须是列表 / content.attachments must be a list")
    if len(attachments) > MAX_ATTACHMENTS:
        raise InvalidContent(f"附件最多 {MAX_ATTACHMENTS} 个 / at most {MAX_ATTACHMENTS} attachments")
    checked = []
    for i, item in enumerate(attachments):
        kind = item.get("msgtype") if isinstance(item, Mapping) else None
        if kind not in ATTACHMENT_TYPES or not isinstance(item.get(kind), Mapping):
            raise InvalidContent(
                f"content.attachments[{i}] 必须是 {{msgtype, <msgtype>: {{...}}}},msgtype 为 "
                f"{'/'.join(ATTACHMENT_TYPES)} / attachments[{i}] must be {{msgtype, <msgtype>: {{...}}}} "
                f"with msgtype one of {', '.join(ATTACHMENT_TYPES)}"
            )
        checked.append({"msgtype": kind, kind: dict(item[kind])})
    if checked:
        template["attachments"] = checked
    if "text" not in template and not checked:
        raise InvalidContent(
            "content.text 和 content.attachments 不能都为空 / content needs text or attachments"
        )
    return template


class WeComGuideAdapter:
    type = "wecom_guide"
    channel = "wecom"
    idempotent = False  # add_msg_template has no idempotency key
    path = "/cgi-bin/externalcontact/add_msg_template"

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        kind = self.type
        self.corp_id = tokens.setting_text(settings, "corp_id", kind)
        secret = tokens.setting_secret(settings, secrets, "corp_secret", kind)
        self.base_url = tokens.setting_base_url(settings, DEFAULT_BASE_URL, kind)
        self._client = httpx.Client(timeout=tokens.setting_timeout(settings, kind))
        self._tokens = tokens.shared(self.base_url, self.corp_id, secret)
        self._fetch = tokens.wecom_fetcher(self._client, self.base_url, self.corp_id, secret)
        self._url = f"{self.base_url}{self.path}"

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        results: dict[str, SendResult] = {}
        groups: dict[bytes, tuple[dict[str, Any], dict[str, list[str]]]] = {}
        for message in messages:
            try:
                template = task_template(message)
            except InvalidContent as exc:
                results[message.key] = SendResult(
                    message.key, "failed", error_code="invalid_content", error=str(exc)
                )
                continue
            group = groups.setdefault(orjson.dumps(template, option=orjson.OPT_SORT_KEYS), (template, {}))
            # The same customer twice with the same content gets one message; both keys share it.
            group[1].setdefault(message.to.strip(), []).append(message.key)

        halted: Failure | None = None
        for template, keys_by_user in groups.values():
            users = list(keys_by_user)
            for start in range(0, len(users), MAX_RECIPIENTS):
                chunk = users[start : start + MAX_RECIPIENTS]
                if halted is not None:
                    outcomes = {user: halted.result("") for user in chunk}
                else:
                    outcomes, halted = self._dispatch(template, chunk)
                for user, outcome in outcomes.items():
                    for key in keys_by_user[user]:
                        results[key] = dataclasses.replace(outcome, key=key)
        return [results[message.key] for message in messages]

    def close(self) -> None:
        self._client.close()

    def _dispatch(
        self, template: Mapping[str, Any], users: list[str]
    ) -> tuple[dict[str, SendResult], Failure | None]:
        """One add_msg_template call for `users` (split further on 40096): a keyless result per
        user, and the failure the rest of the batch gets when the problem is not these users'."""
        answer = self._call({"chat_type": "single", "external_userid": users, **template})
        if isinstance(answer, tuple):
            failure, halt = answer
            return {user: failure.result("") for user in users}, halt
        reply = answer
        code = tokens.errcode(reply)
        errmsg = f"errcode {code}: {reply.get('errmsg', '')}"
        if code == 0:
            msgid = reply.get("msgid")
            sent = SendResult("", "sent", provider_id=str(msgid) if msgid else None)
            refused = SendResult(
                "",
                "failed",
                error_code="fail_list",
                error="企业微信未能为该客户创建消息(无效、不是该导购的客户或已达接收上限) / WeCom listed this "
                "customer in fail_list (invalid, not this guide's customer, or receive limit reached)",
            )
            fail_list = set(reply.get("fail_list") or ())
            return {user: refused if user in fail_list else sent for user in users}, None
        if code == _INVALID_RECIPIENT and len(users) > 1:
            middle = len(users) // 2
            left, halted = self._dispatch(template, users[:middle])
            if halted is not None:
                return left | {user: halted.result("") for user in users[middle:]}, halted
            right, halted = self._dispatch(template, users[middle:])
            return left | right, halted
        if code in _THROTTLES:
            reason, after, stops = _THROTTLES[code]
            failure = Failure("retry", str(code), f"{reason},消息未发出 / nothing was sent ({errmsg})", after)
            return {user: failure.result("") for user in users}, failure if stops else None
        if code in _ACCOUNT:
            failure = Failure(
                "retry",
                str(code),
                f"{_ACCOUNT[code]},消息未发出 / nothing was sent ({errmsg})",
                tokens.CONFIG_RETRY_AFTER,
            )
            return {user: failure.result("") for user in users}, failure
        if code == -1:
            unknown = SendResult(
                "",
                "unknown",
                error_code="-1",
                error=f"企业微信系统繁忙,结果未知 / WeCom system busy, outcome unknown ({errmsg})",
            )
            return {user: unknown for user in users}, None
        reason = _REFUSALS.get(code, "企业微信拒绝了该消息 / WeCom refused the message")
        failed = SendResult("", "failed", error_code=str(code), error=f"{reason} ({errmsg})")
        return {user: failed for user in users}, None

    def _call(self, body: Mapping[str, Any]) -> dict[str, Any] | tuple[Failure, Failure | None]:
        """POST with a valid token, refreshing it once on 40014/42001: the reply, or (the failure
        for these users, the failure for the rest of the batch)."""
        for attempt in (1, 2):
            try:
                token = self._tokens.get(self._fetch)
            except TokenError as exc:
                return exc.failure, exc.failure
            reply = tokens.post_json(self._client, self._url, token, body)
            if isinstance(reply, Failure):
                return reply, tokens.halt_after(reply)
            code = tokens.errcode(reply)
            if code not in tokens.WECOM_TOKEN_EXPIRED:
                return reply
            # Refused for the token alone: nothing was created, so calling again cannot duplicate.
            self._tokens.invalidate(token)
            if attempt == 2:
                failure = Failure(
                    "retry",
                    str(code),
                    f"access_token 刷新后仍被拒绝,消息未发出 / access_token still refused after a refresh, "
                    f"nothing was sent (errcode {code}: {reply.get('errmsg', '')})",
                    tokens.TRANSIENT_RETRY_AFTER,
                )
                return failure, failure
        raise AssertionError("unreachable")


register(
    AdapterType(
        type=WeComGuideAdapter.type,
        channel=WeComGuideAdapter.channel,
        factory=WeComGuideAdapter,
        label="企业微信导购群发(导购确认后发送) / WeCom guide message (sent once the guide confirms)",
        secrets=("corp_secret",),
    )
)
