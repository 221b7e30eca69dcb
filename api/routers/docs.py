"""Interactive API documentation served from this server's own files: Swagger UI at ``/docs``
and Redoc at ``/redoc``. Their scripts come from ``viewer/dist/vendor/`` (npm packages copied by
``scripts/build_viewer.sh``), never from a CDN: registration systems run on intranets, and the
pages share their origin with the bearer tokens. The pages carry no inline script (CSP)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from api.routers.viewer import DIST, NOT_BUILT

router = APIRouter(include_in_schema=False)

TITLE = "不动产登记 API / Cadastre API"


def _build() -> dict[str, Any] | None:
    try:
        info = json.loads((DIST / "build.json").read_text())
    except (OSError, ValueError):
        return None
    return info if "swagger_ui" in info and "redoc" in info else None


def _page(body: str) -> Response:
    return HTMLResponse(
        f'<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(TITLE)}</title>{body}</html>",
        headers={"Cache-Control": "no-cache"})


@router.get("/docs")
def swagger_ui() -> Response:
    info = _build()
    if info is None:
        return HTMLResponse(NOT_BUILT, status_code=503, headers={"Cache-Control": "no-cache"})
    sw, app = info["swagger_ui"]["path"], info["app"]
    return _page(f'<link rel="stylesheet" href="/{sw}/swagger-ui.css"></head><body>'
                 f'<div id="swagger-ui"></div><script src="/{sw}/swagger-ui-bundle.js"></script>'
                 f'<script src="/{app}/docs.js"></script></body>')


@router.get("/redoc")
def redoc() -> Response:
    info = _build()
    if info is None:
        return HTMLResponse(NOT_BUILT, status_code=503, headers={"Cache-Control": "no-cache"})
    rd = info["redoc"]["path"]
    return _page('<style>body{margin:0;padding:0}</style></head><body>'
                 f'<redoc spec-url="/openapi.json"></redoc>'
                 f'<script src="/{rd}/redoc.standalone.js"></script></body>')
