"""Data-quality noise real sources produce, which identity resolution has to survive."""

from __future__ import annotations

import random

# Values buggy SDKs and limited-ad-tracking devices send as if they were identifiers.
# They are shared by unrelated people, so the ground truth never lists them.
JUNK_IDENTIFIERS = frozenset({"null", "undefined", "0", "00000000-0000-0000-0000-000000000000"})


def scribble_phone(rng: random.Random, phone: str) -> str:
    """`phone` as a person or a form might write it: +86, spaces, dashes."""
    style = rng.randrange(6)
    if style == 0:
        return "+86" + phone
    if style == 1:
        return f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"
    if style == 2:
        return f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"
    if style == 3:
        return f"{phone[:3]} {phone[3:7]} {phone[7:]}"
    if style == 4:
        return "86" + phone
    return f" {phone} "


def scribble_email(rng: random.Random, email: str) -> str:
    """`email` in the mixed case people type on phones."""
    local, _, domain = email.partition("@")
    if rng.random() < 0.5:
        return f"{local.title()}@{domain.upper()}"
    return email.upper() if rng.random() < 0.5 else f"{local.capitalize()}@{domain}"


def mistype_phone(rng: random.Random, phone: str) -> str:
    """`phone` with one digit wrong, as on a hurried paper or tablet form."""
    position = rng.randrange(3, 11)
    digit = str((int(phone[position]) + rng.randint(1, 9)) % 10)
    return phone[:position] + digit + phone[position + 1 :]


def junk_identifier(rng: random.Random) -> str:
    """One of the junk values a broken SDK sends as an id."""
    return rng.choice(("null", "undefined", "0", "undefined", "null"))
