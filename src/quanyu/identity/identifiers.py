"""Typed, normalised identifiers: what may link two records to one person, and how strongly.

Each identifier type has a priority (higher = more trustworthy as evidence of one person), a
per-profile limit (a person has one user_id, a handful of devices) and a blocklist of junk
values that many unrelated people share ("null", "guest", "00000000"). Values are normalised
before they are compared, so `+86 138-0000-0000` and `13800000000` are one phone.

Masked phones as platforms hand them out (`138****1234`) are kept as partial evidence for
probabilistic matching and never used as a merge key.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from quanyu.errors import InvalidInput

# Values that appear in real feeds when a field is "empty" one way or another.
JUNK_VALUES = frozenset(
    {"", "null", "none", "nil", "undefined", "nan", "0", "-1", "-", "--", "n/a", "na", "unknown",
     "guest", "anonymous", "anon", "test", "empty", "default", "false", "true", "[object object]",
     "未知", "无", "空", "游客", "匿名", "测试"}
)  # fmt: skip
_REPEATED = re.compile(r"^(.)\1{4,}$")  # 00000, 11111111111, xxxxx
# Separators inside device and advertising ids: the zeroed IDFA of a device with ad tracking
# limited (00000000-0000-0000-0000-000000000000) or Android's fixed MAC (02:00:00:00:00:00).
_SEPARATORS = re.compile(r"[\s\-:._]")
# Fixed ids many devices report: that MAC without separators, and the ANDROID_ID a batch of
# Android 2.2 phones and emulators share.
_PLACEHOLDER_IDS = frozenset({"020000000000", "9774d56d682e549c"})
_SEQUENTIAL_DIGITS = frozenset({"0123456789", "1234567890", "123456789", "12345678", "1234567"})
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_MASKED_PHONE = re.compile(r"^1[3-9]\d[*xX]{4}\d{4}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MAX_VALUE_LENGTH = 255


@dataclass(frozen=True)
class Identifier:
    """One normalised identifier. `scope` separates ids that are unique only per app (openids)."""

    type: str
    value: str
    scope: str = ""

    @property
    def key(self) -> str:
        """The string two records must share to be linked by this identifier."""
        return f"{self.type}:{self.scope}:{self.value}" if self.scope else f"{self.type}:{self.value}"


@dataclass(frozen=True)
class IdentifierType:
    name: str
    priority: int
    max_per_profile: int
    label: str
    normalise: Callable[[str], str | None] = field(repr=False)
    scoped: bool = False
    # False for partial evidence (masked phones): kept on the profile, never linked on.
    links: bool = True
    blocklist: frozenset[str] = frozenset()
    # A shared identifier (a store's check-in tablet, a kiosk): one seen with more than this
    # many identifiers of any one stronger type links nobody. None: no such rule.
    max_shared: int | None = None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _text(value: str) -> str | None:
    # Control characters (NUL, separators, escapes) never belong to an identifier: a copy-paste
    # artefact, or an attempt to smuggle something past a parser.
    text = _CONTROL.sub("", unicodedata.normalize("NFKC", value)).strip()
    return text or None


def _folded(value: str) -> str | None:
    text = _text(value)
    return text.casefold() if text else None


def normalise_phone(value: str) -> str | None:
    """Mainland mobiles as 11 digits (`13800000000`); other numbers in E.164 with `+`."""
    text = _text(value)
    if text is None:
        return None
    digits = re.sub(r"[\s\-().]", "", text)
    international = digits.startswith("+") or digits.startswith("00")
    digits = digits.lstrip("+")
    if digits.startswith("00"):
        digits = digits[2:]
    if not (digits.isascii() and digits.isdigit()):  # NFKC leaves e.g. Arabic-Indic digits as they are
        return None
    if digits.startswith("86") and _MAINLAND_MOBILE.match(digits[2:]):
        return digits[2:]
    # With a country code other than 86 it is a foreign number even when its digits look like a
    # mainland mobile (+1 415 555 0100 is not 14155550100).
    if not international and _MAINLAND_MOBILE.match(digits):
        return digits
    if international and 8 <= len(digits) <= 15:
        return "+" + digits
    return None


def normalise_masked_phone(value: str) -> str | None:
    text = _text(value)
    if text is None:
        return None
    compact = re.sub(r"[\s\-]", "", text).removeprefix("+86")
    return compact.replace("x", "*").replace("X", "*") if _MASKED_PHONE.match(compact) else None


def normalise_email(value: str) -> str | None:
    text = _folded(value)
    return text if text and _EMAIL.match(text) else None


def _builtin(
    name: str,
    priority: int,
    limit: int,
    label: str,
    normalise: Callable[[str], str | None] = _text,
    **kw: object,
) -> IdentifierType:
    return IdentifierType(name, priority, limit, label, normalise, **kw)  # type: ignore[arg-type]


# Priority: how much a shared value says "same person". Account ids a brand issues come first,
# then platform-wide ids, then contact points, then per-app ids, then devices and cookies.
BUILTIN_TYPES: dict[str, IdentifierType] = {
    t.name: t
    for t in (
        _builtin("user_id", 100, 1, "用户ID User ID"),
        _builtin("member_card", 95, 3, "会员卡号 Member card"),
        _builtin("wechat_unionid", 90, 1, "微信 UnionID"),
        _builtin("phone", 85, 3, "手机号 Phone", normalise_phone),
        _builtin("email", 80, 3, "邮箱 Email", normalise_email),
        _builtin("tmall_buyer_id", 70, 2, "天猫/淘宝买家ID Tmall/Taobao buyer id"),
        _builtin("jd_pin", 70, 2, "京东 PIN JD pin"),
        _builtin("youzan_id", 70, 2, "有赞用户ID Youzan id"),
        _builtin("douyin_id", 70, 2, "抖音用户ID Douyin id"),
        _builtin("xiaohongshu_id", 70, 2, "小红书用户ID Xiaohongshu id"),
        _builtin("wecom_external_userid", 65, 5, "企业微信外部联系人 WeCom external user id"),
        _builtin("wechat_openid", 60, 10, "公众号 OpenID", scoped=True),
        _builtin("mini_program_openid", 60, 10, "小程序 OpenID", scoped=True),
        _builtin("device_id", 30, 5, "设备ID Device id", _folded, max_shared=1),
        _builtin("click_id", 25, 50, "广告点击ID Ad click id"),
        _builtin("anonymous_id", 20, 50, "匿名ID Anonymous id"),
        _builtin("phone_masked", 0, 10, "脱敏手机号 Masked phone", normalise_masked_phone, links=False),
    )
}


class IdentifierTypes:
    """The identifier types of one workspace: the built-ins plus declared custom types."""

    def __init__(self, custom: Iterable[IdentifierType] = ()) -> None:
        self._types = dict(BUILTIN_TYPES)
        for t in custom:
            if not _TYPE_NAME.match(t.name):
                raise InvalidInput(
                    f"标识类型名无效 / invalid identifier type name {t.name!r} (a-z, 0-9, _)",
                    code="invalid_identifier_type",
                )
            if t.max_per_profile < 1:
                raise InvalidInput(
                    f"{t.name}: 每人上限至少为 1 / max_per_profile must be at least 1",
                    code="invalid_identifier_type",
                )
            self._types[t.name] = t

    @staticmethod
    def custom(
        name: str, priority: int, max_per_profile: int, label: str = "", blocklist: Iterable[str] = ()
    ) -> IdentifierType:
        return IdentifierType(
            name,
            priority,
            max_per_profile,
            label or name,
            _text,
            blocklist=frozenset(v.casefold() for v in blocklist),
        )

    def get(self, name: str) -> IdentifierType:
        try:
            return self._types[name]
        except KeyError:
            raise InvalidInput(
                f"未知标识类型 / unknown identifier type {name!r}", code="unknown_identifier_type"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[IdentifierType]:
        return iter(self._types.values())

    def identify(self, type_name: str, raw: object, scope: str = "") -> Identifier | None:
        """The normalised identifier, or None when the value is junk or malformed.

        A phone that turns out to be a platform mask becomes a `phone_masked` identifier.
        Scoped types (openids) need the app id they belong to.
        """
        id_type = self.get(type_name)
        if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int):
            return None
        text = str(raw)
        if len(text) > MAX_VALUE_LENGTH:
            return None
        value = id_type.normalise(text)
        if value is None and type_name == "phone":
            # Platforms hand out masked phones (138****1234): keep them as partial evidence.
            id_type, type_name = self._types["phone_masked"], "phone_masked"
            value = id_type.normalise(text)
        if value is None or is_junk(value, id_type.blocklist):
            return None
        if id_type.scoped:
            scope = (_text(scope) or "") if scope else ""
            if not scope:
                return None  # an openid without its app id cannot be compared safely
        else:
            scope = ""
        return Identifier(type_name, value, scope)


def is_junk(value: str, extra: frozenset[str] = frozenset()) -> bool:
    """True for values shared by unrelated people: placeholders, repeated or sequential digits."""
    folded = value.casefold().strip()
    if folded in JUNK_VALUES or folded in extra:
        return True
    bare = _SEPARATORS.sub("", folded.lstrip("+"))
    if _REPEATED.match(bare) or bare in _PLACEHOLDER_IDS:
        return True
    return bare in _SEQUENTIAL_DIGITS
