"""One table from exception to HTTP status, registered once on the app.

Every 4xx/5xx leaves in the one shape of ``api.problems`` (RFC 9457 problem+json with our stable
``code``); only 5xx are logged as errors, and the internal text of unexpected exceptions never
reaches the client. ``docs/errors.md`` is generated from this table and the codes raised in the
source (``python -m api.errordocs``).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import Forbidden, Unauthorized
from api.problems import problem_response
from api.ratelimit import RateLimited
from cadastre.access import logsafe
from cadastre.cases.rules import RuleViolation
from cadastre.cases.workflow import CaseStateError
from cadastre.errors import (
    CadastreError,
    ClusterError,
    ConfigError,
    Conflict,
    DatabaseUnavailable,
    DatabaseVersionError,
    InvalidInput,
    MigrationError,
    NotFound,
)

log = logging.getLogger("api.errors")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")

class PayloadTooLarge(CadastreError):
    code = "BODY_TOO_LARGE"


# Errors the framework raises itself (unknown route, wrong method, unreadable body, ...)
HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("BAD_REQUEST", "请求无法解析 / the request could not be parsed"),
    404: ("ROUTE_NOT_FOUND", "无此资源 / no such resource"),
    405: ("METHOD_NOT_ALLOWED", "不支持该请求方法 / method not allowed"),
    413: ("BODY_TOO_LARGE", "请求体过大 / request body too large"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "不支持的内容类型 / unsupported media type"),
}
DB_RETRY_AFTER = 5
DB_DOWN = DatabaseUnavailable(message="数据库暂不可用，请稍后再试 / the database is unavailable, "
                              "please retry later")
DATA_INVALID = InvalidInput(message="输入值无效 / invalid input value")
INTERNAL = ("INTERNAL_ERROR", "服务器内部错误 / internal server error")

STATUS: list[tuple[type[CadastreError], int]] = [
    (RuleViolation, 409),
    (CaseStateError, 409),
    (Unauthorized, 401),
    (RateLimited, 429),
    (Forbidden, 403),
    (NotFound, 404),
    (InvalidInput, 400),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (DatabaseVersionError, 503),
    (DatabaseUnavailable, 503),
    (ClusterError, 503),
    (MigrationError, 503),
    (ConfigError, 500),
]


def status_for(exc: CadastreError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


_TOKEN = re.compile(r"[^/?&=,;:.'\"\s]*(?:[\u3400-\u9fff]|\d{7})[^/?&=,;:.'\"\s]*")


def scrub(message: str, request: Request) -> str:
    """Safety net for messages that quote request input (a name typed into a path or query must
    not come back): words of the URL with CJK characters or long numbers are cut out, and
    ID/phone/certificate numbers masked."""
    url = unquote(request.url.path) + " " + " ".join(request.query_params.values())
    for token in sorted(set(_TOKEN.findall(url)), key=len, reverse=True):
        if len(token) >= 2:
            message = message.replace(token, "…")
    return logsafe.mask(message)


def http_problem(status: int) -> tuple[str, str]:
    """The stable code and fixed message of a framework-raised HTTP error."""
    return HTTP_CODES.get(status, (f"HTTP_{status}", f"HTTP {status}"))


def install(app: FastAPI) -> None:
    @app.exception_handler(CadastreError)
    async def _domain(request: Request, exc: CadastreError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("%s: %s", exc.code, exc.message)
        return problem_response(status, exc.code, scrub(exc.message, request),
                                getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # names of the offending parameters only: never the input (it may hold PII), and no
        # loc part that is not a plain identifier (dict keys in a body are user input too)
        fields = ", ".join(dict.fromkeys(
            ".".join(str(p) if isinstance(p, int) or _NAME.match(str(p)) else "?"
                     for p in e.get("loc", ())) for e in exc.errors()))
        return problem_response(
            422, "INVALID_REQUEST", f"请求参数无效 / invalid request parameters: {fields}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = http_problem(exc.status_code)
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
        return problem_response(exc.status_code, code, message, headers)

    @app.exception_handler(psycopg.OperationalError)
    async def _database(_: Request, exc: psycopg.OperationalError) -> JSONResponse:
        # the server is down or restarting, the pool timed out, a statement ran too long
        log.warning("database unavailable: %s", type(exc).__name__)
        return problem_response(503, DB_DOWN.code, DB_DOWN.message,
                                {"Retry-After": str(DB_RETRY_AFTER)})

    @app.exception_handler(psycopg.DataError)
    async def _data(_: Request, exc: psycopg.DataError) -> JSONResponse:
        # a value PostgreSQL cannot take (NUL in text, out of range): the caller's input
        log.warning("input refused by the database: %s", type(exc).__name__)
        return problem_response(400, DATA_INVALID.code, DATA_INVALID.message)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(500, *INTERNAL)
