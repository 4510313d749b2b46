"""Encryption of connector secrets (e.g. a WeChat token) that must be read back to verify signatures.

Unlike write keys, these cannot be hashed: the server needs the plain value. They are encrypted
with a key from `QUANYU_SECRET_KEY` or a 0600 key file in the data directory.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import orjson
from cryptography.fernet import Fernet


class Vault:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    @classmethod
    def for_data_dir(cls, data_dir: Path, configured: str | None = None) -> Vault:
        if configured:
            return cls(configured.encode())
        path = data_dir / "secret.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def derive(self, purpose: bytes) -> bytes:
        """A key for one purpose (signing links), derived from the vault's key: the same after a
        restart, useless for decrypting anything."""
        return hmac.new(self._key, b"quanyu-derive:" + purpose, hashlib.sha256).digest()

    def seal(self, values: dict[str, str]) -> bytes | None:
        return self._fernet.encrypt(orjson.dumps(values)) if values else None

    def open(self, sealed: bytes | None) -> dict[str, str]:
        return orjson.loads(self._fernet.decrypt(sealed)) if sealed else {}
