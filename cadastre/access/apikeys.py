"""API keys of other departments' systems (部门共享): scoped to counties and to named fields.

A key looks like ``cdk_<key id, 32 hex>_<secret>``. The secret is shown once when the key is
made; the database keeps only ``HMAC(key, key id || secret)`` (``auth.api_key.key_hash``), so a
copy of the database does not yield working keys. A key reads as the ``department`` role,
narrowed to the ``entity.field`` names it was granted (on top of the privacy policy, never
beyond it) and to its counties. Revoked, expired and unknown keys all fail the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from cadastre.access.pii import token_key
from cadastre.access.privacy import POLICY, Role, grantable, visible_fields
from cadastre.errors import InvalidInput, NotFound
from cadastre.settings import Settings

PREFIX = "cdk_"
_TOKEN = re.compile(r"^cdk_([0-9a-f]{32})_([A-Za-z0-9_-]{32,128})$")
_NAME = re.compile(r"^[\w.\-]{2,64}$")
_COUNTY = re.compile(r"^\d{6}$")
KEY_ROLE = Role.DEPARTMENT


@dataclass(frozen=True)
class ApiKey:
    key_id: uuid.UUID
    name: str
    counties: tuple[str, ...]
    fields: tuple[str, ...]
    disabled: bool
    created_at: datetime
    expires_at: datetime | None

    def active(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return not self.disabled and (self.expires_at is None or self.expires_at > now)


def hashing_key(settings: Settings) -> bytes:
    """The HMAC key for stored key hashes (derived from the token-signing key)."""
    return hmac.new(token_key(settings), b"cadastre api-key hash", hashlib.sha256).digest()


def key_hash(key: bytes, key_id: uuid.UUID, secret: str) -> bytes:
    return hmac.new(key, b"api-key\x00" + key_id.bytes + secret.encode("ascii"),
                    hashlib.sha256).digest()


def expand_fields(specs: Iterable[str]) -> tuple[str, ...]:
    """``entity.field`` grants, checked against the policy; ``entity.*`` = every field of the
    entity that departments may see. A field the policy hides from departments cannot be
    granted: a key narrows the policy, and opens only what the policy gives departments on
    grant (a new holder's name and phone for utilities moving an account at a transfer)."""
    out: list[str] = []
    for raw in specs:
        spec = raw.strip()
        if not spec:
            continue
        entity, _, name = spec.partition(".")
        if entity not in POLICY or not name:
            raise InvalidInput("API_KEY_FIELD", f"未知字段 / unknown field {spec!r} "
                               f"(entities: {', '.join(POLICY)})")
        names = visible_fields(entity, KEY_ROLE) if name == "*" else (name,)
        for n in names:
            if n not in POLICY[entity]:
                raise InvalidInput("API_KEY_FIELD", f"未知字段 / unknown field {spec!r}")
            if not grantable(entity, n, KEY_ROLE):
                raise InvalidInput("API_KEY_FIELD", f"隐私策略不允许部门读取 {spec} / the privacy "
                                   "policy does not let departments read this field")
            if f"{entity}.{n}" not in out:
                out.append(f"{entity}.{n}")
    if not out:
        raise InvalidInput("API_KEY_FIELD", "至少授权一个字段 / grant at least one field")
    return tuple(out)


def _counties(values: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
    bad = [c for c in out if not _COUNTY.match(c)]
    if bad or not out:
        raise InvalidInput("API_KEY_COUNTIES", "县级行政区代码应为 6 位数字 / counties must be "
                           "6-digit GB/T 2260 codes (at least one)")
    return out


_COLS = "key_id, name, counties, fields, disabled, created_at, expires_at"


def _row(row: tuple) -> ApiKey:
    return ApiKey(row[0], row[1], tuple(c.strip() for c in row[2] or ()), tuple(row[3] or ()),
                  row[4], row[5], row[6])


def create_key(conn: psycopg.Connection, key: bytes, name: str, counties: Iterable[str],
               fields: Iterable[str], expires_days: int | None = None,
               holder_hash: bytes | None = None) -> tuple[ApiKey, str]:
    """A new key and its token (the only time the secret exists outside the caller).
    ``holder_hash``: the keyed hash of the organisation the key acts for (a bank's 统一社会
    信用代码): its events are then those of its own rights only."""
    if not _NAME.match(name):
        raise InvalidInput("API_KEY_NAME", "名称为 2–64 个字母、数字或 _.- / name: 2–64 letters, "
                           "digits, _ . -")
    if expires_days is not None and expires_days < 1:
        raise InvalidInput("API_KEY_EXPIRY", "有效期至少 1 天 / expiry must be ≥ 1 day")
    cty, granted = _counties(counties), expand_fields(fields)
    key_id, secret = uuid.uuid4(), secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    try:
        row = conn.execute(
            f"INSERT INTO auth.api_key (key_id, name, key_hash, counties, fields, expires_at, "
            f"holder_hash) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLS}",
            (key_id, name, key_hash(key, key_id, secret), list(cty), list(granted), expires,
             holder_hash),
        ).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise InvalidInput("API_KEY_EXISTS",
                           "同名密钥已存在 / a key with this name exists") from exc
    assert row is not None
    return _row(row), f"{PREFIX}{key_id.hex}_{secret}"


def list_keys(conn: psycopg.Connection) -> list[ApiKey]:
    return [_row(r) for r in conn.execute(f"SELECT {_COLS} FROM auth.api_key ORDER BY name")]


def revoke_key(conn: psycopg.Connection, name_or_id: str) -> ApiKey:
    """Disable a key by name or id (takes effect on the next request)."""
    try:
        key_id: uuid.UUID | None = uuid.UUID(name_or_id)
    except ValueError:
        key_id = None
    row = conn.execute(
        f"UPDATE auth.api_key SET disabled = true WHERE name = %s OR key_id = %s "
        f"RETURNING {_COLS}", (name_or_id, key_id)).fetchone()
    if row is None:
        raise NotFound("API_KEY_NOT_FOUND", "无此密钥 / no such API key")
    return _row(row)


def parse_token(token: str) -> tuple[uuid.UUID, str] | None:
    m = _TOKEN.match(token.strip())
    return (uuid.UUID(m.group(1)), m.group(2)) if m else None


def authenticate(conn: psycopg.Connection, key: bytes, token: str) -> ApiKey | None:
    """The key if ``token`` is a valid, active key; None for unknown, wrong, revoked, expired."""
    parsed = parse_token(token)
    if parsed is None:
        return None
    key_id, secret = parsed
    row = conn.execute(f"SELECT {_COLS}, key_hash FROM auth.api_key WHERE key_id = %s",
                       (key_id,)).fetchone()
    expected = key_hash(key, key_id, secret)
    stored = bytes(row[7]) if row else b"\x00" * len(expected)
    if not hmac.compare_digest(stored, expected) or row is None:
        return None
    found = _row(row[:7])
    return found if found.active() else None
