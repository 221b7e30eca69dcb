"""HTTP caching in one place: validators, conditional requests and cache headers.

Every cached representation the server sends (vector tiles, the warm-tile fast path, raster
tiles, 3D Tiles files, glyphs, sprites, styles and the viewer's files) goes through ``choose``:

* ``If-None-Match`` is evaluated as RFC 9110 §13.1.2 says: a list of entity tags, compared with
  the *weak* comparison (``W/"x"`` matches ``"x"``), and ``*`` matches any current
  representation. A match answers 304 with the same validator and cache headers as a 200.
* ``Accept-Encoding`` is parsed with its q-values (RFC 9110 §12.5.3: ``gzip;q=0`` refuses gzip,
  ``*`` accepts it unless gzip itself is refused).
* The gzip and the identity body of one resource carry distinct entity tags (``"t"`` and
  ``"t-gz"``): a cache holding one never revalidates the other with it (RFC 9110 §8.8.3).
* ``Vary`` always names ``Accept-Encoding`` and, when the body depends on the caller,
  ``Authorization`` and ``X-API-Key``.

Responses carrying an ``ETag`` are not re-encoded by the GZip middleware (``ValidatedGZip``):
their encoding was chosen here, under a tag that names it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import FileResponse
from starlette.middleware.gzip import GZipMiddleware, GZipResponder, IdentityResponder
from starlette.types import Message, Receive, Scope, Send

PUBLIC_VARY = ("Accept-Encoding",)
CALLER_VARY = ("Authorization", "X-API-Key", "Accept-Encoding")
GZIP_SUFFIX = "-gz"


def strong_etag(*parts: bytes | str) -> str:
    """A strong entity tag naming ``parts`` (content bytes, or a file's identity)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return '"' + h.hexdigest()[:32] + '"'


def opaque(tag: str) -> str:
    """The opaque part of an entity tag (``W/"x"`` → ``"x"``), for the weak comparison."""
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def variant(etag: str, gzip: bool) -> str:
    """The tag of the gzip body of the resource tagged ``etag`` (``etag`` itself for identity)."""
    if not gzip:
        return etag
    return etag[:-1] + GZIP_SUFFIX + '"' if etag.endswith('"') else etag + GZIP_SUFFIX


def _split_tags(header: str) -> list[str]:
    """The entity tags of an If-None-Match list (commas may appear inside quotes)."""
    tags, i, n = [], 0, len(header)
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        if i >= n:
            break
        start = i
        if header.startswith("W/", i):
            i += 2
        if i < n and header[i] == '"':
            end = header.find('"', i + 1)
            i = n if end < 0 else end + 1
        else:
            while i < n and header[i] not in " \t,":
                i += 1
        tags.append(header[start:i])
    return tags


def none_match(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names the current representation (→ 304 for GET/HEAD)."""
    if not if_none_match:
        return False
    tags = _split_tags(if_none_match)
    if "*" in tags:
        return True
    mine = opaque(etag)
    return any(opaque(t) == mine for t in tags)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether the client accepts a gzip body (RFC 9110 §12.5.3, with q-values)."""
    if not accept_encoding:
        return False
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        weights[name.strip().lower()] = q
    for name in ("gzip", "x-gzip"):
        if name in weights:
            return weights[name] > 0
    return weights.get("*", 0.0) > 0


@dataclass(frozen=True)
class Policy:
    """Cache-Control and Vary of one kind of resource."""

    cache_control: str
    vary: tuple[str, ...] = PUBLIC_VARY
    expose_etag: bool = False      # cross-origin map clients read the ETag (tiles)

    def headers(self, etag: str) -> dict[str, str]:
        out = {"ETag": etag, "Cache-Control": self.cache_control, "Vary": ", ".join(self.vary)}
        if self.expose_etag:
            out["Access-Control-Expose-Headers"] = "ETag"
        return out


@dataclass(frozen=True)
class Choice:
    """What to answer: 304, 204 or 200, with its headers and whether the body is gzip."""

    status: int
    headers: dict[str, str]
    gzip: bool


def choose(request_headers: Mapping[str, str], etag: str, policy: Policy, *,
           gzip_available: bool, empty: bool = False) -> Choice:
    """The response to a GET/HEAD of a resource tagged ``etag`` (the identity body's tag).

    ``gzip_available``: a gzip body exists (or will be made) for clients that accept it.
    ``empty``: the resource has no content (answered 204 unless not modified)."""
    gz = gzip_available and not empty and accepts_gzip(request_headers.get("accept-encoding"))
    tag = variant(etag, gz)
    headers = policy.headers(tag)
    if none_match(request_headers.get("if-none-match"), tag):
        return Choice(304, headers, gz)
    if empty:
        return Choice(204, headers, False)
    if gz:
        headers["Content-Encoding"] = "gzip"
    return Choice(200, headers, gz)


Body = bytes | Path


def respond(request: Request, etag: str, policy: Policy, media_type: str,
            identity: Body | Callable[[], Body], gzipped: Body | Callable[[], Body] | None = None,
            *, empty: bool = False) -> Response:
    """A Starlette response for ``choose``; bodies are made only when needed (callables)."""
    choice = choose(request.headers, etag, policy, gzip_available=gzipped is not None,
                    empty=empty)
    if choice.status != 200:
        return Response(status_code=choice.status, headers=choice.headers)
    source = gzipped if choice.gzip else identity
    body = source() if callable(source) else source
    if isinstance(body, Path):
        response: Response = FileResponse(body, media_type=media_type, headers=choice.headers)
        del response.headers["last-modified"]   # the ETag is the one validator
        return response
    return Response(body, media_type=media_type, headers=choice.headers)


# ------------------------------------------------------------------ GZip for everything else
class _SkipValidated:
    """Mixin: a response with an ETag passes through as it is (see the module docstring)."""

    content_encoding_set: bool
    initial_message: Message

    async def send_with_compression(self, message: Message) -> None:
        if message["type"] == "http.response.start" and any(
                k.lower() == b"etag" for k, _ in message.get("headers", ())):
            self.initial_message = message
            self.content_encoding_set = True   # starlette's pass-through flag for the body
            await self.send(message)  # type: ignore[attr-defined]
            return
        await super().send_with_compression(message)  # type: ignore[misc]


class _GZip(_SkipValidated, GZipResponder):
    pass


class _Identity(_SkipValidated, IdentityResponder):
    pass


class ValidatedGZip(GZipMiddleware):
    """Starlette's GZip middleware for dynamic responses (JSON, HTML, CSV); responses with an
    ``ETag`` were encoded by ``respond``/``choose`` and are left alone."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accept = dict(scope.get("headers", ())).get(b"accept-encoding", b"").decode("latin-1")
        responder: Any
        if accepts_gzip(accept):
            responder = _GZip(self.app, self.minimum_size, compresslevel=self.compresslevel,
                              thread_minimum_size=self.thread_minimum_size,
                              exclude_content_types=self.exclude_content_types)
        else:
            responder = _Identity(self.app, self.minimum_size,
                                  exclude_content_types=self.exclude_content_types)
        await responder(scope, receive, send)


def not_modified(request: Request, etag: str, policy: Policy) -> Response | None:
    """A 304 when ``If-None-Match`` names ``etag`` (for identity-only resources checked before
    their body is made, e.g. a raster tile not yet rendered), else None."""
    choice = choose(request.headers, etag, policy, gzip_available=False)
    return Response(status_code=304, headers=choice.headers) if choice.status == 304 else None


# Policies shared by more than one route
TILE_PUBLIC = Policy("public, max-age=300", CALLER_VARY, expose_etag=True)
TILE_PRIVATE = Policy("private, max-age=60", CALLER_VARY, expose_etag=True)
