"""Unsubscribe detection and the providers' reply / delivery-report callbacks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quanyu.channels.sms import inbound
from quanyu.channels.sms.inbound import (
    DeliveryReport,
    InboundReply,
    is_unsubscribe,
    parse_aliyun_replies,
    parse_aliyun_reports,
    parse_tencent_replies,
    parse_tencent_reports,
)

KEYWORDS = ["TD", "T", "N", "R", "退订", "取消订阅", "UNSUBSCRIBE", "STOP"]
# Padding that must not change the meaning: ASCII and full-width spaces and punctuation, emoji.
PADDING = " \t\n\u3000\u00a0\u200b.。!！,，?？~～、…-—:：;；'\"“”‘’()（）【】《》🙏😀"


def full_width(ch: str) -> str:
    return chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch


@st.composite
def spelled(draw: st.DrawFn, word: str) -> str:
    """`word` with each letter in random case and random half / full width."""
    out = []
    for ch in word:
        if ch.isascii() and ch.isalpha():
            ch = ch.lower() if draw(st.booleans()) else ch.upper()
            if draw(st.booleans()):
                ch = full_width(ch)
        out.append(ch)
    return "".join(out)


padding = st.text(alphabet=PADDING, max_size=4)


@given(keyword=st.sampled_from(KEYWORDS).flatmap(spelled), before=padding, after=padding)
def test_keywords_in_any_case_width_and_padding_unsubscribe(keyword: str, before: str, after: str) -> None:
    assert is_unsubscribe(before + keyword + after)


@given(
    keyword=st.sampled_from(KEYWORDS).flatmap(spelled),
    extra=st.text(alphabet="0123456789好的谢谢你们我收到了吗", min_size=1, max_size=6),
    at_end=st.booleans(),
)
def test_a_keyword_with_other_words_is_not_an_unsubscribe(keyword: str, extra: str, at_end: bool) -> None:
    assert not is_unsubscribe(keyword + " " + extra if at_end else extra + " " + keyword)


@given(st.text())
def test_never_raises_on_any_text(text: str) -> None:
    assert is_unsubscribe(text) in (True, False)


@pytest.mark.parametrize(
    "text",
    [
        "TD",
        "td",
        "Td",
        "ＴＤ",
        "ｔｄ",
        "Ｔ",
        "Ｎ",
        "n",
        "r",
        "退订",
        "退订。",
        " 退订！ ",
        "取消订阅",
        "STOP",
        "stop",
        "Unsubscribe",
        "T D",
        "TD🙏",
        "\u200bTD",
        "【TD】",
    ],
)
def test_documented_unsubscribes(text: str) -> None:
    assert is_unsubscribe(text)


@pytest.mark.parametrize(
    "text",
    [
        "好的",
        "TDD",
        "TD 谢谢",
        "不要退订",
        "回T退订",
        "退定",
        "STOPS",
        "N/A",
        "T1",
        "",
        "   ",
        "收到",
        "OK",
        "TT",
    ],
)
def test_ordinary_replies_are_not_unsubscribes(text: str) -> None:
    assert not is_unsubscribe(text)


# -- replies ---------------------------------------------------------------------------------


def test_aliyun_smsup_as_documented() -> None:
    body = json.dumps(
        [
            {
                "phone_number": "13811112222",
                "send_time": "2017-09-01 08:00:00",
                "content": "ＴＤ",
                "sign_name": "签名",
                "dest_code": "1234",
                "sequence_id": 1234567890,
            }
        ],
        ensure_ascii=False,
    ).encode()
    [reply] = parse_aliyun_replies(body)
    assert reply == InboundReply(
        phone="13811112222",
        text="ＴＤ",
        at=datetime(2017, 9, 1, 0, 0, tzinfo=UTC),  # 08:00 China time
        provider="aliyun",
        raw=reply.raw,
    )
    assert reply.raw["dest_code"] == "1234"
    assert is_unsubscribe(reply.text)


def test_aliyun_smsup_old_compact_time_and_no_sign_name() -> None:
    [reply] = parse_aliyun_replies(
        [
            {
                "phone_number": "18612345678",
                "send_time": "20170901000000",
                "content": "好的",
                "dest_code": "1",
                "sequence_id": "9",
            }
        ]
    )
    assert reply.at == datetime(2017, 8, 31, 16, 0, tzinfo=UTC)


def test_tencent_reply_as_documented() -> None:
    [reply] = parse_tencent_replies(
        {
            "extend": "",
            "mobile": "13800000001",
            "nationcode": "86",
            "sign": "腾讯云",
            "text": "退订",
            "time": 1457336869,
        }
    )
    assert (reply.phone, reply.text, reply.provider) == ("13800000001", "退订", "tencent")
    assert reply.at == datetime.fromtimestamp(1457336869, UTC)


def test_tencent_reply_with_reply_time_list_and_foreign_number() -> None:
    replies = parse_tencent_replies(
        json.dumps(
            [
                {
                    "mobile": "13800000001",
                    "nationcode": "86",
                    "sign": "s",
                    "text": "好",
                    "reply_time": "2021-06-01 00:30:00",
                },
                {
                    "mobile": "91234567",
                    "nationcode": "852",
                    "sign": "s",
                    "text": "STOP",
                    "time": "1622478600",
                },
            ]
        )
    )
    assert replies[0].at == datetime(2021, 5, 31, 16, 30, tzinfo=UTC)
    assert replies[1].phone == "+85291234567"


# -- delivery reports ------------------------------------------------------------------------


def test_aliyun_smsreport_as_documented() -> None:
    payload = [
        {
            "phone_number": "13811112222",
            "send_time": "2017-01-01 00:00:00",
            "report_time": "2017-01-01 00:00:05",
            "success": True,
            "err_code": "DELIVERED",
            "err_msg": "用户接收成功",
            "sms_size": "1",
            "biz_id": "900619746936498440^0",
            "out_id": "enr1:welcome:0",
        },
        {
            "phone_number": "13811113333",
            "send_time": "2017-01-01 00:00:00",
            "report_time": "2017-01-01 00:01:00",
            "success": False,
            "err_code": "MK:0001",
            "err_msg": "停机",
            "sms_size": "1",
            "biz_id": "900619746936498441^0",
            "out_id": "",
        },
    ]
    ok, bad = parse_aliyun_reports(payload)
    assert ok == DeliveryReport(
        provider_id="900619746936498440^0",
        key="enr1:welcome:0",
        phone="13811112222",
        status="delivered",
        at=datetime(2016, 12, 31, 16, 0, 5, tzinfo=UTC),
        error_code=None,
        raw=ok.raw,
        provider="aliyun",
    )
    assert (bad.status, bad.error_code, bad.key) == ("failed", "MK:0001", None)


def test_tencent_status_callback_as_documented() -> None:
    ok, bad = parse_tencent_reports(
        [
            {
                "user_receive_time": "2015-10-17 08:03:04",
                "nationcode": "86",
                "mobile": "13800000001",
                "report_status": "SUCCESS",
                "errmsg": "DELIVRD",
                "description": "用户短信送达成功",
                "sid": "s-1",
            },
            {
                "user_receive_time": "2015-10-17 08:03:09",
                "nationcode": "86",
                "mobile": "13800000002",
                "report_status": "FAIL",
                "errmsg": "UNDELIV",
                "description": "用户短信未送达",
                "sid": "s-2",
            },
        ]
    )
    assert (ok.provider_id, ok.status, ok.error_code, ok.key, ok.phone) == (
        "s-1",
        "delivered",
        None,
        None,
        "13800000001",
    )
    assert ok.at == datetime(2015, 10, 17, 0, 3, 4, tzinfo=UTC)
    assert (bad.status, bad.error_code) == ("failed", "UNDELIV")


@pytest.mark.parametrize(
    ("parser", "payload", "message"),
    [
        (parse_aliyun_replies, b"not json", "JSON"),
        (parse_aliyun_replies, b"\xff\xfe", "UTF-8"),
        (parse_aliyun_replies, "42", "array"),
        (parse_aliyun_replies, [1, 2], "item 0"),
        (parse_aliyun_replies, [{"content": "TD", "send_time": "2017-09-01 00:00:00"}], "phone_number"),
        (
            parse_aliyun_replies,
            [{"phone_number": "13800000001", "content": "x", "send_time": "昨天"}],
            "send_time",
        ),
        (parse_tencent_replies, {"mobile": "13800000001", "text": "x"}, "time"),
        (parse_tencent_replies, {"mobile": "13800000001", "text": "x", "time": "soon"}, "time"),
        (
            parse_aliyun_reports,
            [{"phone_number": "1", "send_time": "2017-01-01 00:00:00", "success": True}],
            "biz_id",
        ),
        (
            parse_aliyun_reports,
            [{"phone_number": "1", "biz_id": "b", "send_time": "2017-01-01 00:00:00", "success": "maybe"}],
            "success",
        ),
        (
            parse_tencent_reports,
            [
                {
                    "user_receive_time": "2015-10-17 08:03:04",
                    "mobile": "1",
                    "sid": "s",
                    "report_status": "PENDING",
                }
            ],
            "report_status",
        ),
        (
            parse_tencent_reports,
            [{"user_receive_time": "2015-10-17 08:03:04", "mobile": "1", "report_status": "SUCCESS"}],
            "sid",
        ),
    ],
)
def test_bad_payloads_raise_bilingual_value_errors(parser: object, payload: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parser(payload)  # type: ignore[operator]
    assert " / " in str(caught.value)


def test_dispatch_by_provider() -> None:
    assert inbound.parse_replies("aliyun", []) == []
    assert inbound.parse_reports("tencent", []) == []
    with pytest.raises(ValueError, match="unknown SMS provider"):
        inbound.parse_reports("huawei", [])
    assert inbound.TENCENT_ACK == {"result": 0, "errmsg": "OK"}
    assert inbound.ALIYUN_ACK["code"] == 0
