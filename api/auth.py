"""Who is calling: anonymous public, a bearer token signed by us (HS256, expiring), or a
department system's API key (``X-API-Key``, see ``cadastre.access.apikeys``)."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import jwt
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.state import app_state
from cadastre.access import apikeys
from cadastre.access.pii import token_key
from cadastre.access.principal import PUBLIC, Principal
from cadastre.access.privacy import Role
from cadastre.access.purposes import parse_case_ref, parse_purpose
from cadastre.errors import CadastreError
from cadastre.settings import Settings

ISSUER = "cadastre"


class Unauthorized(CadastreError):
    code = "UNAUTHORIZED"


class Forbidden(CadastreError):
    code = "FORBIDDEN"




def issue_token(settings: Settings, role: Role, subject: str, counties: tuple[str, ...] = (),
                units: tuple[str, ...] = (), ttl_minutes: int | None = None) -> tuple[str, int]:
    ttl = (ttl_minutes or settings.security.token_ttl_minutes) * 60
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": subject, "role": role.value, "iat": now, "exp": now + ttl,
              "cty": list(counties)}
    if units:
        claims["units"] = list(units)
    return jwt.encode(claims, token_key(settings), algorithm="HS256"), ttl


def decode_token(settings: Settings, token: str) -> Principal:
    try:
        claims = jwt.decode(token, token_key(settings), algorithms=["HS256"], issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "role"]})
        role = Role(claims["role"])
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("TOKEN_EXPIRED", "登录已过期 / token expired") from exc
    except (jwt.InvalidTokenError, ValueError) as exc:
        raise Unauthorized("TOKEN_INVALID", "令牌无效 / invalid token") from exc
    account = None
    subject = claims["sub"] if role is Role.OWNER else None
    if role is not Role.OWNER:
        try:
            account = uuid.UUID(claims["sub"])
        except ValueError as exc:
            raise Unauthorized("TOKEN_INVALID", "令牌无效 / invalid token") from exc
    return Principal(role, account, tuple(claims.get("cty", ())), tuple(claims.get("units", ())),
                     subject=subject)


API_KEY_HEADER = "x-api-key"
PURPOSE_HEADER = "x-purpose"
CASE_REF_HEADER = "x-case-ref"
# who must state a purpose and case reference with every query (不动产登记暂行条例 Art. 28)
PURPOSE_ROLES = (Role.INTERESTED, Role.DEPARTMENT)


def _api_key(request: Request, token: str) -> Principal:
    """A department system's key → its scoped principal (subject = key id)."""
    state = app_state(request)
    with state.sync_pool.connection() as conn:
        key = apikeys.authenticate(conn, state.api_key_hmac, token)
    if key is None:  # unknown, wrong secret, revoked and expired look the same
        raise Unauthorized("API_KEY_INVALID",
                           "API 密钥无效、已吊销或已过期 / API key invalid, revoked or expired")
    return Principal(Role.DEPARTMENT, counties=key.counties, subject=str(key.key_id),
                     fields=key.fields)


def _authenticate(request: Request) -> Principal:
    key = request.headers.get(API_KEY_HEADER)
    header = request.headers.get("authorization")
    if key is not None:
        if header:
            raise Unauthorized("CREDENTIALS_CONFLICT", "请只提供一种凭据 / send either a "
                               "bearer token or an API key, not both")
        return _api_key(request, key)
    if not header:
        return PUBLIC
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("TOKEN_INVALID", "需要 Bearer 令牌 / expected a Bearer token")
    return decode_token(app_state(request).settings, token.strip())


def principal(request: Request) -> Principal:
    """FastAPI dependency: the caller (public without credentials). A bearer token or an
    ``X-API-Key``; interested parties and departments must also send ``X-Purpose`` (a code of
    ``cadastre.access.purposes``) and ``X-Case-Ref``, which the audit trail records."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    who = _authenticate(request)
    if who.role in PURPOSE_ROLES:
        who = replace(who, purpose=parse_purpose(request.headers.get(PURPOSE_HEADER)),
                      case_ref=parse_case_ref(request.headers.get(CASE_REF_HEADER)))
    request.state.principal = who
    return who


async def caller(request: Request) -> Principal:
    """``principal`` as an async dependency. Without an API key it does no I/O (a bearer token
    is checked in memory), so it runs on the event loop: as a plain ``def`` dependency it cost
    every request a hop to a worker thread and back, more than the work itself. An API key is
    looked up in the database, off the loop."""
    if API_KEY_HEADER in request.headers and getattr(request.state, "principal", None) is None:
        return await run_in_threadpool(principal, request)
    return principal(request)


def require(*roles: Role):  # type: ignore[no-untyped-def]
    """Dependency factory: the caller must have one of ``roles``."""

    async def check(request: Request) -> Principal:
        who = await caller(request)
        if who.role not in roles:
            if who.role is Role.PUBLIC:
                raise Unauthorized("LOGIN_REQUIRED", "需要登录 / login required")
            raise Forbidden("FORBIDDEN", "无权访问 / not allowed for this role")
        return who

    return check
