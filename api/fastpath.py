"""Warm public tiles straight from the disk cache, before routing and dependency injection.

Only anonymous requests (neither ``Authorization`` nor ``X-API-Key``) whose tile is already
cached take this path; everything else (misses, tokens, API keys, bad coordinates) falls
through to ``api/routers/tiles.py`` (purpose check, audit), which produces the same headers.
CORS and the other middleware still wrap it.
"""

from __future__ import annotations

import gzip
import re
from typing import Any
from urllib.parse import parse_qs

from api.httpcache import TILE_PUBLIC, choose
from api.state import maybe_state
from cadastre.access.privacy import Role
from cadastre.errors import CadastreError
from cadastre.query.layers import parse_layers
from tiles.mvt import TileRequest
from tiles.service import cache_key

_PATH = re.compile(r"^/tiles/([a-z_,]+)/(\d{1,2})/(\d{1,7})/(\d{1,7})\.mvt$")
MVT_TYPE = b"application/vnd.mapbox-vector-tile"


class WarmTileMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        m = _PATH.match(scope["path"])
        headers = dict(scope["headers"])
        state = maybe_state(scope.get("app"))
        cache = state.tile_cache if state is not None else None
        credentials = b"authorization" in headers or b"x-api-key" in headers
        if m is None or credentials or cache is None or not cache.enabled:
            await self.app(scope, receive, send)
            return
        try:
            layers = parse_layers(m.group(1))
            floor_q = parse_qs(scope.get("query_string", b"").decode()).get("floor")
            floor = int(floor_q[0]) if floor_q else None
            req = TileRequest(int(m.group(2)), int(m.group(3)), int(m.group(4)), floor)
            if any(layer.floor_filter for layer in layers) and floor is None:
                raise ValueError
        except (CadastreError, ValueError):
            await self.app(scope, receive, send)
            return
        tile = cache.get(Role.PUBLIC.value, cache_key(layers, req), req.z, req.x, req.y)
        if tile is None:
            await self.app(scope, receive, send)
            return
        request_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}
        choice = choose(request_headers, tile.etag, TILE_PUBLIC, gzip_available=True,
                        empty=tile.empty)
        out = [(k.lower().encode(), v.encode()) for k, v in choice.headers.items()]
        body = b""
        if choice.status == 200:
            body = tile.data if choice.gzip else gzip.decompress(tile.data)
            out.append((b"content-type", MVT_TYPE))
        out.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": choice.status, "headers": out})
        await send({"type": "http.response.body",
                    "body": body if scope["method"] == "GET" else b""})
