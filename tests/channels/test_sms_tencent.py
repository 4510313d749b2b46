"""Tencent Cloud SMS adapter against a local fake of the API 3.0 endpoint.

The fake checks the common headers and verifies TC3-HMAC-SHA256 with its own implementation,
written from the "签名方法 v3 / Signature v3" documentation (not the adapter's signer), then
answers the documented SendSms bodies: per-number SendStatusSet codes or a top-level Error.
"""

from __future__ import annotations

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

import pytest

from quanyu.channels import registry
from quanyu.channels.base import ChannelAdapter, ChannelConfigError, Message
from quanyu.channels.sms import tencent

SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
APP_ID = "1400006666"

# The worked example of the Signature v3 documentation (DescribeInstances on CVM).
DOC_PAYLOAD = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
DOC_TIMESTAMP = 1551113065
DOC_HASHED_PAYLOAD = "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
DOC_HASHED_CANONICAL = "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
DOC_SIGNATURE = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"


def doc_sign(
    secret_key: str,
    timestamp: int,
    service: str,
    method: str,
    headers: dict[str, str],
    signed: list[str],
    body: bytes,
) -> str:
    """TC3-HMAC-SHA256 as the doc's pseudocode spells it, for any list of signed headers."""
    canonical_headers = "".join(f"{name}:{headers[name].strip().lower()}\n" for name in signed)
    canonical = "\n".join(
        [method, "/", "", canonical_headers, ";".join(signed), hashlib.sha256(body).hexdigest()]
    )
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            f"{date}/{service}/tc3_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )

    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    signing = mac(mac(mac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()


def _error(code: str, message: str) -> dict[str, Any]:
    return {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "ed93f3cb-f35e-473f"}}


class FakeTencentSms:
    def __init__(self) -> None:
        self.secrets = {SECRET_ID: SECRET_KEY}
        self.answers: dict[str, tuple[str, str]] = {}  # E.164 -> (Code, Message)
        self.top_level: dict[str, Any] | None = None  # a whole-request answer
        self.raw: tuple[int, str] | None = None
        self.sleep = 0.0
        self.drop: set[str] = set()  # numbers to leave out of SendStatusSet
        self.max_skew: float | None = 300
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.problems: list[str] = []
        self.serial = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload, ctype = fake.handle(self.path, headers, body)
                if fake.sleep:
                    time.sleep(fake.sleep)
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
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        if self.raw:
            return self.raw[0], self.raw[1].encode(), "text/html"
        answer = self.answer(path, headers, body)
        return 200, json.dumps(answer, ensure_ascii=False).encode(), "application/json"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        self.headers.append(headers)
        if path != "/":
            self.problems.append(f"path {path}")
        for name, want in {
            "x-tc-action": "SendSms",
            "x-tc-version": "2021-01-11",
            "x-tc-region": "ap-guangzhou",
            "content-type": "application/json; charset=utf-8",
        }.items():
            if headers.get(name) != want:
                self.problems.append(f"{name}={headers.get(name)!r}")
        auth = headers.get("authorization", "")
        try:
            algorithm, rest = auth.split(" ", 1)
            fields = dict(part.strip().split("=", 1) for part in rest.split(","))
            secret_id, date, service, terminator = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            signature = fields["Signature"]
            timestamp = int(headers["x-tc-timestamp"])
        except (ValueError, KeyError):
            return _error("AuthFailure.InvalidAuthorization", "Authorization is invalid")
        if algorithm != "TC3-HMAC-SHA256" or service != "sms" or terminator != "tc3_request":
            return _error("AuthFailure.InvalidAuthorization", "Authorization is invalid")
        if not {"content-type", "host"} <= set(signed):
            return _error("AuthFailure.InvalidAuthorization", "content-type and host must be signed")
        if self.max_skew is not None and abs(time.time() - timestamp) > self.max_skew:
            return _error("AuthFailure.SignatureExpire", "Signature expired")
        if date != time.strftime("%Y-%m-%d", time.gmtime(timestamp)):
            return _error(
                "AuthFailure.SignatureFailure", "credential date is not the UTC date of the timestamp"
            )
        secret_key = self.secrets.get(secret_id)
        if secret_key is None:
            return _error("AuthFailure.SecretIdNotFound", "The SecretId is not found")
        if not hmac.compare_digest(
            signature, doc_sign(secret_key, timestamp, "sms", "POST", headers, signed, body)
        ):
            return _error(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature is correct.",
            )
        request = json.loads(body)
        self.requests.append(request)
        if self.top_level:
            return self.top_level
        if request.get("SmsSdkAppId") != APP_ID:
            return _error("UnauthorizedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId 校验失败。")
        numbers = request.get("PhoneNumberSet")
        if not isinstance(numbers, list) or not 1 <= len(numbers) <= 200:
            return _error("LimitExceeded.PhoneNumberCountLimit", "单次提交的手机号个数超过200个")
        if not all(isinstance(p, str) for p in request.get("TemplateParamSet", [])):
            return _error("InvalidParameter", "TemplateParamSet must be strings")
        if not request.get("TemplateId") or not request.get("SignName"):
            return _error("MissingParameter", "TemplateId / SignName")
        statuses = []
        for number in numbers:
            if number in self.drop:
                continue
            code, message = self.answers.get(number, ("Ok", "send success"))
            self.serial += 1
            statuses.append(
                {
                    "SerialNo": f"5000:10457106691570536578494996{self.serial:02d}" if code == "Ok" else "",
                    "PhoneNumber": number,
                    "Fee": 1 if code == "Ok" else 0,
                    "SessionContext": request.get("SessionContext", ""),
                    "Code": code,
                    "Message": message,
                    "IsoCode": "CN",
                }
            )
        return {"Response": {"SendStatusSet": statuses, "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279"}}


@pytest.fixture
def fake() -> Iterator[FakeTencentSms]:
    server = FakeTencentSms()
    yield server
    server.close()


def make_adapter(fake: FakeTencentSms, **overrides: Any) -> tencent.TencentSmsAdapter:
    secret = overrides.pop("secret", SECRET_KEY)
    settings = {
        "secret_id": SECRET_ID,
        "sms_sdk_app_id": APP_ID,
        "sign_name": "全域科技",
        "endpoint": fake.url,
        "timeout": 2,
        **overrides,
    }
    return tencent.build(settings, {"secret_key": secret})


def msg(to: str, key: str, params: Any = ("4370",), **content: Any) -> Message:
    body: dict[str, Any] = {"template_id": "1110", "params": list(params), "text": "您的验证码为4370"}
    body.update(content)
    return Message(key=key, workspace_id="ws1", profile_id="p1", channel="sms", to=to, content=body)


def send(adapter: tencent.TencentSmsAdapter, messages: list[Message]) -> dict[str, Any]:
    try:
        return {r.key: r for r in adapter.send(messages)}
    finally:
        adapter.close()


# -- signature -------------------------------------------------------------------------------


def test_doc_example_is_golden() -> None:
    canonical = tencent.canonical_request(host="cvm.tencentcloudapi.com", payload=DOC_PAYLOAD)
    assert canonical.endswith(DOC_HASHED_PAYLOAD)
    assert hashlib.sha256(canonical.encode()).hexdigest() == DOC_HASHED_CANONICAL
    header = tencent.authorization(
        secret_id="AKIDEXAMPLE",
        secret_key=SECRET_KEY,
        host="cvm.tencentcloudapi.com",
        payload=DOC_PAYLOAD,
        timestamp=DOC_TIMESTAMP,
        service="cvm",
    )
    assert header == (
        "TC3-HMAC-SHA256 Credential=AKIDEXAMPLE/2019-02-25/cvm/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={DOC_SIGNATURE}"
    )


def test_independent_signer_matches_the_doc_example_too() -> None:
    headers = {"content-type": "application/json; charset=utf-8", "host": "cvm.tencentcloudapi.com"}
    assert (
        doc_sign(SECRET_KEY, DOC_TIMESTAMP, "cvm", "POST", headers, ["content-type", "host"], DOC_PAYLOAD)
        == DOC_SIGNATURE
    )


def test_credential_date_is_utc_even_after_china_midnight(fake: FakeTencentSms) -> None:
    # 2019-02-25T16:44:25Z is already 2019-02-26 00:44 in China; the scope must say 2019-02-25.
    fake.max_skew = None
    adapter = make_adapter(fake)
    adapter._clock = lambda: datetime(2019, 2, 25, 16, 44, 25, tzinfo=UTC).timestamp()
    results = send(adapter, [msg("13800000001", "k1")])
    assert results["k1"].outcome == "sent"
    assert "/2019-02-25/sms/tc3_request" in fake.headers[0]["authorization"]


# -- sending ---------------------------------------------------------------------------------


def test_single_message_is_sent_with_session_context(fake: FakeTencentSms) -> None:
    results = send(make_adapter(fake), [msg("138 0000 0001", "enr1:sms:0", params=["4370", 5])])
    assert results["enr1:sms:0"].outcome == "sent"
    assert results["enr1:sms:0"].provider_id.startswith("5000:")
    assert fake.problems == []
    [request] = fake.requests
    assert request == {
        "PhoneNumberSet": ["+8613800000001"],
        "SmsSdkAppId": APP_ID,
        "SignName": "全域科技",
        "TemplateId": "1110",
        "TemplateParamSet": ["4370", "5"],
        "SessionContext": "enr1:sms:0",
    }


def test_identical_messages_share_a_request_and_map_back_by_number(fake: FakeTencentSms) -> None:
    messages = [msg(f"1380000000{i}", f"k{i}") for i in range(3)]
    messages.append(msg("13800000009", "other-params", params=["9999"]))
    messages.append(msg("13800000000", "same-person-again"))
    results = send(make_adapter(fake), messages)
    assert {k: r.outcome for k, r in results.items()} == dict.fromkeys(
        ["k0", "k1", "k2", "other-params", "same-person-again"], "sent"
    )
    assert len({r.provider_id for r in results.values()}) == 5
    sets = sorted(r["PhoneNumberSet"] for r in fake.requests)
    assert sets == [
        ["+8613800000000"],
        ["+8613800000000", "+8613800000001", "+8613800000002"],
        ["+8613800000009"],
    ]
    grouped = next(r for r in fake.requests if len(r["PhoneNumberSet"]) == 3)
    assert "SessionContext" not in grouped


def test_batch_size_caps_numbers_per_request(fake: FakeTencentSms) -> None:
    results = send(make_adapter(fake, batch_size=2), [msg(f"1390000000{i}", f"k{i}") for i in range(5)])
    assert all(r.outcome == "sent" for r in results.values())
    assert [len(r["PhoneNumberSet"]) for r in fake.requests] == [2, 2, 1]


@pytest.mark.parametrize(
    ("code", "outcome", "wait"),
    [
        ("LimitExceeded.PhoneNumberDailyLimit", "retry", (1, 86400)),
        ("LimitExceeded.PhoneNumberThirtySecondLimit", "retry", (30, 30)),
        ("LimitExceeded.PhoneNumberOneHourLimit", "retry", (3600, 3600)),
        ("LimitExceeded.DeliveryFrequencyLimit", "retry", (60, 60)),
        ("FailedOperation.MarketingSendTimeConstraint", "retry", (1, 86400)),
        ("InvalidParameterValue.IncorrectPhoneNumber", "failed", None),
        ("FailedOperation.TemplateIncorrectOrUnapproved", "failed", None),
        ("FailedOperation.SignatureIncorrectOrUnapproved", "failed", None),
        ("FailedOperation.InsufficientBalanceInSmsPackage", "failed", None),
        ("FailedOperation.PhoneNumberInBlacklist", "failed", None),
        ("InternalError.Timeout", "unknown", None),
        ("InternalError.SendAndRecvFail", "unknown", None),
    ],
)
def test_per_number_codes_map_to_outcomes(fake: FakeTencentSms, code: str, outcome: str, wait: Any) -> None:
    fake.answers["+8613900000001"] = (code, "message from the provider")
    results = send(make_adapter(fake), [msg("13900000001", "bad"), msg("13900000002", "good")])
    assert results["good"].outcome == "sent"
    bad = results["bad"]
    assert (bad.outcome, bad.error_code, bad.provider_id) == (outcome, code, None)
    assert bad.error == "message from the provider"
    if wait:
        assert bad.retry_after is not None and wait[0] <= bad.retry_after <= wait[1]
    else:
        assert bad.retry_after is None
    assert len(fake.requests) == 1  # one request for both


@pytest.mark.parametrize(
    ("top", "outcome"),
    [
        (_error("RequestLimitExceeded", "请求的次数超过了频率限制。"), "retry"),
        (_error("InternalError", "内部错误。"), "unknown"),
        (_error("FailedOperation.InsufficientBalanceInSmsPackage", "套餐包余量不足"), "failed"),
        (_error("LimitExceeded.PhoneNumberCountLimit", "单次提交的手机号个数超过200个"), "failed"),
    ],
)
def test_top_level_errors_apply_to_every_message_of_the_request(
    fake: FakeTencentSms, top: dict[str, Any], outcome: str
) -> None:
    fake.top_level = top
    results = send(make_adapter(fake), [msg("13800000001", "a"), msg("13800000002", "b")])
    code = top["Response"]["Error"]["Code"]
    assert {(r.outcome, r.error_code) for r in results.values()} == {(outcome, code)}


def test_wrong_app_id_fails(fake: FakeTencentSms) -> None:
    results = send(make_adapter(fake, sms_sdk_app_id="1400000000"), [msg("13800000001", "a")])
    assert (results["a"].outcome, results["a"].error_code) == (
        "failed",
        "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
    )


def test_wrong_secret_is_rejected_by_the_server_and_fails(fake: FakeTencentSms) -> None:
    results = send(make_adapter(fake, secret="wrong-secret-key"), [msg("13800000001", "a")])
    assert (results["a"].outcome, results["a"].error_code) == ("failed", "AuthFailure.SignatureFailure")
    assert fake.requests == []


def test_unknown_secret_id_fails(fake: FakeTencentSms) -> None:
    results = send(make_adapter(fake, secret_id="AKIDunknown"), [msg("13800000001", "a")])
    assert (results["a"].outcome, results["a"].error_code) == ("failed", "AuthFailure.SecretIdNotFound")


def test_a_number_missing_from_the_answer_is_unknown(fake: FakeTencentSms) -> None:
    fake.drop.add("+8613800000002")
    results = send(make_adapter(fake), [msg("13800000001", "a"), msg("13800000002", "b")])
    assert (results["a"].outcome, results["b"].outcome) == ("sent", "unknown")


def test_timeout_after_sending_is_unknown_for_the_whole_request(fake: FakeTencentSms) -> None:
    fake.sleep = 1.5
    started = time.monotonic()
    results = send(make_adapter(fake, timeout=0.3), [msg("13800000001", "a"), msg("13800000002", "b")])
    assert {r.outcome for r in results.values()} == {"unknown"}
    assert time.monotonic() - started < 1.4


def test_bad_gateway_is_unknown(fake: FakeTencentSms) -> None:
    fake.raw = (502, "<html>502 Bad Gateway</html>")
    results = send(make_adapter(fake), [msg("13800000001", "a")])
    assert (results["a"].outcome, results["a"].error_code) == ("unknown", "HTTP 502")


def test_connection_refused_is_retry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = tencent.build(
        {
            "secret_id": SECRET_ID,
            "sms_sdk_app_id": APP_ID,
            "sign_name": "s",
            "endpoint": f"http://127.0.0.1:{port}",
        },
        {"secret_key": SECRET_KEY},
    )
    results = send(adapter, [msg("13800000001", "a")])
    assert results["a"].outcome == "retry"


def test_bad_content_fails_without_a_request(fake: FakeTencentSms) -> None:
    bad = [
        msg("10086", "bad-phone"),
        Message("dict-params", "ws", "p", "sms", "13800000001", {"template_id": "1", "params": {"a": "b"}}),
        Message("no-template", "ws", "p", "sms", "13800000001", {"params": []}),
    ]
    results = send(make_adapter(fake), bad)
    assert {k: r.outcome for k, r in results.items()} == dict.fromkeys(
        ["bad-phone", "dict-params", "no-template"], "failed"
    )
    assert fake.requests == []


# -- configuration ---------------------------------------------------------------------------


def test_settings_are_checked() -> None:
    base = {"secret_id": "x", "sms_sdk_app_id": APP_ID, "sign_name": "s"}
    with pytest.raises(ChannelConfigError, match="secret_key"):
        tencent.build(base, {})
    with pytest.raises(ChannelConfigError, match="batch_size"):
        tencent.build({**base, "batch_size": 500}, {"secret_key": "k"})
    with pytest.raises(ChannelConfigError, match="endpoint"):
        tencent.build({**base, "endpoint": "https://sms.tencentcloudapi.com/v2"}, {"secret_key": "k"})


def test_registered_with_its_secret() -> None:
    kind = registry.adapter_types()["tencent_sms"]
    assert (kind.channel, kind.secrets) == ("sms", ("secret_key",))
    adapter = registry.build(
        "tencent_sms",
        {"secret_id": "x", "sms_sdk_app_id": APP_ID, "sign_name": "s"},
        {"secret_key": "s3cr3t-key"},
    )
    try:
        assert isinstance(adapter, ChannelAdapter)
        assert adapter.idempotent is False
        assert "s3cr3t" not in repr(adapter)
    finally:
        adapter.close()


def test_grouping_many_identical_messages_is_fast_and_complete() -> None:
    adapter = tencent.TencentSmsAdapter(
        secret_id="x",
        secret_key="y",
        sms_sdk_app_id=APP_ID,
        sign_name="s",
        endpoint="https://sms.example.com",
    )
    try:
        messages = [msg(f"138{i:08d}", f"k{i}") for i in range(5000)]
        messages += [msg("13800000000", f"again{i}") for i in range(3)]  # one person, three messages
        started = time.monotonic()
        requests, failed = adapter._groups(messages)
        assert time.monotonic() - started < 2
    finally:
        adapter.close()
    assert failed == []
    assert sorted(item.message.key for batch in requests for item in batch) == sorted(m.key for m in messages)
    assert all(len(batch) <= 200 and len({i.phone for i in batch}) == len(batch) for batch in requests)
    assert len(requests) == 28  # 5000 / 200 = 25 full, and each repeat of one number needs its own request
