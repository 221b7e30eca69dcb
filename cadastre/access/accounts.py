"""Staff and system accounts: argon2id password hashes, roles, county scope."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cadastre.access.privacy import Role
from cadastre.errors import InvalidInput, NotFound

ACCOUNT_ROLES = (Role.REGISTRAR, Role.SURVEYOR, Role.INTERESTED, Role.DEPARTMENT, Role.AUDITOR)
_hasher = PasswordHasher()
# verifying against this keeps the timing of "no such user" equal to "wrong password"
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class Account:
    account_id: uuid.UUID
    username: str
    display_name: str
    role: Role
    counties: tuple[str, ...]
    disabled: bool


def create_account(conn: psycopg.Connection, username: str, password: str, role: Role,
                   display_name: str | None = None, counties: tuple[str, ...] = ()) -> Account:
    if role not in ACCOUNT_ROLES:
        raise InvalidInput("ACCOUNT_ROLE", f"角色无效 / role must be one of "
                           f"{', '.join(r.value for r in ACCOUNT_ROLES)}")
    if len(password) < 10:
        raise InvalidInput("PASSWORD_TOO_SHORT", "密码至少 10 位 / password needs ≥ 10 characters")
    account_id = uuid.uuid4()
    try:
        conn.execute(
            "INSERT INTO auth.account (account_id, username, display_name, role, password_hash,"
            " counties) VALUES (%s, %s, %s, %s, %s, %s)",
            (account_id, username, display_name or username, role.value, _hasher.hash(password),
             list(counties)),
        )
    except psycopg.errors.UniqueViolation as exc:
        raise InvalidInput("ACCOUNT_EXISTS", "用户名已存在 / username already exists") from exc
    except psycopg.errors.CheckViolation as exc:
        raise InvalidInput("ACCOUNT_USERNAME",
                           "用户名只能包含小写字母、数字和 _.- / username: 3–64 of a-z 0-9 _ . -"
                           ) from exc
    return Account(account_id, username, display_name or username, role, counties, False)


def _row_to_account(row: tuple) -> Account:
    return Account(row[0], row[1], row[2], Role(row[3]), tuple(row[4] or ()), row[5])


def list_accounts(conn: psycopg.Connection) -> list[Account]:
    rows = conn.execute("SELECT account_id, username, display_name, role, counties, disabled "
                        "FROM auth.account ORDER BY username").fetchall()
    return [_row_to_account(r) for r in rows]


def authenticate(conn: psycopg.Connection, username: str, password: str) -> Account | None:
    """The account if the password matches and it is enabled; None otherwise (same timing)."""
    row = conn.execute("SELECT account_id, username, display_name, role, counties, disabled, "
                       "password_hash FROM auth.account WHERE username = %s",
                       (username,)).fetchone()
    stored = row[6] if row else _DUMMY_HASH
    try:
        ok: bool = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or row is None or row[5]:
        return None
    return _row_to_account(row[:6])


def set_disabled(conn: psycopg.Connection, username: str, disabled: bool) -> None:
    cur = conn.execute("UPDATE auth.account SET disabled = %s WHERE username = %s",
                       (disabled, username))
    if cur.rowcount == 0:
        raise NotFound("ACCOUNT_NOT_FOUND", "账户不存在 / no such account")
