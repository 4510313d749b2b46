"""What comes back from the SMS providers: replies (上行短信) and delivery reports (状态报告).

Unsubscribe replies
-------------------
`is_unsubscribe(text)` is true when the reply, normalised, *equals* one of the opt-out keywords:

    TD, T, N, R, 退订, 取消订阅, UNSUBSCRIBE, STOP

Sources: Tencent Cloud requires marketing templates to offer "回复 TD、T 或 N 退订"
(cloud.tencent.com/document/product/382/13301); Alibaba Cloud appends "回T退订"; the carriers'
newer wording "拒收请回复R" (e.g. Huawei Cloud's template rules) makes R one too; 退订 / 取消订阅
and the English UNSUBSCRIBE / STOP are what people type when they ignore the instruction.
"退定" (a typo) is not in any provider's documentation, so it is not a keyword.

Normalisation: Unicode NFKC (full-width ＴＤ / ｔｄ / Ｔ / Ｎ become ASCII), upper case, then every
whitespace, punctuation, symbol (emoji included) and control/format character is dropped,
wherever it is. So "td", " T ", "ＴＤ。", "退订！", "T D", "TD🙏" are unsubscribes.

Only an exact match counts: "TD 谢谢", "好的", "TDD", "不要退订", "回T退订了吗" are not. A longer
message may say the opposite ("不要退订"), and guessing wrong silences someone who wanted the
messages; the providers themselves blacklist a number on their documented keywords, so a missed
opt-out is still stopped at the provider (FailedOperation.PhoneNumberInBlacklist / the SmsReport).

Callback payloads
-----------------
Times in these payloads are China time (Asia/Shanghai) without an offset; they come out as UTC.
Every parser accepts the raw body (bytes / str of JSON) or the decoded JSON, a list or a single
object, and raises `ValueError` (Chinese / English) on anything it cannot trust.

- Alibaba Cloud SmsUp (help.aliyun.com/zh/sms/developer-reference/smsup-http): a JSON array of
  {phone_number, content, send_time, sign_name?, dest_code, sequence_id}.
- Tencent Cloud reply callback (cloud.tencent.com/document/api/382/5809): an object (or array) of
  {extend?, mobile, nationcode, sign, text, time (Unix seconds)}; `reply_time` (China time text)
  is accepted in place of `time`.
- Alibaba Cloud SmsReport (help.aliyun.com/document_detail/101867): a JSON array of
  {phone_number, send_time, report_time, success, err_code, err_msg, sms_size, biz_id, out_id}.
- Tencent Cloud status callback (cloud.tencent.com/document/api/382/5807): an array of
  {user_receive_time, nationcode, mobile, report_status SUCCESS|FAIL, errmsg, description, sid}.

Answer the providers with `ALIYUN_ACK` / `TENCENT_ACK` (HTTP 200) once the batch is stored; any
other answer makes them push it again (Aliyun: after 1, 5 and 10 minutes).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from quanyu.channels.sms import CHINA
from quanyu.channels.sms.phones import normalize_cn_mobile

UNSUBSCRIBE_KEYWORDS = frozenset({"TD", "T", "N", "R", "退订", "取消订阅", "UNSUBSCRIBE", "STOP"})

ALIYUN_ACK: Mapping[str, Any] = {"code": 0, "msg": "接收成功"}
TENCENT_ACK: Mapping[str, Any] = {"result": 0, "errmsg": "OK"}

Provider = Literal["aliyun", "tencent"]
DeliveryStatus = Literal["delivered", "failed"]


def normalize_reply(text: str) -> str:
    """The reply as `is_unsubscribe` compares it: NFKC, upper case, no spaces/punctuation/symbols."""
    folded = unicodedata.normalize("NFKC", text).upper()
    # Categories Z* (separators), P* (punctuation), S* (symbols, emoji), C* (control, format
    # such as zero-width spaces) carry no words.
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "ZPSC")


def is_unsubscribe(text: str) -> bool:
    """Whether an SMS reply asks to stop receiving messages (see the module docstring)."""
    if not isinstance(text, str):
        return False
    return normalize_reply(text) in UNSUBSCRIBE_KEYWORDS


@dataclass(frozen=True)
class InboundReply:
    """One reply a person sent to our SMS."""

    phone: str  # 11-digit mainland number, or +<country><number> for others
    text: str
    at: datetime  # UTC
    provider: Provider
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class DeliveryReport:
    """The carrier's final word on one message we sent."""

    provider_id: str  # Aliyun biz_id / Tencent sid: the SendResult.provider_id of the send
    key: str | None  # our message key when the provider echoes it (Aliyun out_id)
    phone: str
    status: DeliveryStatus
    at: datetime  # UTC
    error_code: str | None  # the carrier's status code when failed (e.g. MK:0001, UNDELIV)
    raw: Mapping[str, Any]
    provider: Provider


