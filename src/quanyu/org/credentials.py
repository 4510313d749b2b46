"""Random credentials and their stored form.

Write keys and tokens carry 240 bits of randomness, so a plain SHA-256 is a safe stored form
(a slow password hash would only slow down every collection request).
"""

from __future__ import annotations

import hashlib
import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(30)}"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def hint(secret: str) -> str:
    """The part of a secret that may be shown again: its prefix and last four characters."""
    prefix, _, body = secret.partition("_")
    return f"{prefix}_…{body[-4:]}"
