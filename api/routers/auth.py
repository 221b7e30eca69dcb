"""Staff and system login: username + password → a signed, expiring bearer token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import Unauthorized, issue_token
from cadastre.accounts import authenticate

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


@router.post("/login", summary="登录 / log in (staff and systems)")
def login(body: Login, request: Request) -> dict[str, Any]:
    state = request.app.state
    with state.sync_pool.connection() as conn:
        account = authenticate(conn, body.username, body.password)
    if account is None:
        # one answer for unknown user, wrong password and disabled account
        raise Unauthorized("LOGIN_FAILED", "用户名或密码错误 / wrong username or password")
    token, ttl = issue_token(state.settings, account.role, str(account.account_id),
                             account.counties)
    return {"access_token": token, "token_type": "bearer", "expires_in": ttl,
            "role": account.role.value, "display_name": account.display_name}