# -- helpers ---------------------------------------------------------------------------------


def _bad(provider: str, what: str, english: str) -> ValueError:
    return ValueError(f"{provider} 回调无效：{what} / invalid {provider} callback: {english}")


def _records(payload: Any, provider: str) -> list[Mapping[str, Any]]:
    """The callback's records: raw body or decoded JSON, one object or a list of them."""
    if isinstance(payload, bytes | bytearray):
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(provider, "不是 UTF-8", "body is not UTF-8") from None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            raise _bad(provider, "不是 JSON", "body is not JSON") from None
    if isinstance(payload, Mapping):
        payload = [payload]
    if not isinstance(payload, list):
        raise _bad(provider, "应为对象或数组", "expected an object or an array")
    for i, item in enumerate(payload):
        if not isinstance(item, Mapping):
            raise _bad(provider, f"第 {i} 条不是对象", f"item {i} is not an object")
    return payload


def _text(item: Mapping[str, Any], name: str, provider: str, i: int, *, allow_empty: bool = False) -> str:
    value = item.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise _bad(provider, f"第 {i} 条缺少字段 {name!r}", f"item {i} is missing {name!r}")
    return value if allow_empty else value.strip()


def china_time(value: str) -> datetime:
    """A provider's China-time text ("2017-01-01 00:00:00" or "20170101000000") as UTC."""
    text = value.strip()
    try:
        compact = text.isdigit() and len(text) == 14  # the older SmsUp sample: 20170901000000
        when = datetime.strptime(text, "%Y%m%d%H%M%S") if compact else datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"无法识别的时间 {value!r} / unrecognised time {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=CHINA)
    return when.astimezone(UTC)


def _time(item: Mapping[str, Any], name: str, provider: str, i: int) -> datetime:
    raw = _text(item, name, provider, i)
    try:
        return china_time(raw)
    except ValueError:
        raise _bad(
            provider, f"第 {i} 条的 {name} 不是时间：{raw!r}", f"item {i} has a bad {name}: {raw!r}"
        ) from None


def _phone(raw: str, nationcode: str = "86") -> str:
    """Mainland numbers as 11 digits (as profiles are matched); others as +<code><number>."""
    code = nationcode.strip().lstrip("+") or "86"
    if code == "86":
        try:
            return normalize_cn_mobile(raw)
        except ValueError:
            pass
        return raw.strip()
    return f"+{code}{raw.strip()}"


def _aliyun_phone(raw: str) -> str:
    try:
        return normalize_cn_mobile(raw)
    except ValueError:
        return raw.strip()


# -- replies ---------------------------------------------------------------------------------


def parse_aliyun_replies(payload: Any) -> list[InboundReply]:
    """Alibaba Cloud SmsUp push: replies, times converted from China time to UTC."""
    replies = []
    for i, item in enumerate(_records(payload, "aliyun")):
        replies.append(
            InboundReply(
                phone=_aliyun_phone(_text(item, "phone_number", "aliyun", i)),
                text=_text(item, "content", "aliyun", i, allow_empty=True),
                at=_time(item, "send_time", "aliyun", i),
                provider="aliyun",
                raw=dict(item),
            )
        )
    return replies


