"""SMTP adapter against a real local aiosmtpd server: the bytes delivered and the outcome mapping."""

from __future__ import annotations

import asyncio
import email
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from quanyu.channels.base import ChannelConfigError, Message
from quanyu.channels.email import SmtpAdapter, _factory, message_id, settings_from_url

UNSUB = "https://q.example.com/r/u/eyJrIjoiZW5yXzAxSEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaOm5vZGUxOjEifQ.abcdefghijklmnopqrstuv"
MAILTO = "mailto:unsubscribe@shop.example.com?subject=unsubscribe"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collector:
    """Accepts mail, except where told to refuse or stall."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.peers: list[Any] = []
        self.rcpt_replies: dict[str, str] = {}
        self.mail_replies: list[str] = []  # consumed one per MAIL command
        self.data_reply: str | None = None
        self.data_delay = 0.0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_replies:
            return self.mail_replies.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_reply:
            return self.data_reply
        self.envelopes.append(envelope)
        self.peers.append(session.peer)
        return "250 2.0.0 Message accepted"


@contextmanager
def smtp_server(handler: Collector, **kwargs: Any) -> Iterator[Controller]:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost (its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "quanyu test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    return ctx


def adapter(port: int, **extra: Any) -> SmtpAdapter:
    settings = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_address": "shop@example.com",
        "from_name": "全域商城",
        "timeout": 5,
        "helo_name": "test.local",
        **extra,
    }
    return _factory(settings, {k: v for k, v in extra.items() if k == "password"})


def msg(key: str = "enr_1:node_1:1", to: str = "alice@example.com", **kw: Any) -> Message:
    return Message(
        key=key,
        workspace_id="ws_1",
        profile_id="p_1",
        channel="email",
        to=to,
        content=kw.pop(
            "content", {"subject": "双十一大促：全场五折起", "text": "你好，李雷！\n.hidden dot line"}
        ),
        purpose=kw.pop("purpose", "marketing"),
        meta=kw.pop(
            "meta",
            {
                "unsubscribe_url": UNSUB,
                "unsubscribe_mailto": "unsubscribe@shop.example.com?subject=unsubscribe",
            },
        ),
    )


def parsed(envelope: Any) -> Any:
    return email.message_from_bytes(envelope.content, policy=policy.default)


def test_marketing_mail_bytes() -> None:
    handler = Collector()
    html = "<html><body><p>你好</p></body></html>"
    content = {
        "subject": "双十一大促：全场五折起，快来看看吧！这是一条很长的中文主题用来测试折行",
        "text": "你好，李雷！\n.hidden dot line",
        "html": html,
    }
    with smtp_server(handler) as server:
        results = adapter(server.port).send([msg(content=content)])
    assert results[0].outcome == "sent", results
    (envelope,) = handler.envelopes
    raw: bytes = envelope.content
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # headers are 7-bit clean (RFC 2047 words for the Chinese)
    assert b"\n" not in raw.replace(b"\r\n", b"")  # no bare line feeds
    m = parsed(envelope)
    assert m["Subject"] == content["subject"]
    assert m["From"].addresses[0].display_name == "全域商城"
    assert m["From"].addresses[0].addr_spec == "shop@example.com"
    assert m["To"] == "alice@example.com"
    assert envelope.mail_from == "shop@example.com" and envelope.rcpt_tos == ["alice@example.com"]
    assert " ".join(str(m["List-Unsubscribe"]).split()) == f"<{UNSUB}>, <{MAILTO}>"
    assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"<{UNSUB}>".encode() in raw  # the URL itself is never an encoded word
    text = m.get_body(("plain",)).get_content()
    assert "你好，李雷！" in text and ".hidden dot line" in text  # dot-stuffing undone by the server
    assert text.rstrip().endswith(f"退订 / Unsubscribe: {UNSUB}")
    body_html = m.get_body(("html",)).get_content()
    assert f'<a href="{UNSUB}">' in body_html
    assert body_html.index("Unsubscribe") < body_html.index("</body>")
    assert m["Message-ID"] == message_id("enr_1:node_1:1", "example.com") == results[0].provider_id


def test_message_id_is_stable_per_key_and_transactional_has_no_unsubscribe() -> None:
    handler = Collector()
    with smtp_server(handler) as server:
        a = adapter(server.port)
        a.send([msg(key="k1", purpose="transactional")])
        a.send([msg(key="k1", purpose="transactional"), msg(key="k2")])
    ids = [parsed(e)["Message-ID"] for e in handler.envelopes]
    assert ids[0] == ids[1] != ids[2]
    first = parsed(handler.envelopes[0])
    assert first["List-Unsubscribe"] is None and first["List-Unsubscribe-Post"] is None
    assert "Unsubscribe" not in first.get_body(("plain",)).get_content()


def test_one_connection_per_batch_and_refused_recipient_in_the_middle() -> None:
    handler = Collector()
    handler.rcpt_replies["bad@example.com"] = "550 5.1.1 no such user"
    handler.rcpt_replies["busy@example.com"] = "450 4.2.1 mailbox busy, try later"
    with smtp_server(handler) as server:
        results = adapter(server.port).send(
            [msg("k1"), msg("k2", to="bad@example.com"), msg("k3", to="busy@example.com"), msg("k4")]
        )
    outcome = {r.key: (r.outcome, r.error_code) for r in results}
    assert outcome == {
        "k1": ("sent", None),
        "k2": ("failed", "550"),
        "k3": ("retry", "450"),
        "k4": ("sent", None),
    }
    assert "no such user" in (results[1].error or "")
    assert len(handler.envelopes) == 2 and len(set(handler.peers)) == 1


def test_data_refusals() -> None:
    handler = Collector()
    with smtp_server(handler) as server:
        handler.data_reply = "554 5.7.1 spam detected"
        (failed,) = adapter(server.port).send([msg()])
        handler.data_reply = "451 4.3.0 temporary failure"
        (retry,) = adapter(server.port).send([msg()])
    assert (failed.outcome, failed.error_code) == ("failed", "554")
    assert (retry.outcome, retry.error_code) == ("retry", "451")


def test_server_closing_channel_reconnects() -> None:
    handler = Collector()
    handler.mail_replies = ["421 4.7.0 too many messages, closing"]
    with smtp_server(handler) as server:
        results = adapter(server.port).send([msg("k1"), msg("k2")])
    assert [r.outcome for r in results] == ["sent", "sent"]


def test_no_reply_after_data_is_unknown() -> None:
    handler = Collector()
    handler.data_delay = 3.0
    with smtp_server(handler) as server:
        results = adapter(server.port, timeout=0.5).send([msg("k1"), msg("k2")])
    assert results[0].outcome == "unknown" and results[0].error_code == "lost_after_data"
    assert (results[1].key, results[1].outcome, results[1].error_code) == ("k2", "retry", "not_attempted")


def test_server_down_is_retry_for_the_whole_batch() -> None:
    results = adapter(free_port()).send([msg("k1"), msg("k2")])
    assert [(r.outcome, r.error_code) for r in results] == [
        ("retry", "connect"),
        ("retry", "connect"),
    ]  # untried
    assert "无法连接 SMTP 服务器" in (results[0].error or "")


def test_starttls_required_but_not_offered_is_refused() -> None:
    handler = Collector()
    with smtp_server(handler) as server:
        results = adapter(server.port, security="starttls").send([msg()])
    assert (results[0].outcome, results[0].error_code) == ("failed", "starttls_unavailable")
    assert "STARTTLS" in (results[0].error or "")
    assert handler.envelopes == []


def test_starttls(cert: tuple[Path, Path]) -> None:
    handler = Collector()
    with smtp_server(handler, tls_context=server_tls(cert), require_starttls=True) as server:
        ok = adapter(server.port, security="starttls", ca_file=str(cert[0])).send([msg()])
        untrusted = adapter(server.port, security="starttls").send([msg()])
    assert ok[0].outcome == "sent"
    assert (untrusted[0].outcome, untrusted[0].error_code) == ("failed", "tls_verify")
    assert len(handler.envelopes) == 1


def test_implicit_tls(cert: tuple[Path, Path]) -> None:
    handler = Collector()
    with smtp_server(handler, ssl_context=server_tls(cert)) as server:
        results = adapter(server.port, security="ssl", ca_file=str(cert[0])).send([msg()])
    assert results[0].outcome == "sent"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth() -> None:
    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"shop",
            "密码 p@ss".encode(),
        )
        return AuthResult(success=ok, handled=False)

    handler = Collector()
    with smtp_server(
        handler, authenticator=authenticator, auth_required=True, auth_require_tls=False
    ) as server:
        good = adapter(server.port, username="shop", password="密码 p@ss").send([msg()])
        bad = adapter(server.port, username="shop", password="wrong").send([msg("k1"), msg("k2")])
        missing = adapter(server.port).send([msg()])
    assert good[0].outcome == "sent"
    assert [(r.outcome, r.error_code) for r in bad] == [("failed", "535"), ("failed", "535")]
    assert "认证失败" in (bad[0].error or "")
    assert (missing[0].outcome, missing[0].error_code) == ("failed", "530")
    assert len(handler.envelopes) == 1


def test_bad_message_is_failed_without_touching_the_server() -> None:
    results = adapter(free_port()).send(
        [
            msg(to="not-an-address"),
            msg(to="evil@example.com\r\nBcc: x@y.z"),
            msg(content={"text": "no subject"}),
        ]
    )
    assert [r.error_code for r in results] == ["bad_address", "bad_address", "bad_content"]
    assert all(r.outcome == "failed" for r in results)


def test_html_only_mail_gets_a_plain_part() -> None:
    handler = Collector()
    page = (
        "<html><head><style>p{color:red}</style></head><body><h1>大促</h1>"
        '<p>点击 <a href="https://shop.example.com/?a=1&amp;b=2">这里</a> 领券</p></body></html>'
    )
    with smtp_server(handler) as server:
        (result,) = adapter(server.port).send([msg(content={"subject": "券", "html": page})])
    assert result.outcome == "sent"
    m = parsed(handler.envelopes[0])
    text = m.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("大促\n点击 这里 (https://shop.example.com/?a=1&b=2) 领券")
    assert "color" not in text and text.rstrip().endswith(f"退订 / Unsubscribe: {UNSUB}")
    assert "<h1>大促</h1>" in m.get_body(("html",)).get_content()


def test_settings_from_url() -> None:
    assert settings_from_url(
        "smtp://user%40shop:p%40ss%2Fw@mail.example.com:587?from=shop@example.com&security=starttls"
    ) == {
        "host": "mail.example.com",
        "port": 587,
        "security": "starttls",
        "username": "user@shop",
        "password": "p@ss/w",
        "from_address": "shop@example.com",
    }
    assert settings_from_url("smtps://u:p@mail.example.com?from=a@b.cn&name=%E5%85%A8%E5%9F%9F") == {
        "host": "mail.example.com",
        "port": 465,
        "security": "ssl",
        "username": "u",
        "password": "p",
        "from_address": "a@b.cn",
        "from_name": "全域",
    }
    local = settings_from_url("smtp://127.0.0.1:2525?security=none&from=demo@quanyu.local&timeout=3")
    assert local == {
        "host": "127.0.0.1",
        "port": 2525,
        "security": "none",
        "from_address": "demo@quanyu.local",
        "timeout": 3.0,
    }
    assert settings_from_url("smtp://mail.example.com")["port"] == 587


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://mail.example.com", "smtp://"),
        ("smtp://", "no host"),
        ("smtp://mail.example.com:99999", "port"),
        ("smtp://mail.example.com?security=tls", "invalid security"),
        ("smtps://mail.example.com?security=starttls", "smtps:// means security=ssl"),
        ("smtp://mail.example.com?form=a@b.c", "unknown SMTP URL parameters ['form']"),
        ("smtp://mail.example.com?from=nobody", "invalid from_address"),
        ("smtp://mail.example.com?timeout=soon", "timeout"),
    ],
)
def test_settings_from_url_errors(url: str, problem: str) -> None:
    with pytest.raises(ChannelConfigError, match=re.escape(problem)):
        settings_from_url(url)


def test_factory_validates() -> None:
    with pytest.raises(ChannelConfigError, match="host"):
        _factory({"from_address": "a@b.c"}, {})
    with pytest.raises(ChannelConfigError, match="from_address"):
        _factory({"host": "h"}, {})
    with pytest.raises(ChannelConfigError, match="password"):
        _factory({"host": "h", "from_address": "a@b.c", "username": "u"}, {})
    a = _factory({"host": "h", "from_address": "a@b.c", "security": "ssl"}, {})
    assert (a.type, a.channel, a.idempotent, a.settings.port) == ("smtp", "email", False, 465)
