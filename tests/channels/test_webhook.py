"""Webhook adapter and the private-address guard, against local HTTP(S) servers."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from quanyu.channels import netguard
from quanyu.channels.base import ChannelConfigError, Message
from quanyu.channels.netguard import PrivateAddressError, UnresolvableHostError, check_url, guarded_post
from quanyu.channels.webhook import WebhookAdapter, _factory, validate_settings

SECRET = "whsec_测试"
LOCAL = ["127.0.0.1/32"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        self.server.records.append(
            {"method": method, "path": url.path, "headers": dict(self.headers.items()), "body": body}
        )
        query = parse_qs(url.query)
        if url.path == "/ok":
            self._reply(200, b'{"ok":true}', {"X-Request-Id": "req-1"})
        elif url.path == "/bad":
            self._reply(400, "参数错误 bad payload".encode())
        elif url.path == "/rate":
            self._reply(429, b"slow down", {"Retry-After": "7"})
        elif url.path == "/408":
            self._reply(408)
        elif url.path == "/err":
            self._reply(503, b"down")
        elif url.path == "/slow":
            time.sleep(1.0)
            self._reply(200)
        elif url.path == "/redirect":
            self._reply(int(query.get("code", ["307"])[0]), headers={"Location": query["to"][0]})
        else:
            self._reply(404)

    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        self._handle("GET")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    records: list[dict[str, Any]]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out leaves a broken pipe behind: expected here


@contextmanager
def http_server(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    server = Server((host, 0), Handler)
    server.records = []
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def base(server: Server) -> str:
    host, port = str(server.server_address[0]), server.server_address[1]
    return f"http://{host}:{port}"


@pytest.fixture
def srv() -> Iterator[Server]:
    with http_server() as server:
        yield server


def message(key: str = "enr_1:node_1:1", content: dict[str, Any] | None = None) -> Message:
    return Message(
        key=key,
        workspace_id="ws_1",
        profile_id="p_1",
        channel="webhook",
        to="p_1",
        content=content
        if content is not None
        else {"body": {"event": "coupon", "amount": 20, "名字": "李雷"}},
    )


def hook(url: str, **settings: Any) -> WebhookAdapter:
    secrets = {"secret": settings.pop("secret")} if "secret" in settings else {}
    return _factory({"url": url, "allow": LOCAL, **settings}, secrets)


def test_signed_post(srv: Server) -> None:
    adapter = hook(base(srv) + "/ok", secret=SECRET)
    assert (adapter.type, adapter.channel, adapter.idempotent) == ("webhook", "webhook", False)
    (result,) = adapter.send([message()])
    assert (result.outcome, result.provider_id) == ("sent", "req-1")
    (record,) = srv.records
    headers = {k.lower(): v for k, v in record["headers"].items()}
    assert headers["idempotency-key"] == "enr_1:node_1:1"
    assert headers["content-type"] == "application/json"
    assert json.loads(record["body"]) == {"event": "coupon", "amount": 20, "名字": "李雷"}
    timestamp = headers["x-quanyu-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    # The receiver's check, written independently of the adapter.
    expected = hmac.new(
        SECRET.encode(), f"{timestamp}.".encode() + record["body"], hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(headers["x-quanyu-signature"], "v1=" + expected)


def test_whole_content_without_body_and_no_secret_no_signature(srv: Server) -> None:
    hook(base(srv) + "/ok").send([message(content={"a": 1})])
    (record,) = srv.records
    assert json.loads(record["body"]) == {"a": 1}
    assert "x-quanyu-signature" not in {k.lower() for k in record["headers"]}


def test_outcomes(srv: Server) -> None:
    def one(path: str, **settings: Any) -> Any:
        return hook(base(srv) + path, **settings).send([message()])[0]

    assert (one("/bad").outcome, one("/bad").error_code) == ("failed", "400")
    assert "bad payload" in (one("/bad").error or "")
    rate = one("/rate")
    assert (rate.outcome, rate.error_code, rate.retry_after) == ("retry", "429", 7.0)
    assert one("/408").outcome == "unknown"
    assert (one("/err").outcome, one("/err").error_code) == ("unknown", "503")
    slow = hook(base(srv) + "/slow", timeout=0.3).send([message("k1"), message("k2")])
    assert [(r.outcome, r.error_code) for r in slow] == [("unknown", "timeout"), ("retry", "not_attempted")]
    assert one("/missing").outcome == "failed"


def test_connect_refused_is_retry_for_the_batch(srv: Server) -> None:
    url = base(srv) + "/ok"
    srv.shutdown()
    srv.server_close()
    results = hook(url).send([message("k1"), message("k2")])
    assert [(r.key, r.outcome, r.error_code) for r in results] == [
        ("k1", "retry", "connect"),
        ("k2", "retry", "not_attempted"),
    ]


def test_batch_reuses_the_connection_and_receiver_dedupes(srv: Server) -> None:
    adapter = hook(base(srv) + "/ok", receiver_dedupes=True)
    assert adapter.idempotent is True
    results = adapter.send([message("k1"), message("k2"), message("k3")])
    assert [r.outcome for r in results] == ["sent"] * 3
    assert [r["headers"]["Idempotency-Key"] for r in srv.records] == ["k1", "k2", "k3"]


def test_private_address_refused_by_default(srv: Server) -> None:
    with pytest.raises(PrivateAddressError) as err:
        _factory({"url": base(srv) + "/ok"}, {})
    assert "已拒绝" in str(err.value) and "refusing" in str(err.value)
    adapter = WebhookAdapter(base(srv) + "/ok")  # built around the factory: the send still checks
    (result,) = adapter.send([message()])
    assert (result.outcome, result.error_code) == ("failed", "private_address")
    assert srv.records == []


def test_redirect_to_private_addresses_is_refused(srv: Server) -> None:
    # 127.0.0.2 plays the permitted public receiver; 127.0.0.1 (srv) and the metadata service are not.
    with http_server("127.0.0.2") as outer:
        allowed = base(outer)
        for target in (base(srv) + "/ok", "http://169.254.169.254/latest/meta-data/", "http://[::1]:1/"):
            url = f"{allowed}/redirect?to={target}"
            adapter = _factory({"url": url, "allow": ["127.0.0.2/32"]}, {})
            started = time.monotonic()
            (result,) = adapter.send([message()])
            assert (result.outcome, result.error_code) == ("failed", "private_address"), target
            assert time.monotonic() - started < 2  # refused before any connection attempt
        assert srv.records == []
        assert len(outer.records) == 3
        # With the target allowed, the redirect is followed (307 keeps method and body).
        adapter = _factory({"url": f"{allowed}/redirect?to={base(srv)}/ok", "allow": ["127.0.0.0/30"]}, {})
        (result,) = adapter.send([message()])
        assert result.outcome == "sent"
        assert srv.records[0]["method"] == "POST" and json.loads(srv.records[0]["body"])["event"] == "coupon"


def test_redirect_limit_and_303(srv: Server) -> None:
    loop = f"{base(srv)}/redirect?to=/redirect%3Fto%3D/redirect%253Fto%253D/redirect%25253Fto%25253D/ok"
    response = guarded_post(loop, json={"a": 1}, allow=LOCAL, max_redirects=5)
    assert response.status_code == 200
    with pytest.raises(httpx.TooManyRedirects):
        guarded_post(loop, json={"a": 1}, allow=LOCAL, max_redirects=2)
    srv.records.clear()
    response = guarded_post(f"{base(srv)}/redirect?code=303&to=/ok", json={"a": 1}, allow=LOCAL)
    assert response.status_code == 200
    assert [r["method"] for r in srv.records] == ["POST", "GET"]
    assert srv.records[1]["body"] == b""


def test_connects_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    # "rebind.test" does not exist in DNS: the request can only arrive if it went to the address the
    # guard resolved (127.0.0.2), with the name kept in the Host header.
    calls: list[str] = []

    def fake_resolve(host: str, port: int) -> list[Any]:
        calls.append(host)
        return [ipaddress.ip_address("127.0.0.2")]

    monkeypatch.setattr(netguard, "resolve", fake_resolve)
    with http_server("127.0.0.2") as server:
        port = server.server_address[1]
        response = guarded_post(f"http://rebind.test:{port}/ok", body=b"{}", allow=["127.0.0.2/32"])
        assert response.status_code == 200
        assert server.records[0]["headers"]["Host"] == f"rebind.test:{port}"
    assert calls == ["rebind.test"]


def _cert(folder: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_https_keeps_sni_and_certificate_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert_path, key_path = _cert(tmp_path, "hook.test")  # no IP in the certificate: only the name verifies
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_path, key_path)
    names: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: names.append(name)
    monkeypatch.setattr(netguard, "resolve", lambda host, port: [ipaddress.ip_address("127.0.0.1")])
    with (
        http_server(tls=server_ctx) as server,
        httpx.Client(verify=ssl.create_default_context(cafile=str(cert_path)), trust_env=False) as client,
    ):
        port = server.server_address[1]
        response = guarded_post(f"https://hook.test:{port}/ok", body=b"{}", allow=LOCAL, client=client)
        assert response.status_code == 200
        assert names == ["hook.test"]
        assert server.records[0]["headers"]["Host"] == f"hook.test:{port}"


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[fec0::1]/",
        "http://[ff02::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/",
        "ftp://93.184.216.34/",
        "file:///etc/passwd",
        "gopher://93.184.216.34/",
    ],
)
def test_check_url_refuses(url: str) -> None:
    with pytest.raises(PrivateAddressError):
        check_url(url)


def test_check_url_allows_public_and_allow_listed() -> None:
    assert [str(ip) for ip in check_url("https://93.184.216.34/hook")] == ["93.184.216.34"]
    assert [str(ip) for ip in check_url("http://[2606:4700::1111]/")] == ["2606:4700::1111"]
    assert [str(ip) for ip in check_url("http://[64:ff9b::808:808]/")] == ["64:ff9b::808:808"]
    assert [str(ip) for ip in check_url("http://10.1.2.3/", allow=["10.0.0.0/8"])] == ["10.1.2.3"]
    assert [str(ip) for ip in check_url("http://[::ffff:127.0.0.1]/", allow=LOCAL)] == ["::ffff:7f00:1"]
    with pytest.raises(PrivateAddressError):
        check_url("http://10.1.2.3/", allow=["10.0.0.0/16"])


def test_check_url_refuses_when_any_address_is_private(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        netguard,
        "resolve",
        lambda host, port: [ipaddress.ip_address(a) for a in ("93.184.216.34", "10.0.0.1")],
    )
    with pytest.raises(PrivateAddressError, match=re.escape("10.0.0.1")):
        check_url("https://mixed.example.com/")


def test_validate_settings() -> None:
    with pytest.raises(ChannelConfigError, match="url"):
        validate_settings({})
    with pytest.raises(ChannelConfigError, match="CIDR"):
        validate_settings({"url": "https://93.184.216.34/", "allow": ["not-a-cidr"]})
    with pytest.raises(ChannelConfigError, match="headers"):
        validate_settings({"url": "https://93.184.216.34/", "headers": {"Idempotency-Key": "x"}})
    with pytest.raises(ChannelConfigError, match="timeout"):
        validate_settings({"url": "https://93.184.216.34/", "timeout": 0})
    with pytest.raises(PrivateAddressError):
        validate_settings({"url": "file:///etc/passwd"})
    validate_settings({"url": "https://93.184.216.34/", "headers": {"X-Api-Key": "k"}, "allow": LOCAL})


def test_unresolvable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(host: str, port: int) -> list[Any]:
        raise UnresolvableHostError(f"无法解析主机名 {host} / cannot resolve host {host}")

    monkeypatch.setattr(netguard, "resolve", fail)
    with pytest.raises(UnresolvableHostError):
        validate_settings({"url": "https://nowhere.example.com/"})
    adapter = _factory({"url": "https://nowhere.example.com/"}, {})  # DNS may be back by send time
    (result,) = adapter.send([message()])
    assert (result.outcome, result.error_code) == ("retry", "connect")
