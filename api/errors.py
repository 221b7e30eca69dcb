"""One table from domain exception to HTTP status, registered once on the app.

The user sees ``{"error": {"code", "message"}}``; only 5xx are logged as errors, and the internal
text of unexpected exceptions never reaches the client.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.auth import Forbidden, Unauthorized
from api.ratelimit import RateLimited
from cadastre.access import logsafe
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

STATUS: list[tuple[type[CadastreError], int]] = [
    (Unauthorized, 401),
    (RateLimited, 429),
    (Forbidden, 403),
    (NotFound, 404),
    (InvalidInput, 400),
    (Conflict, 409),
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


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def install(app: FastAPI) -> None:
    @app.exception_handler(CadastreError)
    async def _domain(request: Request, exc: CadastreError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("%s: %s", exc.code, exc.message)
        return JSONResponse(error_body(exc.code, scrub(exc.message, request)), status_code=status,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # names of the offending parameters only: never the input (it may hold PII), and no
        # loc part that is not a plain identifier (dict keys in a body are user input too)
        fields = ", ".join(dict.fromkeys(
            ".".join(str(p) if isinstance(p, int) or _NAME.match(str(p)) else "?"
                     for p in e.get("loc", ())) for e in exc.errors()))
        return JSONResponse(
            error_body("INVALID_REQUEST", f"请求参数无效 / invalid request parameters: {fields}"),
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(
            error_body("INTERNAL_ERROR", "服务器内部错误 / internal server error"), status_code=500
        )
