"""一证一码: the opaque token printed as a QR code on a certificate, and its QR image.

A token names one certificate without revealing it: the version of the ownership or land-use
right a paper certificate was issued for (``RIGHT_VERSION`` keys), or the serial of an electronic
certificate, proof or query result (``DOCUMENT`` keys, ``cadastre.certificates``), as
``AES-256(id ‖ HMAC(id)[:8])`` in one 16-byte block,
base64url (22 characters). Without the key a token can be neither read nor made, and guessing one
has a 2⁻⁶⁴ chance per try. It carries no personal data. The keys are derived from the PII look-up
key, which never changes once data are stored (changing it would orphan every look-up hash, and
every printed QR code with them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import struct

import qrcode
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from qrcode.constants import ERROR_CORRECT_M

RIGHT_VERSION = b"certificate-qr/v1"     # paper certificates: the right version
DOCUMENT = b"certificate-doc/v1"          # electronic documents: their serial
TOKEN_LENGTH = 22


def _keys(secret: bytes, label: bytes) -> tuple[bytes, bytes]:
    root = hmac.new(secret, label, hashlib.sha256).digest()
    return (hmac.new(root, b"enc", hashlib.sha256).digest(),
            hmac.new(root, b"mac", hashlib.sha256).digest())


def _tag(mac_key: bytes, version_id: int) -> bytes:
    return hmac.new(mac_key, struct.pack(">q", version_id), hashlib.sha256).digest()[:8]


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def certificate_token(secret: bytes, version_id: int, label: bytes = RIGHT_VERSION) -> str:
    """The opaque token for the certificate issued with right version ``version_id`` (or, with
    ``label=DOCUMENT``, for the electronic document with that serial)."""
    enc_key, mac_key = _keys(secret, label)
    block = struct.pack(">q", version_id) + _tag(mac_key, version_id)
    enc = Cipher(algorithms.AES(enc_key), modes.ECB()).encryptor()   # one block: a PRP
    return _encode(enc.update(block) + enc.finalize())


def token_version(secret: bytes, token: str, label: bytes = RIGHT_VERSION) -> int | None:
    """The right version (or document serial) a token names, or None for anything not made by
    us with ``label``.

    Does the same work for every token of the right length (decrypt + HMAC)."""
    enc_key, mac_key = _keys(secret, label)
    raw = b"\x00" * 16
    well_formed = False
    if isinstance(token, str) and len(token) == TOKEN_LENGTH and token.isascii():
        try:
            raw = base64.urlsafe_b64decode(token + "==")
            # canonical only: the last character has 4 unused bits (no second spelling)
            well_formed = len(raw) == 16 and _encode(raw) == token
        except ValueError:
            raw = b"\x00" * 16
    if not well_formed:
        raw = b"\x00" * 16
    dec = Cipher(algorithms.AES(enc_key), modes.ECB()).decryptor()
    block = dec.update(raw) + dec.finalize()
    version_id = struct.unpack(">q", block[:8])[0]
    ok = hmac.compare_digest(block[8:], _tag(mac_key, version_id))
    return version_id if ok and well_formed and version_id > 0 else None


def verification_url(base_url: str, token: str) -> str:
    """The public page a scanned QR code opens."""
    return f"{base_url.rstrip('/')}/verify/c/{token}"


def qr_png(data: str, box_size: int = 8, border: int = 4) -> bytes:
    """A QR code (error correction M) as PNG bytes."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=border)
    code.add_data(data)
    code.make(fit=True)
    image = code.make_image(fill_color="black", back_color="white")
    buf = io.BytesIO()
    image.save(buf)
    return buf.getvalue()
