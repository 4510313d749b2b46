"""Request bodies: bounded decompression and strict decoding."""

from __future__ import annotations

import gzip
import zlib

import pytest

from quanyu.collect.body import decode_body, parse_json
from quanyu.errors import InvalidInput, PayloadTooLarge


def test_gzip_and_deflate_round_trip() -> None:
    assert decode_body(gzip.compress(b'{"a":1}'), "gzip", 1000) == b'{"a":1}'
    assert decode_body(zlib.compress(b'{"a":1}'), "deflate", 1000) == b'{"a":1}'


def test_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)
    with pytest.raises(PayloadTooLarge):
        decode_body(bomb, "gzip", 500 * 1024)


def test_corrupt_gzip_and_unknown_encoding_are_bad_requests() -> None:
    with pytest.raises(InvalidInput):
        decode_body(b"not gzip", "gzip", 1000)
    with pytest.raises(InvalidInput):
        decode_body(b"{}", "br", 1000)


def test_plain_body_over_limit() -> None:
    with pytest.raises(PayloadTooLarge):
        decode_body(b"x" * 11, None, 10)


@pytest.mark.parametrize("raw", [b"\xff\xfe{}", b"{", b"[" * 5000 + b"]" * 5000, b"nan"])
def test_invalid_utf8_truncated_and_deep_json_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_json(raw)
