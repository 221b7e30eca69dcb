"""ASGI guards every request passes before routing: HEAD answered like GET, request bodies
bounded per route (413 before the body is read when ``Content-Length`` says so), request lines
with NUL characters refused, and the security headers on every response.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import send_problem
from api.security_headers import SECURITY_HEADERS

# Routes whose body is a file upload: they get the upload limit, all others the small JSON limit
UPLOAD_ROUTES = {("POST", "/api/v1/surveys")}
# documents other departments file (一码关联): the document limit
DOCUMENT_ROUTE = re.compile(r"^/api/v1/units/[^/]{1,64}/documents$")
# multipart framing around the file (boundaries, part headers, small form fields)
MULTIPART_OVERHEAD = 1024 * 1024


class HeadAsGet:
    """HEAD works wherever GET does: the GET route runs, its headers are sent, its body is not
    (RFC 9110 §9.3.2)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            elif message["type"] == "http.response.pathsend":
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the route's limit: an HTTPException,
    so that FastAPI's body parsing lets it through to the error handlers (413)."""

    def __init__(self) -> None:
        super().__init__(413)


class RequestGuard:
    """NUL characters in the path or query (``%00``) are refused (400), and request bodies are
    bounded: ``upload_bytes`` for the upload routes, ``body_bytes`` for every other route."""

    def __init__(self, app: ASGIApp, body_bytes: int, upload_bytes: int,
                 document_bytes: int = 0) -> None:
        self.app = app
        self.body_bytes = body_bytes
        self.upload_bytes = upload_bytes + MULTIPART_OVERHEAD
        self.document_bytes = (document_bytes + MULTIPART_OVERHEAD if document_bytes
                               else body_bytes)

    def limit(self, scope: Scope) -> int:
        path = scope["path"].rstrip("/")
        if (scope["method"], path) in UPLOAD_ROUTES:
            return self.upload_bytes
        if scope["method"] == "POST" and DOCUMENT_ROUTE.match(path):
            return self.document_bytes
        return self.body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            await send_problem(send, 400, "REQUEST_INVALID",
                               "请求含有无效字符 / the request contains invalid characters")
            return
        limit = self.limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send)
            return
        received = 0
        started = False

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send) -> None:
    await send_problem(send, 413, "BODY_TOO_LARGE", "请求体过大 / request body too large",
                       [(b"connection", b"close")])


class SecurityHeaders:
    """CSP, frame, referrer and sniffing policies on every response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", ()))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
