"""Personal data at rest: AES-256-GCM encryption and keyed (HMAC-SHA256) look-up hashes.

Keys come from settings (``CADASTRE_PII_KEY``, ``CADASTRE_LOOKUP_KEY``, base64 of 32 bytes). For the
embedded setup they are generated once into ``<data_dir>/secrets.json`` (mode 0600).
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cadastre.errors import ConfigError
from cadastre.settings import Settings

_NONCE = 12


def _decode_key(value: str, name: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ConfigError("BAD_KEY", f"{name} must be base64 of 32 bytes") from exc
    if len(key) != 32:
        raise ConfigError("BAD_KEY", f"{name} must be base64 of 32 bytes")
    return key


@lru_cache(maxsize=8)
def _aead(key: bytes) -> AESGCM:
    return AESGCM(key)


def normalize(value: str) -> str:
    """Canonical form used before hashing: NFKC, trimmed, upper case (ID check char 'x' → 'X')."""
    return unicodedata.normalize("NFKC", value).strip().upper()


@dataclass(frozen=True)
class PiiCipher:
    enc_key: bytes
    lookup_key: bytes

    def encrypt(self, plaintext: str | None) -> bytes | None:
        if plaintext is None:
            return None
        nonce = os.urandom(_NONCE)
        return nonce + _aead(self.enc_key).encrypt(nonce, plaintext.encode("utf-8"), None)

    def decrypt(self, blob: bytes | memoryview | None) -> str | None:
        if blob is None:
            return None
        raw = bytes(blob)
        return _aead(self.enc_key).decrypt(raw[:_NONCE], raw[_NONCE:], None).decode("utf-8")

    def lookup_hash(self, value: str | None) -> bytes | None:
        if value is None:
            return None
        return hmac.digest(self.lookup_key, normalize(value).encode("utf-8"), "sha256")


def load_cipher(settings: Settings) -> PiiCipher:
    sec = settings.security
    if sec.pii_key is not None and sec.lookup_key is not None:
        return PiiCipher(
            _decode_key(sec.pii_key.get_secret_value(), "CADASTRE_PII_KEY"),
            _decode_key(sec.lookup_key.get_secret_value(), "CADASTRE_LOOKUP_KEY"),
        )
    if sec.pii_key is not None or sec.lookup_key is not None:
        raise ConfigError(
            "BAD_KEY", "set both CADASTRE_PII_KEY and CADASTRE_LOOKUP_KEY, or neither"
        )
    return _cipher_from_file(settings.data_dir / "secrets.json")


_SECRET_NAMES = ("pii_key", "lookup_key", "token_key", "audit_key")


def secrets_file(path: Path) -> dict[str, str]:
    """Generated keys of the embedded setup (created on first use, mode 0600)."""
    data: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    missing = [n for n in _SECRET_NAMES if n not in data]
    if missing:
        for name in missing:
            data[name] = base64.b64encode(os.urandom(32)).decode()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    return data


def _cipher_from_file(path: Path) -> PiiCipher:
    data = secrets_file(path)
    return PiiCipher(
        _decode_key(data["pii_key"], "pii_key"), _decode_key(data["lookup_key"], "lookup_key")
    )


def token_key(settings: Settings) -> bytes:
    """Key that signs access tokens (CADASTRE_TOKEN_KEY, or generated in secrets.json)."""
    if settings.security.token_key is not None:
        return _decode_key(settings.security.token_key.get_secret_value(), "CADASTRE_TOKEN_KEY")
    return _decode_key(secrets_file(settings.data_dir / "secrets.json")["token_key"], "token_key")


def audit_key(settings: Settings) -> bytes:
    """Key that seals the audit chain (CADASTRE_AUDIT_KEY, or generated in secrets.json)."""
    if settings.security.audit_key is not None:
        return _decode_key(settings.security.audit_key.get_secret_value(), "CADASTRE_AUDIT_KEY")
    return _decode_key(secrets_file(settings.data_dir / "secrets.json")["audit_key"], "audit_key")
