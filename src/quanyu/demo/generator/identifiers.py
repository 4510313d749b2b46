"""Identifier formats of the platforms the brand sells on, each value unique in a run."""

from __future__ import annotations

import random
import string
from collections.abc import Callable

# WeChat app ids an openid is scoped to: the official account, the mini-program shop and
# the Channels (视频号) shop.
OA_APP_ID = "wx8a3f5c2e9b1d4f70"
MINI_PROGRAM_APP_ID = "wx2c7e91b4d6a0f35e"
CHANNELS_APP_ID = "wx5d1e8f3a7c9b2046"

_PHONE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "171",
    "173",
    "175",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "184",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "193",
    "195",
    "198",
    "199",
)
_B64 = string.ascii_letters + string.digits + "-_"
_ALNUM = string.ascii_lowercase + string.digits
_HEX = "0123456789abcdef"


def _text(rng: random.Random, alphabet: str, size: int) -> str:
    return "".join(rng.choices(alphabet, k=size))


def _digits(rng: random.Random, size: int) -> str:
    return str(rng.randrange(10 ** (size - 1), 10**size))


def uuid4_text(rng: random.Random) -> str:
    """A version-4 UUID string drawn from `rng` (so it repeats with the seed)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_FORMATS: dict[str, Callable[[random.Random], str]] = {
    "phone": lambda r: r.choice(_PHONE_PREFIXES) + f"{r.randrange(10**8):08d}",
    "user_id": lambda r: "u" + _digits(r, 9),
    "member_card": lambda r: "8860" + _digits(r, 8),
    "cookie": uuid4_text,
    "h5_cookie": uuid4_text,
    "app_install": uuid4_text,
    "android_id": lambda r: _text(r, _HEX, 16),
    "idfv": lambda r: uuid4_text(r).upper(),
    "wechat_unionid": lambda r: "oXn2M" + _text(r, _B64, 23),
    "oa_openid": lambda r: "oq3Xt5" + _text(r, _B64, 22),
    "mp_openid": lambda r: "o6zAJs" + _text(r, _B64, 22),
    "channels_openid": lambda r: "oSPH0" + _text(r, _B64, 23),
    "wecom_external_userid": lambda r: "wmXkSQBw" + _text(r, _B64, 24),
    "tmall_buyer_id": lambda r: "t_" + _digits(r, 10),
    "jd_pin": lambda r: "jd_" + _text(r, _ALNUM, 13),
    "youzan_id": lambda r: _digits(r, 10),
    "douyin_id": lambda r: "_000" + _text(r, string.ascii_letters + string.digits, 28),
    "xiaohongshu_id": lambda r: _text(r, _HEX, 24),
    "respondent": lambda r: "fr_" + _text(r, _ALNUM, 16),
    "ticket": lambda r: "TKT" + _digits(r, 10),
    "guest": lambda r: "guest-" + _text(r, _HEX, 12),
    "bd_vid": lambda r: _text(r, string.ascii_letters + string.digits, 22),
    "gdt_vid": lambda r: "wx0" + _text(r, _ALNUM, 16),
    "clickid": lambda r: "EJ" + _text(r, string.ascii_letters + string.digits, 30),
}


class IdentifierFactory:
    """Draws identifiers from one seeded stream and never hands out a value twice."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._seen: set[str] = set()

    def new(self, kind: str) -> str:
        """A fresh identifier of `kind` (a key of the platform formats above)."""
        make = _FORMATS[kind]
        while True:
            value = make(self._rng)
            if value not in self._seen:
                self._seen.add(value)
                return value

    def claim(self, value: str, rng: random.Random) -> str:
        """`value` itself, or a numbered variant when someone already has it."""
        candidate = value
        while candidate in self._seen:
            local, _, domain = value.partition("@")
            candidate = f"{local}{rng.randint(1, 999)}@{domain}" if domain else value + "1"
        self._seen.add(candidate)
        return candidate


def mask_phone(phone: str) -> str:
    """A platform-masked mobile number: 13812345678 -> 138****5678."""
    return f"{phone[:3]}****{phone[-4:]}"


def mask_name(name: str) -> str:
    """A platform-masked receiver name: 张伟 -> 张**, Emily Chen -> E***."""
    return name[0] + ("***" if name.isascii() else "**")
