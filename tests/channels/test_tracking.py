"""Signed link tokens: round trip, tampering, and the HTML rewriting for clicks and opens."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quanyu.channels.tracking import (
    InvalidToken,
    click_url,
    sign,
    track_html,
    unsubscribe_url,
    verify,
)

SECRET = b"0123456789abcdef0123456789abcdef"
FIELDS = {"k": "enr_01:node_2:1", "w": "ws_1", "p": "prof_9", "c": "email"}
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."

json_values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.booleans(),
    st.none(),
)
payloads = st.dictionaries(st.text(max_size=10), json_values, max_size=6)


@given(payload=payloads, secret=st.binary(min_size=1, max_size=64))
def test_round_trip(payload: dict, secret: bytes) -> None:
    token = sign(secret, payload)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert verify(secret, token) == payload


@settings(max_examples=300)
@given(payload=payloads, data=st.data())
def test_any_single_change_is_rejected(payload: dict, data: st.DataObject) -> None:
    token = sign(SECRET, payload)
    at = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    new = data.draw(st.sampled_from(TOKEN_CHARS).filter(lambda c: c != token[at]))
    tampered = token[:at] + new + token[at + 1 :]
    with pytest.raises(InvalidToken):
        verify(SECRET, tampered)


@given(payload=payloads, data=st.data())
def test_truncation_extension_and_other_secret_are_rejected(payload: dict, data: st.DataObject) -> None:
    token = sign(SECRET, payload)
    cut = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    extra = data.draw(st.text(min_size=1, max_size=4))
    for bad in (token[:cut], token + extra, extra + token):
        with pytest.raises(InvalidToken):
            verify(SECRET, bad)
    with pytest.raises(InvalidToken):
        verify(SECRET + b"x", token)


def test_payload_swap_between_tokens_is_rejected() -> None:
    a = sign(SECRET, {**FIELDS, "p": "prof_a"})
    b = sign(SECRET, {**FIELDS, "p": "prof_b"})
    forged = a.split(".")[0] + "." + b.split(".")[1]
    with pytest.raises(InvalidToken) as err:
        verify(SECRET, forged)
    assert "invalid or tampered link" in str(err.value)
    assert err.value.status == 400


def test_str_secret_equals_utf8_bytes() -> None:
    assert verify("秘密", sign("秘密".encode(), FIELDS)) == FIELDS


def test_unsubscribe_url() -> None:
    url = unsubscribe_url("https://q.example.com/", SECRET, FIELDS)
    assert url.startswith("https://q.example.com/r/u/")
    assert verify(SECRET, url.rsplit("/", 1)[1]) == FIELDS


def test_track_html_rewrites_links_and_adds_pixel() -> None:
    page = (
        "<html><body>"
        '<a href="https://shop.example.com/p?id=1&amp;utm=x">商品</a>'
        "<A HREF='http://example.org/a'>b</A>"
        "<a class=x href=https://example.net/bare>c</a>"
        '<a href="mailto:help@example.com">mail</a>'
        '<a href="/relative">rel</a><a href="#top">top</a>'
        '<a data-href="https://no.example.com" href="tel:123">tel</a>'
        '<a href="https://q.example.com/r/u/already">unsub</a>'
        '<img src="https://cdn.example.com/i.png">'
        "</body></html>"
    )
    out = track_html(page, "https://q.example.com", SECRET, FIELDS)
    clicks = re.findall(r"https://q\.example\.com/r/c/([A-Za-z0-9_.-]+)", out)
    assert [verify(SECRET, t)["u"] for t in clicks] == [
        "https://shop.example.com/p?id=1&utm=x",
        "http://example.org/a",
        "https://example.net/bare",
    ]
    assert all({k: v for k, v in verify(SECRET, t).items() if k != "u"} == FIELDS for t in clicks)
    for kept in (
        "mailto:help@example.com",
        '"/relative"',
        '"#top"',
        "tel:123",
        'data-href="https://no.example.com"',
    ):
        assert kept in out
    assert "https://q.example.com/r/u/already" in out
    assert 'src="https://cdn.example.com/i.png"' in out  # images are not links
    pixel = re.search(r'<img src="https://q\.example\.com/r/o/([A-Za-z0-9_.-]+)"', out)
    assert pixel and verify(SECRET, html.unescape(pixel.group(1))) == FIELDS
    assert out.index("/r/o/") < out.index("</body>")


def test_track_html_without_body_appends_pixel() -> None:
    out = track_html("<p>hi</p>", "https://q.example.com", SECRET, FIELDS)
    assert out.startswith("<p>hi</p><img ")


def test_click_url_carries_target() -> None:
    url = click_url("https://q.example.com", SECRET, FIELDS, "https://example.com/x")
    assert verify(SECRET, url.rsplit("/", 1)[1])["u"] == "https://example.com/x"
