"""E-mail over SMTP with the standard library (`smtplib`, `email`).

Settings (adapter type `smtp`, channel `email`):
- `host` (required), `port` (default 587 / 465 / 25 by `security`);
- `security`: `starttls` (default: the server must offer STARTTLS, never falls back to plain),
  `ssl` (implicit TLS, "smtps"), `none` (plain text: only for a local relay);
- `username`, `password` (stored encrypted) for AUTH;
- `from_address` (required), `from_name`, `reply_to`;
- `timeout` seconds per SMTP operation (default 30), `ca_file` (PEM bundle for a private CA),
  `helo_name` (default: this host's FQDN).
`settings_from_url` turns a `QUANYU_SMTP_URL` (`smtp://user:pass@host:587?from=...`) into them.

Message.content is `{"subject": str, "text": str, "html": str (optional)}`. Every mail gets a
Message-ID derived from the key (a resend of the same attempt carries the same id, so mailbox
providers and people can recognise it). Marketing mail gets `List-Unsubscribe` from
meta["unsubscribe_url"] / meta["unsubscribe_mailto"], `List-Unsubscribe-Post: List-Unsubscribe=One-Click`
(RFC 8058, only with an https link, as the RFC requires) and the link appended to the bodies.

A batch uses one connection (reopened if the server drops it between messages). Outcomes:
- 250 after the message data: `sent`, provider_id = the Message-ID;
- a 5xx reply (MAIL, RCPT, DATA or after the data): `failed`, error_code the reply code ("550");
- a 4xx reply (greylisting, mailbox busy, throttling): `retry`, the server did not take it;
- cannot connect, TLS handshake or greeting problems, a connection lost before the whole message
  was written: `retry` (an SMTP server only accepts a message after its final "." and a 250);
- a timeout or lost connection after the message was fully written, waiting for the reply: `unknown`
  (and the rest of the batch `retry`, untried, rather than each waiting out the same timeout).
Configuration mistakes an admin must fix are `failed`, not `retry`, so a batch does not loop on
them: AUTH refused with 5xx (wrong password; a 4xx AUTH reply is `retry`), `starttls` required but
not offered, the server certificate not trusted, AUTH not offered. Their error says what to fix.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import html
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from quanyu.channels.base import ChannelConfigError, Message, Outcome, SendResult
from quanyu.channels.registry import AdapterType, register

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_TIMEOUT = 30.0

# 7bit: bodies become quoted-printable/base64 and headers RFC 2047 words, so any server takes them
# (no 8BITMIME/SMTPUTF8 needed). refold_source="none": the raw List-Unsubscribe lines stay as
# written; the default folder would turn a long URL into an encoded word no client understands.
_POLICY = email_policy.SMTP.clone(cte_type="7bit", refold_source="none")
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_URI = re.compile(r"[!#$%&'()*+,\-./0-9:;=?@A-Z\[\]_a-z~]+")  # RFC 3986 characters, no <> or spaces
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_INVISIBLE = re.compile(r"<(script|style|head)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_ANCHOR = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)[^>]*>(.*?)</a\s*>""", re.I | re.S)
_BREAK = re.compile(r"<br\s*/?>|</(?:p|div|li|tr|h[1-6]|table|ul|ol)\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_URL_QUERY_KEYS = {"from", "from_name", "name", "reply_to", "security", "timeout", "ca_file", "helo_name"}


def _error(zh: str, en: str) -> ChannelConfigError:
    return ChannelConfigError(f"{zh} / {en}")


def _ascii_address(value: str) -> str | None:
    """The address in ASCII form (IDNA domain), or None when it is not one plain mailbox."""
    value = value.strip()
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain:
        return None
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    candidate = f"{local}@{domain}"
    return candidate if _ADDRESS.fullmatch(candidate) else None


def settings_from_url(url: str) -> dict[str, Any]:
    """Settings from an SMTP URL, e.g. `smtp://user:pass@host:587?from=shop@example.com&security=starttls`,
    `smtps://user:pass@host:465?from=...` or `smtp://127.0.0.1:2525?security=none&from=...`.

    User and password are URL-decoded (write `@` as `%40`, `/` as `%2F`). Query keys: from,
    from_name (or name), reply_to, security, timeout, ca_file, helo_name. The password is returned
    under "password": the caller stores it as a secret. A bad URL raises `ChannelConfigError`.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise _error("SMTP URL 无效（端口？）", f"invalid SMTP URL (port?): {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise _error(
            f"SMTP URL 必须以 smtp:// 或 smtps:// 开头，而不是 {scheme or '(空)'}://",
            f"the SMTP URL must start with smtp:// or smtps://, not {scheme or '(empty)'}://",
        )
    if not parts.hostname:
        raise _error("SMTP URL 缺少主机名", "the SMTP URL has no host")
    if parts.path not in ("", "/"):
        raise _error(
            f"SMTP URL 不应包含路径 {parts.path!r}", f"the SMTP URL should have no path ({parts.path!r})"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - _URL_QUERY_KEYS)
    if unknown:
        raise _error(
            f"SMTP URL 含未知参数 {unknown}",
            f"unknown SMTP URL parameters {unknown} (known: {sorted(_URL_QUERY_KEYS)})",
        )
    repeated = sorted(k for k, v in query.items() if len(v) > 1)
    if repeated:
        raise _error(f"SMTP URL 参数重复 {repeated}", f"SMTP URL parameters given twice: {repeated}")
    params = {k: v[0] for k, v in query.items()}
    security = params.pop("security", "ssl" if scheme == "smtps" else "starttls").lower()
    if security not in SECURITY:
        raise _error(
            f"security 无效 {security!r}", f"invalid security {security!r} (use {', '.join(SECURITY)})"
        )
    if scheme == "smtps" and security != "ssl":
        raise _error("smtps:// 只能使用 security=ssl", "smtps:// means security=ssl")
    settings: dict[str, Any] = {
        "host": parts.hostname,
        "port": port or DEFAULT_PORTS[security],
        "security": security,
    }
    if parts.username:
        settings["username"] = unquote(parts.username)
    if parts.password is not None:
        settings["password"] = unquote(parts.password)
    if "from" in params:
        settings["from_address"] = params.pop("from")
    if "name" in params:
        params.setdefault("from_name", params.pop("name"))
    if "timeout" in params:
        try:
            settings["timeout"] = float(params.pop("timeout"))
        except ValueError:
            raise _error("timeout 必须是秒数", "timeout must be a number of seconds") from None
    settings.update(params)
    # The same checks a saved channel gets, so a bad from= is reported against the URL.
    _check(settings, {}, partial=True)
    return settings


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    from_address: str
    from_name: str | None = None
    reply_to: str | None = None
    username: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    ca_file: str | None = None
    helo_name: str | None = None

    @property
    def domain(self) -> str:
        return self.from_address.rpartition("@")[2]


def _check(settings: Mapping[str, Any], secrets: Mapping[str, str], *, partial: bool = False) -> SmtpSettings:
    host = settings.get("host")
    if not isinstance(host, str) or not host.strip():
        raise _error("SMTP 缺少 host 设置", "the SMTP channel needs a `host`")
    security = settings.get("security") or "starttls"
    if security not in SECURITY:
        raise _error(
            f"security 无效 {security!r}", f"invalid security {security!r} (use {', '.join(SECURITY)})"
        )
    port = settings.get("port") or DEFAULT_PORTS[security]
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise _error(f"端口无效 {port!r}", f"invalid port {port!r}")
    from_address = settings.get("from_address")
    if from_address is None and partial:  # a URL may leave the sender to other settings
        from_address = "placeholder@example.com"
    if not isinstance(from_address, str) or _ascii_address(from_address) is None:
        raise _error(f"发件地址无效 {from_address!r}", f"invalid from_address {from_address!r}")
    reply_to = settings.get("reply_to") or None
    if reply_to is not None and (not isinstance(reply_to, str) or _ascii_address(reply_to) is None):
        raise _error(f"回复地址无效 {reply_to!r}", f"invalid reply_to {reply_to!r}")
    timeout = settings.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        raise _error("timeout 必须在 0 到 600 秒之间", "timeout must be between 0 and 600 seconds")
    username = settings.get("username") or None
    password = secrets.get("password") or settings.get("password") or None
    if username is not None and password is None and not partial:
        raise _error("设置了 username 但缺少 password", "username is set but the password is missing")
    ca_file = settings.get("ca_file") or None
    if ca_file is not None and not os.path.isfile(str(ca_file)):
        raise _error(f"找不到 CA 文件 {ca_file}", f"ca_file not found: {ca_file}")
    from_name = settings.get("from_name") or None
    for name, value in (
        ("from_name", from_name),
        ("username", username),
        ("helo_name", settings.get("helo_name")),
    ):
        if value is not None and (not isinstance(value, str) or "\r" in value or "\n" in value):
            raise _error(f"{name} 无效", f"invalid {name}")
    return SmtpSettings(
        host=host.strip(),
        port=port,
        security=security,
        from_address=_ascii_address(from_address) or from_address,
        from_name=from_name,
        reply_to=_ascii_address(reply_to) if reply_to else None,
        username=username,
        password=str(password) if password is not None else None,
        timeout=float(timeout),
        ca_file=str(ca_file) if ca_file else None,
        helo_name=settings.get("helo_name") or None,
    )


def message_id(key: str, domain: str) -> str:
    """The Message-ID of the message with idempotency key `key`: the same key, the same id."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<quanyu.{digest}@{domain}>"


class BadMessage(ValueError):
    """The message itself cannot be sent (bad address, missing subject): `failed`, no retry helps."""

    def __init__(self, code: str, error: str) -> None:
        super().__init__(error)
        self.code = code
        self.error = error


def _unsubscribe(message: Message) -> tuple[str | None, str | None]:
    url = message.meta.get("unsubscribe_url") or None
    mailto = message.meta.get("unsubscribe_mailto") or None
    if url is not None:
        url = str(url).strip()
        if not url.lower().startswith(("https://", "http://")) or not _URI.fullmatch(url):
            raise BadMessage("bad_unsubscribe", f"退订链接无效 / invalid unsubscribe_url {url!r}")
    if mailto is not None:
        mailto = str(mailto).strip()
        if not mailto.lower().startswith("mailto:"):
            mailto = "mailto:" + mailto
        if not _URI.fullmatch(mailto):
            raise BadMessage("bad_unsubscribe", f"退订邮箱无效 / invalid unsubscribe_mailto {mailto!r}")
    return url, mailto


def html_to_text(body: str) -> str:
    """A plain-text rendering of an HTML body: blocks become lines, links keep their address."""
    body = _INVISIBLE.sub("", body)
    body = _ANCHOR.sub(lambda m: _anchor_text(m.group(1), m.group(2)), body)
    body = _BREAK.sub("\n", body)
    body = html.unescape(_TAG.sub("", body))
    lines = [" ".join(line.split()) for line in body.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def _anchor_text(href: str, inner: str) -> str:
    label = " ".join(html.unescape(_TAG.sub("", inner)).split())
    url = html.unescape(href.strip("\"'"))
    return f"{label} ({url})" if label and url and label != url else (label or url)


def render(message: Message, settings: SmtpSettings) -> tuple[str, EmailMessage]:
    """The recipient (ASCII form) and the MIME message for `message`; `BadMessage` when it cannot be."""
    to = _ascii_address(message.to) if isinstance(message.to, str) else None
    if to is None:
        raise BadMessage("bad_address", f"收件地址无效 / invalid e-mail address {message.to!r}")
    subject = message.content.get("subject")
    text = message.content.get("text")
    body_html = message.content.get("html") or None
    if text is None and isinstance(body_html, str):
        text = html_to_text(body_html)  # an HTML-only mail still gets a readable plain part
    if not isinstance(subject, str) or not isinstance(text, str) or not isinstance(body_html, str | None):
        raise BadMessage(
            "bad_content",
            "邮件内容需要 subject 和 text（或 html）字符串 / e-mail content needs `subject` and `text` (or `html`) strings",
        )
    msg = EmailMessage(policy=_POLICY)
    msg["Subject"] = " ".join(subject.split())  # no line breaks in a header
    msg["From"] = Address(display_name=settings.from_name or "", addr_spec=settings.from_address)
    msg["To"] = to
    if settings.reply_to:
        msg["Reply-To"] = settings.reply_to
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id(message.key, settings.domain)
    if message.purpose == "marketing":
        url, mailto = _unsubscribe(message)
        targets = [f"<{t}>" for t in (url, mailto) if t]
        if targets:
            msg.set_raw("List-Unsubscribe", ",\r\n ".join(targets))
            if url and url.lower().startswith("https://"):
                msg.set_raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
            link = url or mailto
            assert link is not None
            text = f"{text.rstrip()}\n\n退订 / Unsubscribe: {link}\n"
            if body_html is not None:
                safe = html.escape(link, quote=True)
                footer = f'<p style="font-size:12px;color:#888">退订 / Unsubscribe: <a href="{safe}">{safe}</a></p>'
                ends = list(_BODY_END.finditer(body_html))
                at = ends[-1].start() if ends else len(body_html)
                body_html = body_html[:at] + footer + body_html[at:]
    msg.set_content(text, subtype="plain", charset="utf-8")
    if body_html is not None:
        msg.add_alternative(body_html, subtype="html", charset="utf-8")
    return to, msg


def _wire(msg: EmailMessage) -> bytes:
    """The DATA payload: CRLF line ends, leading dots doubled, the final CRLF.CRLF."""
    data = re.sub(rb"\r?\n", b"\r\n", msg.as_bytes(policy=_POLICY))
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


@functools.lru_cache(maxsize=1)
def _fqdn() -> str:
    return socket.getfqdn()


def _reply_text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


class _ConnectFailed(Exception):
    """Opening or preparing the connection failed; every message still to send shares the outcome."""

    def __init__(self, outcome: Outcome, code: str, error: str) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.code = code
        self.error = error


class _Session:
    """The batch's one connection, opened on first use and again after the server drops it."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.conn: smtplib.SMTP | None = None

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file)

    def get(self) -> smtplib.SMTP:
        if self.conn is None:
            self.conn = self._open()
        return self.conn

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        where = f"{s.host}:{s.port}"
        helo = s.helo_name or _fqdn()
        conn: smtplib.SMTP | None = None
        try:
            if s.security == "ssl":
                conn = smtplib.SMTP_SSL(
                    s.host, s.port, local_hostname=helo, timeout=s.timeout, context=self._tls()
                )
            else:
                conn = smtplib.SMTP(s.host, s.port, local_hostname=helo, timeout=s.timeout)
            conn.ehlo_or_helo_if_needed()
            if s.security == "starttls":
                if not conn.has_extn("starttls"):
                    raise _ConnectFailed(
                        "failed",
                        "starttls_unavailable",
                        f"SMTP 服务器 {where} 不支持 STARTTLS，未发送明文邮件（如是本机中继可设 security=none） / "
                        f"the SMTP server {where} does not offer STARTTLS; nothing was sent in plain text "
                        "(use security=none only for a local relay)",
                    )
                conn.starttls(context=self._tls())
                conn.ehlo()
            if s.username:
                if not conn.has_extn("auth"):
                    raise _ConnectFailed(
                        "failed",
                        "auth_unavailable",
                        f"SMTP 服务器 {where} 不支持 AUTH 认证 / the SMTP server {where} does not offer AUTH",
                    )
                _login(conn, s.username, s.password or "")
            return conn
        except _ConnectFailed:
            _close(conn)
            raise
        except smtplib.SMTPAuthenticationError as exc:
            _close(conn)
            permanent = exc.smtp_code >= 500
            raise _ConnectFailed(
                "failed" if permanent else "retry",
                str(exc.smtp_code),
                f"SMTP 认证失败，请检查用户名和密码 / SMTP authentication failed: {exc.smtp_code} "
                f"{_reply_text(exc.smtp_error)}",
            ) from None
        except ssl.SSLCertVerificationError as exc:
            _close(conn)
            raise _ConnectFailed(
                "failed",
                "tls_verify",
                f"SMTP 服务器证书不可信（可设置 ca_file） / the SMTP server's certificate is not trusted "
                f"(set ca_file for a private CA): {exc.verify_message or exc}",
            ) from None
        except smtplib.SMTPResponseException as exc:
            _close(conn)
            raise _ConnectFailed(
                "retry",
                str(exc.smtp_code),
                f"SMTP 服务器 {where} 拒绝会话 / the SMTP server {where} refused the session: "
                f"{exc.smtp_code} {_reply_text(exc.smtp_error)}",
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            # Refused, unreachable, DNS, TLS handshake or greeting trouble: no message was sent.
            _close(conn)
            raise _ConnectFailed(
                "retry",
                "connect",
                f"无法连接 SMTP 服务器 {where} / cannot connect to the SMTP server {where}: {exc!r}",
            ) from None

    def reset(self) -> None:
        """End a refused transaction so the next message starts clean; drop the connection if it cannot."""
        if self.conn is None:
            return
        try:
            code, _ = self.conn.rset()
        except (OSError, smtplib.SMTPException):
            code = 0
        if code != 250:
            self.drop()

    def drop(self) -> None:
        _close(self.conn)
        self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.conn.quit()
            self.drop()


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.close()


def _login(conn: smtplib.SMTP, username: str, password: str) -> None:
    """AUTH with one mechanism chosen up front: PLAIN, else LOGIN, else CRAM-MD5.

    Not `smtplib.login`: it tries every mechanism in turn and reports the last failure (a server
    that hangs on the second one turns a wrong password into a timeout), and it encodes
    credentials as ASCII while PLAIN (RFC 4616) and LOGIN carry UTF-8 passwords fine.
    Raises `SMTPAuthenticationError` when refused, `_ConnectFailed` when no mechanism fits.
    """
    mechanisms = conn.esmtp_features.get("auth", "").upper().split()
    user, secret = username.encode("utf-8"), password.encode("utf-8")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    if "PLAIN" in mechanisms:
        code, reply = conn.docmd("AUTH", "PLAIN " + b64(b"\0" + user + b"\0" + secret))
    elif "LOGIN" in mechanisms:
        code, reply = conn.docmd("AUTH", "LOGIN")
        if code == 334:
            code, reply = conn.docmd(b64(user))
        if code == 334:
            code, reply = conn.docmd(b64(secret))
    elif "CRAM-MD5" in mechanisms and (username + password).isascii():
        conn.login(username, password)  # only CRAM-MD5 is left for smtplib to pick
        return
    else:
        raise _ConnectFailed(
            "failed",
            "auth_unavailable",
            f"服务器没有可用的认证方式（{mechanisms}） / no usable AUTH mechanism on the server ({mechanisms})",
        )
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def _refused(key: str, stage: str, code: int, reply: bytes | str) -> SendResult:
    text = f"SMTP {code} ({stage}): {_reply_text(reply)}"
    if 400 <= code < 500:
        return SendResult(
            key, "retry", error_code=str(code), error=f"服务器暂不接收 / server deferred: {text}"
        )
    return SendResult(key, "failed", error_code=str(code), error=f"服务器拒收 / server refused: {text}")


class _Lost(Exception):
    """The connection broke; `written` tells whether the whole message had been written."""

    def __init__(self, written: bool, cause: BaseException) -> None:
        super().__init__(repr(cause))
        self.written = written


class SmtpAdapter:
    type = "smtp"
    channel = "email"
    idempotent = False  # SMTP has no delivery dedupe: an `unknown` send is never repeated

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        results: list[SendResult] = []
        session = _Session(self.settings)
        try:
            for i, message in enumerate(messages):
                try:
                    result = self._send_one(session, message)
                except _ConnectFailed as exc:
                    # The server cannot be used now: the rest of the batch shares the outcome untried.
                    results.extend(
                        SendResult(m.key, exc.outcome, error_code=exc.code, error=exc.error)
                        for m in messages[i:]
                    )
                    break
                results.append(result)
                if result.error_code == "lost_after_data":
                    # The server stopped answering: every further message would wait out the same
                    # timeout. The rest were not tried, so they are safe to send later.
                    results.extend(
                        SendResult(m.key, "retry", error_code="not_attempted", error=result.error)
                        for m in messages[i + 1 :]
                    )
                    break
        finally:
            session.close()
        return results

    def _send_one(self, session: _Session, message: Message) -> SendResult:
        key = message.key
        try:
            to, msg = render(message, self.settings)
        except BadMessage as exc:
            return SendResult(key, "failed", error_code=exc.code, error=exc.error)
        data = _wire(msg)
        mid = str(msg["Message-ID"])
        for attempt in (1, 2):
            conn = session.get()
            try:
                reply = self._transaction(conn, to, data)
            except _Lost as exc:
                session.drop()
                if exc.written:
                    return SendResult(
                        key,
                        "unknown",
                        error_code="lost_after_data",
                        error=f"邮件已发出但未收到服务器确认 / message written but no reply from the server: {exc}",
                    )
                if attempt == 1:
                    continue  # dropped while idle or before the data: nothing sent, reopen once
                return SendResult(
                    key, "retry", error_code="connect", error=f"连接中断 / connection lost: {exc}"
                )
            stage, code, text = reply
            if stage == "data" and code == 250:
                return SendResult(key, "sent", provider_id=mid)
            if code == 421 and stage != "data":
                session.drop()  # the server is closing the channel; a fresh one may take it
                if attempt == 1:
                    continue
            elif stage != "data":
                session.reset()
            return _refused(key, stage, code, text)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        pass  # connections live for one batch only

    def _transaction(self, conn: smtplib.SMTP, to: str, data: bytes) -> tuple[str, int, bytes]:
        """MAIL, RCPT, DATA by hand, to know whether the message was fully written when a failure hits.

        Returns (stage, code, reply) with stage "mail" / "rcpt" / "data-command" for a refusal
        before the data, or "data" for the reply after it.
        """
        try:
            code, reply = conn.mail(self.settings.from_address)
            if code != 250:
                return "mail", code, reply
            code, reply = conn.rcpt(to)
            if code not in (250, 251):
                return "rcpt", code, reply
            code, reply = conn.docmd("DATA")
            if code != 354:
                return "data-command", code, reply
            conn.send(data)  # sendall: if it raises, the final "." was never handed to the network
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            raise _Lost(False, exc) from None
        try:
            code, reply = conn.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            raise _Lost(True, exc) from None
        return "data", code, reply


def _factory(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> SmtpAdapter:
    return SmtpAdapter(_check(settings, secrets))


register(
    AdapterType(
        type="smtp", channel="email", factory=_factory, label="SMTP 邮件 / SMTP e-mail", secrets=("password",)
    )
)
