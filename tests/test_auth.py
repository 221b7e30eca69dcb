"""Accounts and bearer tokens: uniform login failures, disabled accounts, expiry, tampering."""

from __future__ import annotations

import time

import jwt
import psycopg
import pytest

from api.auth import decode_token, issue_token
from cadastre.access.accounts import authenticate, create_account, set_disabled
from cadastre.access.pii import token_key
from cadastre.access.privacy import Role
from cadastre.errors import CadastreError, InvalidInput
from cadastre.settings import Settings


def test_login_failures_look_the_same(demo_client, registrar_token: str) -> None:
    wrong = demo_client.post("/api/v1/auth/login",
                             json={"username": "reg.test", "password": "wrong password!"})
    unknown = demo_client.post("/api/v1/auth/login",
                               json={"username": "nobody.here", "password": "wrong password!"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "LOGIN_FAILED"


def test_accounts_rules(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        create_account(conn, "surveyor.a", "ten chars ok", Role.SURVEYOR)
        with pytest.raises(InvalidInput) as exc:
            create_account(conn, "surveyor.a", "ten chars ok", Role.SURVEYOR)
        assert exc.value.code == "ACCOUNT_EXISTS"
        for bad, code in ((("Bad Name", "ten chars ok", Role.SURVEYOR), "ACCOUNT_USERNAME"),
                          (("short.pw", "short", Role.SURVEYOR), "PASSWORD_TOO_SHORT"),
                          (("owner.x", "ten chars ok", Role.OWNER), "ACCOUNT_ROLE")):
            with pytest.raises(InvalidInput) as exc:
                create_account(conn, *bad)
            assert exc.value.code == code
        assert authenticate(conn, "surveyor.a", "ten chars ok") is not None
        assert authenticate(conn, "surveyor.a", "ten chars no") is None
        set_disabled(conn, "surveyor.a", True)
        assert authenticate(conn, "surveyor.a", "ten chars ok") is None
        stored = conn.execute("SELECT password_hash FROM auth.account WHERE username = "
                              "'surveyor.a'").fetchone()[0]
        assert stored.startswith("$argon2id$") and "ten chars" not in stored


def test_tokens_expire_and_resist_tampering(test_settings: Settings) -> None:
    token, _ = issue_token(test_settings, Role.REGISTRAR, "6c1a4a0e-4d51-4d0a-9d43-3b0d1f3a2e10")
    assert decode_token(test_settings, token).role is Role.REGISTRAR
    claims = jwt.decode(token, token_key(test_settings), algorithms=["HS256"])
    claims["role"] = "auditor"
    forged = jwt.encode(claims, b"x" * 32, algorithm="HS256")
    with pytest.raises(CadastreError) as exc:
        decode_token(test_settings, forged)
    assert exc.value.code == "TOKEN_INVALID"
    claims.update(role="registrar", exp=int(time.time()) - 10)
    expired = jwt.encode(claims, token_key(test_settings), algorithm="HS256")
    with pytest.raises(CadastreError) as exc:
        decode_token(test_settings, expired)
    assert exc.value.code == "TOKEN_EXPIRED"
