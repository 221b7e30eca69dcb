"""Map assets served by this server, so the web map needs no internet: glyphs, sprites, styles.

Glyph ranges and sprite sheets are built on first request and cached under
``{data_dir}/cache/glyphs`` and ``{data_dir}/cache/sprites``. The routes are plain ``def`` so that
FastAPI runs the (blocking, CPU-bound) rendering in its thread pool. Responses carry a strong ETag
and a one-day Cache-Control; ``If-None-Match`` is answered with 304.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import OrderedDict
from pathlib import Path

from fastapi import APIRouter, Request, Response

from api.httpcache import Policy, respond, strong_etag
from api.state import app_settings
from tiles import glyphs, sprites, style

router = APIRouter(tags=["map assets"])

CACHING = Policy("public, max-age=86400")
_PBF = "application/x-protobuf"


def _cache_dir(request: Request, kind: str) -> Path:
    return Path(app_settings(request).data_dir) / "cache" / kind


_GZIPPED: OrderedDict[str, bytes] = OrderedDict()   # etag → gzip body, most recent last
_GZIPPED_MAX = 1024
_gz_lock = threading.Lock()


def _gzipped(etag: str, data: bytes) -> bytes:
    """Compress an asset once (CJK glyph ranges are ~200 KB) instead of on every request in the
    event loop, where the GZip middleware would serialise a map's 40 parallel glyph requests."""
    with _gz_lock:
        body = _GZIPPED.get(etag)
        if body is not None:
            _GZIPPED.move_to_end(etag)
            return body
    body = gzip.compress(data, compresslevel=6, mtime=0)
    with _gz_lock:
        _GZIPPED[etag] = body
        while len(_GZIPPED) > _GZIPPED_MAX:
            _GZIPPED.popitem(last=False)
    return body


def _respond(request: Request, data: bytes, media_type: str) -> Response:
    etag = strong_etag(data)
    gzipped = (lambda: _gzipped(etag, data)) if len(data) >= 1024 else None
    return respond(request, etag, CACHING, media_type, data, gzipped)


@router.get(
    "/glyphs/{fontstack}/{glyph_range}.pbf",
    summary="地图字形 / map font glyphs (SDF, 256 code points)",
    response_class=Response,
    responses={200: {"content": {_PBF: {}}}},
)
def get_glyphs(fontstack: str, glyph_range: str, request: Request) -> Response:
    """Glyph PBF for a font stack (``"A,B"`` uses the first one served) and a range ``N-N+255``."""
    start, _ = glyphs.parse_range(glyph_range)
    store = glyphs.glyph_store(_cache_dir(request, "glyphs"))
    stack = store.resolve(fontstack)
    return _respond(request, store.get_range(stack, start), _PBF)


def _sprite(request: Request, name: str, ratio: int, ext: str) -> Response:
    data = sprites.sprite_file(_cache_dir(request, "sprites"), name, ratio, ext)
    return _respond(request, data, "application/json" if ext == "json" else "image/png")


# the @2x routes come first: "{name}.json" would also match "cadastre@2x.json"
@router.get("/sprites/{name}@2x.json", summary="图标索引 @2x / sprite index @2x")
def get_sprite_index_2x(name: str, request: Request) -> Response:
    return _sprite(request, name, 2, "json")


@router.get("/sprites/{name}@2x.png", summary="图标图片 @2x / sprite image @2x",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def get_sprite_image_2x(name: str, request: Request) -> Response:
    return _sprite(request, name, 2, "png")


@router.get("/sprites/{name}.json", summary="图标索引 / sprite index")
def get_sprite_index(name: str, request: Request) -> Response:
    return _sprite(request, name, 1, "json")


@router.get("/sprites/{name}.png", summary="图标图片 / sprite image",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def get_sprite_image(name: str, request: Request) -> Response:
    return _sprite(request, name, 1, "png")


@router.get("/styles/{name}.json", summary="地图样式 / MapLibre style")
def get_style(name: str, request: Request) -> Response:
    """MapLibre style whose glyphs, sprite and tiles all point back at this server."""
    if name not in style.STYLE_NAMES:   # a fixed message: never echo the path back
        raise style.StyleNotFound(message="未知地图样式 / unknown style; available: "
                                  + ", ".join(style.STYLE_NAMES))
    body = style.build_style(name, str(request.base_url))
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return _respond(request, data, "application/json")
