"""One table from domain exception to HTTP status, registered once on the app.

The user sees ``{"error": {"code", "message"}}``; only 5xx are logged as errors, and the internal
text of unexpected exceptions never reaches the client.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.auth import Forbidden, Unauthorized
from cadastre.errors import (
    CadastreError,
    ClusterError,
    ConfigError,
    DatabaseUnavailable,
    DatabaseVersionError,
    InvalidInput,
    MigrationError,
    NotFound,
)

log = logging.getLogger("api.errors")

STATUS: list[tuple[type[CadastreError], int]] = [
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (InvalidInput, 400),
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


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def install(app: FastAPI) -> None:
    @app.exception_handler(CadastreError)
    async def _domain(_: Request, exc: CadastreError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("%s: %s", exc.code, exc.message)
        return JSONResponse(error_body(exc.code, exc.message), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors())
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
