"""Mainland-China mobile numbers: one canonical form (11 digits) and the E.164 form Tencent wants.

Profiles arrive with numbers typed every way people type them: `+86 138-0013-8000`,
`0086 13800138000`, `86-13800138000`, full-width digits pasted from a chat window. Both providers
refuse a malformed number with a permanent error (isv.MOBILE_NUMBER_ILLEGAL,
InvalidParameterValue.IncorrectPhoneNumber), so we normalise before sending and fail early with a
readable reason instead of spending a request on it.
"""

from __future__ import annotations

import re
import unicodedata

# Mainland mobile numbers are 11 digits: 1, then 3-9 (no 10x/11x/12x ranges are allocated to
# mobiles), then 9 more digits.
_MOBILE = re.compile(r"1[3-9]\d{9}")
# Separators people put inside a number; removed before matching.
_SEPARATORS = re.compile(r"[\s\-().\u00a0]")


def _mask(raw: str) -> str:
    """The number with its middle hidden, so an error message does not leak a whole phone number."""
    text = raw.strip()
    if len(text) < 9:
        return text[:1] + "*" * (len(text) - 1)
    return text[:3] + "*" * (len(text) - 5) + text[-2:]


def normalize_cn_mobile(raw: str) -> str:
    """The 11-digit form of a mainland mobile number (`13800138000`).

    Accepts full-width digits, spaces, dashes, dots, parentheses and a `+86` / `0086` / `86` prefix.
    Anything else raises `ValueError` with a bilingual message.
    """
    if not isinstance(raw, str):
        raise ValueError(f"手机号必须是字符串 / phone number must be a string, got {type(raw).__name__}")
    # NFKC folds full-width digits and the full-width plus sign into ASCII.
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif len(text) == 13 and text.startswith("86"):
        text = text[2:]
    if not _MOBILE.fullmatch(text):
        raise ValueError(
            f"无效的中国大陆手机号 {_mask(raw)!r}：应为以 1 开头的 11 位数字 / "
            f"invalid mainland China mobile number {_mask(raw)!r}: expected 11 digits starting with 1"
        )
    return text


def to_e164(raw: str) -> str:
    """The E.164 form of a mainland mobile number (`+8613800138000`), as Tencent's PhoneNumberSet wants."""
    return "+86" + normalize_cn_mobile(raw)


def is_cn_mobile(raw: str) -> bool:
    """Whether `raw` normalises to a mainland mobile number."""
    try:
        normalize_cn_mobile(raw)
    except ValueError:
        return False
    return True