def parse_tencent_replies(payload: Any) -> list[InboundReply]:
    """Tencent Cloud reply callback: `time` is Unix seconds; `reply_time` (China time) also accepted."""
    replies = []
    for i, item in enumerate(_records(payload, "tencent")):
        stamp = item.get("time")
        if stamp is not None and not isinstance(stamp, bool):
            try:
                at = datetime.fromtimestamp(int(str(stamp).strip()), UTC)
            except (ValueError, OverflowError, OSError):
                raise _bad(
                    "tencent", f"第 {i} 条的 time 不是时间戳", f"item {i} has a bad time: {stamp!r}"
                ) from None
        elif item.get("reply_time") is not None:
            at = _time(item, "reply_time", "tencent", i)
        else:
            raise _bad("tencent", f"第 {i} 条缺少字段 'time'", f"item {i} is missing 'time'")
        nationcode = str(item.get("nationcode") or "86")
        replies.append(
            InboundReply(
                phone=_phone(_text(item, "mobile", "tencent", i), nationcode),
                text=_text(item, "text", "tencent", i, allow_empty=True),
                at=at,
                provider="tencent",
                raw=dict(item),
            )
        )
    return replies


# -- delivery reports ------------------------------------------------------------------------


def _flag(value: Any, provider: str, i: int) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _bad(provider, f"第 {i} 条的 success 不是布尔值", f"item {i} has a bad success flag: {value!r}")


def parse_aliyun_reports(payload: Any) -> list[DeliveryReport]:
    """Alibaba Cloud SmsReport push: `biz_id` is the BizId SendSms answered, `out_id` our key."""
    reports = []
    for i, item in enumerate(_records(payload, "aliyun")):
        delivered = _flag(item.get("success"), "aliyun", i)
        at_field = "report_time" if item.get("report_time") else "send_time"
        out_id = item.get("out_id")
        err_code = item.get("err_code")
        reports.append(
            DeliveryReport(
                provider_id=_text(item, "biz_id", "aliyun", i),
                key=str(out_id).strip() if out_id not in (None, "") else None,
                phone=_aliyun_phone(_text(item, "phone_number", "aliyun", i)),
                status="delivered" if delivered else "failed",
                at=_time(item, at_field, "aliyun", i),
                error_code=None if delivered or not err_code else str(err_code),
                raw=dict(item),
                provider="aliyun",
            )
        )
    return reports


def parse_tencent_reports(payload: Any) -> list[DeliveryReport]:
    """Tencent Cloud status callback: `sid` is the SerialNo SendSms answered for that number."""
    reports = []
    for i, item in enumerate(_records(payload, "tencent")):
        status = _text(item, "report_status", "tencent", i).upper()
        if status not in ("SUCCESS", "FAIL"):
            raise _bad(
                "tencent",
                f"第 {i} 条的 report_status 应为 SUCCESS 或 FAIL",
                f"item {i} has report_status {status!r}, expected SUCCESS or FAIL",
            )
        errmsg = item.get("errmsg")
        reports.append(
            DeliveryReport(
                provider_id=_text(item, "sid", "tencent", i),
                key=None,  # the status callback does not echo SessionContext
                phone=_phone(_text(item, "mobile", "tencent", i), str(item.get("nationcode") or "86")),
                status="delivered" if status == "SUCCESS" else "failed",
                at=_time(item, "user_receive_time", "tencent", i),
                error_code=None if status == "SUCCESS" or not errmsg else str(errmsg),
                raw=dict(item),
                provider="tencent",
            )
        )
    return reports


def parse_replies(provider: str, payload: Any) -> list[InboundReply]:
    """Replies from `provider` ("aliyun" or "tencent")."""
    if provider == "aliyun":
        return parse_aliyun_replies(payload)
    if provider == "tencent":
        return parse_tencent_replies(payload)
    raise ValueError(f"未知的短信服务商 {provider!r} / unknown SMS provider {provider!r}")


def parse_reports(provider: str, payload: Any) -> list[DeliveryReport]:
    """Delivery reports from `provider` ("aliyun" or "tencent")."""
    if provider == "aliyun":
        return parse_aliyun_reports(payload)
    if provider == "tencent":
        return parse_tencent_reports(payload)
    raise ValueError(f"未知的短信服务商 {provider!r} / unknown SMS provider {provider!r}")
