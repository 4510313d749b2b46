"""Signed link tokens for unsubscribe links, the open pixel and click redirects.

A token is `<payload>.<mac>`: the payload is the JSON of a small dict (short keys: "k" outbox key,
"w" workspace, "p" profile, "c" channel, "u" target URL of a click) in unpadded URL-safe base64,
the mac the first 16 bytes of HMAC-SHA256 over a version prefix and the payload text. 128 bits are
plenty against forgery and keep links short. Tokens carry no expiry on purpose: an unsubscribe link
in a year-old mail must still work. The routes under `/r/` (written elsewhere) call `verify`.

Decoding is strict: only the canonical base64 of the bytes is accepted, so no two token strings
verify to the same payload (a changed padding bit or stray character is tampering, not a variant).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from quanyu.errors import InvalidInput

_PREFIX = b"quanyu-link-v1."  # binds the mac to this token format (domain separation)
_MAC_BYTES = 16
_B64 = re.compile(r"[A-Za-z0-9_-]*")
# `<a ...>` and `<area ...>` start tags, and the href inside one (not data-href and the like).
_LINK_TAG = re.compile(r"<(?:a|area)\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""(?<![\w-])(href\s*=\s*)("[^"]*"|'[^']*'|[^\s"'>]+)""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


class InvalidToken(InvalidInput):
    """A link token that was altered, truncated or signed with another secret."""

    code = "invalid_link_token"


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _B64.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(data) != text:  # unused low bits set: not the canonical encoding
        raise ValueError("not canonical base64url")
    return data


def _key(secret: bytes | str) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _mac(secret: bytes | str, payload: str) -> bytes:
    return hmac.new(_key(secret), _PREFIX + payload.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES]


def sign(secret: bytes | str, payload: Mapping[str, Any]) -> str:
    """A compact URL-safe token carrying `payload` (JSON-serialisable, string keys)."""
    body = _b64encode(orjson.dumps(dict(payload), option=orjson.OPT_SORT_KEYS))
    return f"{body}.{_b64encode(_mac(secret, body))}"


def verify(secret: bytes | str, token: str) -> dict[str, Any]:
    """The payload of a token `sign` made with `secret`; `InvalidToken` for anything else."""
    bad = InvalidToken("链接无效或已被篡改 / invalid or tampered link")
    if not isinstance(token, str) or token.count(".") != 1:
        raise bad
    body, mac_text = token.split(".")
    try:
        mac = _b64decode(mac_text)
        raw = _b64decode(body)
    except ValueError:
        raise bad from None
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise bad
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad from None
    if not isinstance(payload, dict):
        raise bad
    return payload


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def unsubscribe_url(base_url: str, secret: bytes | str, fields: Mapping[str, Any]) -> str:
    """`{base_url}/r/u/{token}`: the one-click unsubscribe link (and List-Unsubscribe target)."""
    return f"{_base(base_url)}/r/u/{sign(secret, fields)}"


def open_url(base_url: str, secret: bytes | str, fields: Mapping[str, Any]) -> str:
    """`{base_url}/r/o/{token}`: the open pixel's address."""
    return f"{_base(base_url)}/r/o/{sign(secret, fields)}"


def click_url(base_url: str, secret: bytes | str, fields: Mapping[str, Any], url: str) -> str:
    """`{base_url}/r/c/{token}`: redirects to `url` (carried in the token as "u") after counting."""
    return f"{_base(base_url)}/r/c/{sign(secret, {**fields, 'u': url})}"


def track_html(html_text: str, base_url: str, secret: bytes | str, fields: Mapping[str, Any]) -> str:
    """`html_text` with every http(s) link turned into a click redirect and an open pixel appended.

    Only `href`s of `<a>` / `<area>` tags are rewritten; mailto:, tel:, anchors, relative links and
    links already under `{base_url}/r/` (the unsubscribe link) stay as they are. The pixel goes
    before `</body>` when there is one, else at the end.
    """
    base = _base(base_url)
    own = base + "/r/"

    def rewrite_href(match: re.Match[str]) -> str:
        quoted = match.group(2)
        raw = quoted[1:-1] if quoted[:1] in ("'", '"') else quoted
        url = html.unescape(raw).strip()
        if urlsplit(url).scheme.lower() not in ("http", "https") or url.startswith(own):
            return match.group(0)
        # The token is URL-safe base64 and the base a plain URL: quoting is enough, no escaping.
        return f'{match.group(1)}"{html.escape(click_url(base, secret, fields, url), quote=True)}"'

    def rewrite_tag(match: re.Match[str]) -> str:
        return _HREF.sub(rewrite_href, match.group(0), count=1)

    out = _LINK_TAG.sub(rewrite_tag, html_text)
    pixel = (
        f'<img src="{html.escape(open_url(base, secret, fields), quote=True)}" width="1" height="1" '
        'alt="" style="display:block;border:0;width:1px;height:1px">'
    )
    ends = list(_BODY_END.finditer(out))
    if ends:
        at = ends[-1].start()
        return out[:at] + pixel + out[at:]
    return out + pixel
