"""The generic HTTP SMS gateway adapter against a local gateway that checks the signature itself."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from quanyu.channels import registry
from quanyu.channels.base import ChannelAdapter, ChannelConfigError, Message
from quanyu.channels.sms import generic

SECRET = "gateway-shared-secret"


class FakeGateway:
    """Answers per `to`: (status, json body or text, extra headers) or ("sleep", seconds)."""

    def __init__(self, secret: str | None = SECRET) -> None:
        self.secret = secret
        self.answers: dict[str, Any] = {}
        self.requests: list[dict[str, Any]] = []
        self.problems: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, body, extra = fake.handle(self.path, dict(self.headers.items()), raw)
                payload = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms/send"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any, dict[str, str]]:
        headers = {k.lower(): v for k, v in headers.items()}
        if path != "/sms/send":
            self.problems.append(f"path {path}")
        if headers.get("content-type") != "application/json":
            self.problems.append(f"content-type {headers.get('content-type')}")
        stamp = headers.get("x-quanyu-timestamp", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
            return 401, {"error": "stale or missing timestamp"}, {}
        if self.secret is not None:
            expected = (
                "v1="
                + hmac.new(self.secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
            )
            if not hmac.compare_digest(headers.get("x-quanyu-signature", ""), expected):
                return 401, {"error": "bad signature"}, {}
        body = json.loads(raw)
        if set(body) != {"to", "text", "key"}:
            self.problems.append(f"body keys {sorted(body)}")
        if headers.get("idempotency-key") != body["key"]:
            self.problems.append("Idempotency-Key differs from key")
        self.requests.append(body)
        answer = self.answers.get(body["to"])
        if answer is None:
            return 200, {"id": f"gw-{len(self.requests)}"}, {}
        if answer[0] == "sleep":
            time.sleep(answer[1])
            return 200, {"id": "late"}, {}
        return answer


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    server = FakeGateway()
    yield server
    server.close()


def make_adapter(url: str, **settings: Any) -> generic.HttpSmsAdapter:
    secret = settings.pop("secret", SECRET)
    return generic.build({"url": url, "allow_private": True, "timeout": 2, **settings}, {"secret": secret})


def msg(to: str, key: str = "enr1:sms:0", text: str = "【全域】您的订单已发货") -> Message:
    return Message(key=key, workspace_id="ws", profile_id="p", channel="sms", to=to, content={"text": text})


def send(adapter: generic.HttpSmsAdapter, messages: list[Message]) -> dict[str, Any]:
    try:
        return {r.key: r for r in adapter.send(messages)}
    finally:
        adapter.close()


def test_sent_with_a_signature_the_gateway_accepts(gateway: FakeGateway) -> None:
    results = send(make_adapter(gateway.url), [msg("+86 138 0000 0001")])
    assert (results["enr1:sms:0"].outcome, results["enr1:sms:0"].provider_id) == ("sent", "gw-1")
    assert gateway.requests == [{"to": "13800000001", "text": "【全域】您的订单已发货", "key": "enr1:sms:0"}]
    assert gateway.problems == []


def test_signature_matches_the_webhook_scheme() -> None:
    assert generic.signature("k", "1700000000", b"{}") == (
        "v1=" + hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    )


def test_wrong_secret_is_refused_by_the_gateway_and_fails(gateway: FakeGateway) -> None:
    results = send(make_adapter(gateway.url, secret="wrong"), [msg("13800000001")])
    assert (results["enr1:sms:0"].outcome, results["enr1:sms:0"].error_code) == ("failed", "401")
    assert gateway.requests == []


def test_without_a_secret_no_signature_is_sent() -> None:
    server = FakeGateway(secret=None)
    try:
        adapter = generic.build({"url": server.url, "allow_private": True}, {})
        results = send(adapter, [msg("13800000001")])
    finally:
        server.close()
    assert results["enr1:sms:0"].outcome == "sent"


@pytest.mark.parametrize(
    ("answer", "outcome", "code"),
    [
        ((202, {"data": {"msgid": "abc"}}, {}), "sent", None),
        ((429, {"error": "slow down"}, {"Retry-After": "7"}), "retry", "429"),
        ((400, {"error": "bad number"}, {}), "failed", "400"),
        ((403, {"error": "blocked"}, {}), "failed", "403"),
        ((302, b"", {"Location": "http://elsewhere/"}), "failed", "302"),
        ((408, {"error": "request timeout"}, {}), "unknown", "408"),
        ((500, {"error": "boom"}, {}), "unknown", "500"),
        ((503, b"<html>down</html>", {}), "unknown", "503"),
    ],
)
def test_status_codes_map_to_outcomes(
    gateway: FakeGateway, answer: Any, outcome: str, code: str | None
) -> None:
    gateway.answers["13900000001"] = answer
    results = send(make_adapter(gateway.url, id_field="data.msgid"), [msg("13900000001")])
    result = results["enr1:sms:0"]
    assert (result.outcome, result.error_code) == (outcome, code)
    if outcome == "sent":
        assert result.provider_id == "abc"
    if outcome == "retry":
        assert result.retry_after == 7


def test_a_2xx_without_an_id_is_still_sent(gateway: FakeGateway) -> None:
    gateway.answers["13900000002"] = (200, b"OK", {})
    results = send(make_adapter(gateway.url), [msg("13900000002")])
    assert (results["enr1:sms:0"].outcome, results["enr1:sms:0"].provider_id) == ("sent", None)


def test_timeout_after_sending_is_unknown(gateway: FakeGateway) -> None:
    gateway.answers["13900000003"] = ("sleep", 1.5)
    started = time.monotonic()
    results = send(make_adapter(gateway.url, timeout=0.3), [msg("13900000003")])
    assert results["enr1:sms:0"].outcome == "unknown"
    assert time.monotonic() - started < 1.4


def test_connection_refused_is_retry_for_the_whole_batch() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = make_adapter(f"http://127.0.0.1:{port}/")
    results = send(adapter, [msg("13800000001", key="a"), msg("13800000002", key="b")])
    assert {k: (r.outcome, r.error_code) for k, r in results.items()} == {
        "a": ("retry", "connect"),
        "b": ("retry", "connect"),
    }


def test_phone_formats(gateway: FakeGateway) -> None:
    send(make_adapter(gateway.url, phone_format="e164"), [msg("13800000001", key="e")])
    send(make_adapter(gateway.url, phone_format="raw"), [msg(" +1 415 555 0100 ", key="r")])
    assert [r["to"] for r in gateway.requests] == ["+8613800000001", "+1 415 555 0100"]


def test_bad_content_fails_without_a_request(gateway: FakeGateway) -> None:
    results = send(
        make_adapter(gateway.url), [msg("13800000001", key="empty", text=" "), msg("555", key="phone")]
    )
    assert {k: r.outcome for k, r in results.items()} == {"empty": "failed", "phone": "failed"}
    assert gateway.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/sms",
        "http://localhost/sms",
        "http://10.1.2.3/sms",
        "http://192.168.1.10/sms",
        "http://172.16.0.1/sms",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/sms",
        "http://[::1]/sms",
        "http://[::ffff:127.0.0.1]/sms",
        "http://0.0.0.0/sms",
    ],
)
def test_private_literal_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(ChannelConfigError, match="allow_private"):
        generic.build({"url": url}, {})
    generic.build({"url": url, "allow_private": True}, {}).close()


def test_settings_are_checked() -> None:
    with pytest.raises(ChannelConfigError, match="url"):
        generic.build({}, {})
    with pytest.raises(ChannelConfigError, match="url"):
        generic.build({"url": "ftp://sms.example.com/"}, {})
    with pytest.raises(ChannelConfigError, match="phone_format"):
        generic.build({"url": "https://sms.example.com/", "phone_format": "intl"}, {})
    adapter = generic.build({"url": "https://sms.example.com/send"}, {})
    assert adapter.idempotent is False
    adapter.close()
    adapter = generic.build({"url": "https://sms.example.com/send", "receiver_dedupes": True}, {})
    assert adapter.idempotent is True
    adapter.close()


def test_registered_with_its_secret() -> None:
    kind = registry.adapter_types()["http_sms"]
    assert (kind.channel, kind.secrets) == ("sms", ("secret",))
    adapter = registry.build("http_sms", {"url": "https://sms.example.com/"}, {"secret": "s3cr3t-value"})
    try:
        assert isinstance(adapter, ChannelAdapter)
        assert "s3cr3t" not in repr(adapter)
    finally:
        adapter.close()
