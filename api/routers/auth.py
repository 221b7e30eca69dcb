"""Staff and system login: username + password → a signed, expiring bearer token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import Unauthorized, issue_token
from api.ratelimit import client_address, rate_class
from api.state import app_state
from cadastre.access import lockout
from cadastre.access.accounts import authenticate

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


@router.post("/login", summary="登录 / log in (staff and systems)",
             openapi_extra=rate_class("auth"))
def login(body: Login, request: Request) -> dict[str, Any]:
    state = app_state(request)
    settings = state.settings
    client = client_address(request.scope)
    attempt = lockout.attempt(state.lockout_key, "login", body.username, client)
    with state.sync_pool.connection() as conn:
        locked = lockout.locked(conn, attempt, lockout.Policy.login(settings))
        account = authenticate(conn, body.username, body.password)  # always: same timing
        if account is None and not locked:
            lockout.record_failure(conn, attempt)
        elif account is not None and not locked:
            lockout.clear(conn, attempt)
    if account is None or locked:
        # one answer for unknown user, wrong password, disabled account and lockout
        raise Unauthorized("LOGIN_FAILED", "用户名或密码错误（多次失败将暂时锁定）/ wrong username "
                           "or password (repeated failures lock the login for a while)")
    token, ttl = issue_token(state.settings, account.role, str(account.account_id),
                             account.counties)
    return {"access_token": token, "token_type": "bearer", "expires_in": ttl,
            "role": account.role.value, "display_name": account.display_name}


@router.get("/purposes", summary="查询目的代码 / purpose codes (interested parties, departments)")
def purposes() -> dict[str, Any]:
    """Codes accepted in ``X-Purpose`` (with ``X-Case-Ref``) by interested parties (利害关系人) and
    department systems."""
    from cadastre.access.purposes import purpose_table

    return {"items": purpose_table()}
