"""Alibaba Cloud SMS adapter against a local fake of dysmsapi.

The fake verifies every request's RPC signature with its own implementation written from the
documentation (help.aliyun.com/document_detail/56189, "Signature mechanism"), not with the
adapter's signer, and answers the documented success / error bodies, so each outcome mapping is
exercised over real HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from quanyu.channels import registry
from quanyu.channels.base import ChannelAdapter, ChannelConfigError, Message
from quanyu.channels.sms import aliyun, phones

KEY_ID = "LTAI5tTestKeyId"
SECRET = "testAccessKeySecret"
UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"


def doc_percent_encode(text: str) -> str:
    """RFC 3986 as the doc describes it: unreserved bytes stay, every other UTF-8 byte is %XY."""
    return "".join(chr(b) if b in UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


def doc_signature(params: dict[str, str], secret: str, method: str = "GET") -> str:
    canonical = "&".join(
        doc_percent_encode(k) + "=" + doc_percent_encode(params[k])
        for k in sorted(params)
        if k != "Signature"
    )
    to_sign = method + "&" + doc_percent_encode("/") + "&" + doc_percent_encode(canonical)
    mac = hmac.new((secret + "&").encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


# The worked example of the documentation: these inputs sign to zJDF+Lrzhj/ThnlvIToysFRq6t4=.
DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
DOC_SIGNATURE = "zJDF+Lrzhj/ThnlvIToysFRq6t4="

REQUIRED = {
    "AccessKeyId",
    "Action",
    "Format",
    "PhoneNumbers",
    "RegionId",
    "SignName",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "TemplateCode",
    "Timestamp",
    "Version",
}


def _ok(biz_id: str) -> tuple[int, dict[str, Any]]:
    return 200, {
        "Message": "OK",
        "RequestId": "F655A8D5-B967-440B-8683-DAD6FF8DE990",
        "Code": "OK",
        "BizId": biz_id,
    }


def _err(code: str, message: str, status: int = 200) -> tuple[int, dict[str, Any]]:
    return status, {"Message": message, "RequestId": "9D7F3798-1CA1-5110-9056-1ECB14A91097", "Code": code}


class FakeDysms:
    """A dysmsapi stand-in: verifies the signature, then answers per phone number."""

    def __init__(self) -> None:
        self.secrets = {KEY_ID: SECRET}
        self.answers: dict[
            str, Any
        ] = {}  # phone -> (status, body) | ("sleep", seconds) | ("raw", status, text)
        self.requests: list[dict[str, str]] = []
        self.nonces: set[str] = set()
        self.problems: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output quiet
                pass

            def do_GET(self) -> None:
                status, body = fake.handle(self.path)
                if status == "sleep":
                    time.sleep(body)
                    status, body = _ok("late")
                if status == "raw":
                    code, text = body
                    self._reply(code, text.encode(), "text/html")
                    return
                self._reply(status, json.dumps(body, ensure_ascii=False).encode(), "application/json")

            def _reply(self, status: int, payload: bytes, ctype: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, path: str) -> tuple[Any, Any]:
        parts = urlsplit(path)
        if parts.path != "/":
            return _err("InvalidAction.NotFound", "Specified api is not found", 404)
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
        params = dict(pairs)
        if len(params) != len(pairs):
            self.problems.append("duplicate parameter")
        self.requests.append(params)
        missing = REQUIRED - params.keys()
        if missing:
            self.problems.append(f"missing {sorted(missing)}")
            return _err("MissingParameter", f"missing {sorted(missing)}", 400)
        secret = self.secrets.get(params["AccessKeyId"])
        if secret is None:
            return _err("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        if not hmac.compare_digest(params["Signature"], doc_signature(params, secret)):
            return _err(
                "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", 400
            )
        checks = {
            "Action": "SendSms",
            "Version": "2017-05-25",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "Format": "JSON",
            "RegionId": "cn-hangzhou",
        }
        for name, want in checks.items():
            if params[name] != want:
                self.problems.append(f"{name}={params[name]!r}")
        stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if abs((datetime.now(UTC) - stamp).total_seconds()) > 900:
            return _err("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", 400)
        if params["SignatureNonce"] in self.nonces:
            return _err("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
        self.nonces.add(params["SignatureNonce"])
        try:
            template_param = json.loads(params.get("TemplateParam", "{}"))
        except ValueError:
            return _err("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if not all(isinstance(v, str) for v in template_param.values()):
            return _err("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        phone = params["PhoneNumbers"]
        answer = self.answers.get(phone)
        if answer is None:
            return _ok(f"900619746936498440^{len(self.requests)}")
        return answer


@pytest.fixture
def fake() -> Iterator[FakeDysms]:
    server = FakeDysms()
    yield server
    server.close()


def make_adapter(fake: FakeDysms, **overrides: Any) -> aliyun.AliyunSmsAdapter:
    secret = overrides.pop("secret", SECRET)
    settings = {
        "access_key_id": KEY_ID,
        "sign_name": "全域测试",
        "endpoint": fake.url,
        "timeout": 2,
        **overrides,
    }
    adapter = aliyun.build(settings, {"access_key_secret": secret})
    assert isinstance(adapter, aliyun.AliyunSmsAdapter)
    return adapter


def msg(to: str, key: str = "enr1:welcome:0", **content: Any) -> Message:
    body: dict[str, Any] = {"template_code": "SMS_123456789", "params": {"name": "张三"}, "text": "张三您好"}
    body.update(content)
    return Message(key=key, workspace_id="ws1", profile_id="p1", channel="sms", to=to, content=body)


# -- signature -------------------------------------------------------------------------------


def test_doc_example_signature_is_golden() -> None:
    assert aliyun.rpc_signature(DOC_PARAMS, "testSecret") == DOC_SIGNATURE


def test_independent_signer_matches_the_doc_example_too() -> None:
    # The fake's verifier is only trustworthy if it reproduces the documented value itself.
    assert doc_signature(DOC_PARAMS, "testSecret") == DOC_SIGNATURE


def test_percent_encoding_follows_rfc3986() -> None:
    assert aliyun.percent_encode("a b*c~d+e/é") == "a%20b%2Ac~d%2Be%2F%C3%A9"
    assert aliyun.percent_encode("a b*c~d+e/é") == doc_percent_encode("a b*c~d+e/é")


# -- sending ---------------------------------------------------------------------------------


def test_success_is_sent_with_the_biz_id_and_the_documented_parameters(fake: FakeDysms) -> None:
    fake.answers["13800000001"] = _ok("900619746936498440^0")
    adapter = make_adapter(fake)
    try:
        [result] = adapter.send([msg("+86 138-0000-0001", params={"name": "张三", "code": 1234})])
    finally:
        adapter.close()
    assert result.outcome == "sent"
    assert result.provider_id == "900619746936498440^0"
    assert result.key == "enr1:welcome:0"
    assert fake.problems == []
    [seen] = fake.requests
    assert seen["PhoneNumbers"] == "13800000001"
    assert seen["OutId"] == "enr1:welcome:0"
    assert seen["SignName"] == "全域测试"
    assert seen["TemplateCode"] == "SMS_123456789"
    assert json.loads(seen["TemplateParam"]) == {"name": "张三", "code": "1234"}
    assert seen["AccessKeyId"] == KEY_ID


def test_awkward_characters_survive_the_signature(fake: FakeDysms) -> None:
    adapter = make_adapter(fake)
    params = {"name": "A+B * C~D / 100% 好 😀", "url": "a=b&c=d"}
    try:
        [result] = adapter.send([msg("13800000002", params=params, sign_name="签名 Sign*~")])
    finally:
        adapter.close()
    assert result.outcome == "sent", result
    [seen] = fake.requests
    assert json.loads(seen["TemplateParam"]) == params
    assert seen["SignName"] == "签名 Sign*~"


def test_each_request_has_a_fresh_nonce_and_a_utc_timestamp(fake: FakeDysms) -> None:
    adapter = make_adapter(fake)
    try:
        results = adapter.send([msg(f"1380000001{i}", key=f"k{i}") for i in range(5)])
    finally:
        adapter.close()
    assert [r.outcome for r in results] == ["sent"] * 5
    assert [r.key for r in results] == [f"k{i}" for i in range(5)]
    assert len({r["SignatureNonce"] for r in fake.requests}) == 5
    assert all(r["Timestamp"].endswith("Z") for r in fake.requests)


@pytest.mark.parametrize(
    ("answer", "outcome", "code"),
    [
        (
            _err("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1"),
            "retry",
            "isv.BUSINESS_LIMIT_CONTROL",
        ),
        (_err("isv.DAY_LIMIT_CONTROL", "触发日发送限额"), "retry", "isv.DAY_LIMIT_CONTROL"),
        (
            _err("Throttling.User", "Request was denied due to user flow control.", 400),
            "retry",
            "Throttling.User",
        ),
        (_err("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"), "failed", "isv.MOBILE_NUMBER_ILLEGAL"),
        (
            _err("isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量"),
            "failed",
            "isv.TEMPLATE_MISSING_PARAMETERS",
        ),
        (_err("isv.AMOUNT_NOT_ENOUGH", "账户余额不足"), "failed", "isv.AMOUNT_NOT_ENOUGH"),
        (_err("isv.SMS_SIGNATURE_ILLEGAL", "签名不合法"), "failed", "isv.SMS_SIGNATURE_ILLEGAL"),
        (_err("isv.SMS_TEMPLATE_ILLEGAL", "模板不合法"), "failed", "isv.SMS_TEMPLATE_ILLEGAL"),
        (_err("isv.BLACK_KEY_CONTROL_LIMIT", "黑名单管控"), "failed", "isv.BLACK_KEY_CONTROL_LIMIT"),
        (_err("isp.SYSTEM_ERROR", "isp.SYSTEM_ERROR"), "unknown", "isp.SYSTEM_ERROR"),
        (
            _err("ServiceUnavailable", "The request has failed due to a temporary failure.", 503),
            "unknown",
            "ServiceUnavailable",
        ),
        (("raw", (502, "<html>Bad Gateway</html>")), "unknown", "HTTP 502"),
        (("raw", (429, "slow down")), "retry", "HTTP 429"),
    ],
)
def test_documented_codes_map_to_outcomes(fake: FakeDysms, answer: Any, outcome: str, code: str) -> None:
    fake.answers["13900000009"] = answer
    adapter = make_adapter(fake)
    try:
        [result] = adapter.send([msg("13900000009")])
    finally:
        adapter.close()
    assert (result.outcome, result.error_code) == (outcome, code)
    assert result.provider_id is None
    assert result.error
    if outcome == "retry":
        assert result.retry_after and result.retry_after > 0


@pytest.mark.parametrize(
    ("message", "low", "high"),
    [
        ("触发分钟级流控Permits:1", 60, 60),
        ("触发小时级流控Permits:5", 3600, 3600),
        ("触发天级流控Permits:10", 1, 86400),
    ],
)
def test_flow_control_window_sets_retry_after(fake: FakeDysms, message: str, low: float, high: float) -> None:
    fake.answers["13900000008"] = _err("isv.BUSINESS_LIMIT_CONTROL", message)
    adapter = make_adapter(fake)
    try:
        [result] = adapter.send([msg("13900000008")])
    finally:
        adapter.close()
    assert result.outcome == "retry"
    assert result.retry_after is not None and low <= result.retry_after <= high


def test_wrong_secret_is_rejected_by_the_server_and_fails(fake: FakeDysms) -> None:
    adapter = make_adapter(fake, secret="not-the-secret")
    try:
        [result] = adapter.send([msg("13800000003")])
    finally:
        adapter.close()
    assert (result.outcome, result.error_code) == ("failed", "SignatureDoesNotMatch")


def test_unknown_access_key_fails(fake: FakeDysms) -> None:
    adapter = make_adapter(fake, access_key_id="LTAIunknown")
    try:
        [result] = adapter.send([msg("13800000004")])
    finally:
        adapter.close()
    assert (result.outcome, result.error_code) == ("failed", "InvalidAccessKeyId.NotFound")


def test_timeout_after_sending_is_unknown(fake: FakeDysms) -> None:
    fake.answers["13800000005"] = ("sleep", 1.5)
    adapter = make_adapter(fake, timeout=0.3)
    try:
        started = time.monotonic()
        [result] = adapter.send([msg("13800000005")])
    finally:
        adapter.close()
    assert result.outcome == "unknown"
    assert time.monotonic() - started < 1.4
    assert len(fake.requests) == 1  # it did reach the provider


def test_connection_refused_is_retry() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = aliyun.build(
        {"access_key_id": KEY_ID, "sign_name": "全域", "endpoint": f"http://127.0.0.1:{port}/"},
        {"access_key_secret": SECRET},
    )
    try:
        results = adapter.send([msg("13800000006", key="a"), msg("13800000007", key="b")])
    finally:
        adapter.close()
    assert [(r.key, r.outcome, r.error_code) for r in results] == [
        ("a", "retry", "connect"),
        ("b", "retry", "connect"),
    ]


def test_bad_content_fails_without_a_request(fake: FakeDysms) -> None:
    adapter = make_adapter(fake)
    try:
        results = adapter.send(
            [
                msg("12345", key="bad-phone"),
                msg("13800000007", key="no-template", template_code=""),
                msg("13800000007", key="nested", params={"a": {"b": 1}}),
            ]
        )
    finally:
        adapter.close()
    assert [(r.key, r.outcome) for r in results] == [
        ("bad-phone", "failed"),
        ("no-template", "failed"),
        ("nested", "failed"),
    ]
    assert "手机号" in (results[0].error or "") and "12345" not in (results[0].error or "")
    assert fake.requests == []


def test_a_batch_answers_one_result_per_message(fake: FakeDysms) -> None:
    fake.answers["13900000001"] = _err("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
    adapter = make_adapter(fake)
    try:
        results = adapter.send([msg("13800000011", key="a"), msg("13900000001", key="b"), msg("1", key="c")])
    finally:
        adapter.close()
    assert {r.key: r.outcome for r in results} == {"a": "sent", "b": "failed", "c": "failed"}


# -- configuration ---------------------------------------------------------------------------


def test_missing_settings_raise_config_errors() -> None:
    with pytest.raises(ChannelConfigError, match="access_key_secret"):
        aliyun.build({"access_key_id": "x", "sign_name": "s"}, {})
    with pytest.raises(ChannelConfigError, match="sign_name"):
        aliyun.build({"access_key_id": "x"}, {"access_key_secret": "y"})
    with pytest.raises(ChannelConfigError, match="endpoint"):
        aliyun.build(
            {"access_key_id": "x", "sign_name": "s", "endpoint": "ftp://x/"}, {"access_key_secret": "y"}
        )
    with pytest.raises(ChannelConfigError, match="timeout"):
        aliyun.build({"access_key_id": "x", "sign_name": "s", "timeout": "soon"}, {"access_key_secret": "y"})


def test_registered_with_its_secret() -> None:
    kind = registry.adapter_types()["aliyun_sms"]
    assert (kind.channel, kind.secrets) == ("sms", ("access_key_secret",))
    adapter = registry.build(
        "aliyun_sms", {"access_key_id": "x", "sign_name": "s"}, {"access_key_secret": "s3cr3t-value"}
    )
    try:
        assert isinstance(adapter, ChannelAdapter)
        assert adapter.idempotent is False
        assert "s3cr3t" not in repr(adapter)
    finally:
        adapter.close()


# -- phone numbers (shared by every SMS adapter) ---------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+8613800138000",
        "+86 138 0013 8000",
        "0086-138-0013-8000",
        "86 13800138000",
        "(+86) 138.0013.8000",
        "１３８００１３８０００",  # full-width digits pasted from a chat window
        "＋８６ １３８００１３８０００",
    ],
)
def test_mainland_mobiles_normalise(raw: str) -> None:
    assert phones.normalize_cn_mobile(raw) == "13800138000"
    assert phones.to_e164(raw) == "+8613800138000"
    assert phones.is_cn_mobile(raw)


@pytest.mark.parametrize(
    "raw",
    ["", "12345", "12800138000", "1380013800", "138001380001", "+1 415 555 0100", "010-12345678", "abc"],
)
def test_other_numbers_are_refused_with_a_bilingual_masked_message(raw: str) -> None:
    with pytest.raises(ValueError, match=r"手机号 .* / invalid mainland China mobile number") as caught:
        phones.normalize_cn_mobile(raw)
    digits = "".join(ch for ch in raw if ch.isdigit())
    if len(digits) >= 5:
        assert digits not in str(caught.value)  # the number is masked
    assert not phones.is_cn_mobile(raw)
