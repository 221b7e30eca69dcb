"""The one error shape: RFC 9457 problem details (``application/problem+json``) with our stable
``code`` as an extension member, and the ``error`` member the viewer and API clients have read
from the start::

    {"type": "urn:cadastre:error:NOT_FOUND", "title": "Not Found", "status": 404,
     "detail": "未找到 / not found", "code": "NOT_FOUND",
     "error": {"code": "NOT_FOUND", "message": "未找到 / not found"}}

``detail`` is a fixed message chosen by the code that raised the error: nothing of the request
comes back in it. Route handlers answer through ``api.errors``; middleware that answers before
routing (rate limits, body limits, bad request lines) uses ``send_problem``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import Send

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:cadastre:error:"


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(status: int, code: str, message: str) -> dict[str, Any]:
    return {"type": TYPE_PREFIX + code, "title": _title(status), "status": status,
            "detail": message, "code": code, "error": {"code": code, "message": message}}


def problem_response(status: int, code: str, message: str,
                     headers: Mapping[str, str] | None = None) -> JSONResponse:
    merged = {"Cache-Control": "no-store", **(headers or {})}
    return JSONResponse(problem(status, code, message), status_code=status, headers=merged,
                        media_type=MEDIA_TYPE)


async def send_problem(send: Send, status: int, code: str, message: str,
                       headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Answer a raw ASGI request (middleware, before routing) in the one shape."""
    body = json.dumps(problem(status, code, message), ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"), *headers]})
    await send({"type": "http.response.body", "body": body})


def is_problem(body: object, status: int) -> bool:
    """Whether ``body`` is a problem in the one shape (for tests and the fuzz checks)."""
    if not isinstance(body, dict):
        return False
    code, err = body.get("code"), body.get("error")
    return (body.get("status") == status and isinstance(code, str) and bool(code)
            and body.get("type") == TYPE_PREFIX + code and isinstance(body.get("title"), str)
            and isinstance(body.get("detail"), str) and isinstance(err, dict)
            and err.get("code") == code and err.get("message") == body["detail"])
