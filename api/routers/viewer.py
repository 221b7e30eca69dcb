"""The web viewer (``viewer/dist``, built by ``scripts/build_viewer.sh``), served at ``/``.

``index.html`` is revalidated on every load (``no-cache`` + ETag); everything under ``app/<hash>/``
and ``vendor/<package>-<version>/`` has a content- or version-named path and is cached for a year
(``immutable``). A ``.gz`` twin written by the build is sent when the browser accepts gzip. Without
a build, ``/`` answers with a page that says how to make one.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from api.httpcache import Policy, respond, strong_etag
from api.security_headers import VIEWER_CSP
from cadastre.errors import NotFound
from cadastre.settings import PROJECT_ROOT

router = APIRouter(include_in_schema=False)

DIST = PROJECT_ROOT / "viewer" / "dist"
IMMUTABLE = Policy("public, max-age=31536000, immutable")
REVALIDATE = Policy("no-cache")
_TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".json": "application/json",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".wasm": "application/wasm",
          ".glsl": "text/plain; charset=utf-8", ".ktx2": "image/ktx2", ".webp": "image/webp"}


class ViewerFileNotFound(NotFound):
    code = "VIEWER_FILE_NOT_FOUND"


def _media_type(path: Path) -> str:
    return _TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] \
        or "application/octet-stream"


def _resolve(folder: str, path: str) -> Path:
    """A file under ``dist/<folder>``; anything else (traversal, hidden, .gz asked for) is 404."""
    root = (DIST / folder).resolve()
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." or p.startswith(".") or "\\" in p for p in parts) \
            or parts[-1].endswith(".gz"):
        raise ViewerFileNotFound(message="无此文件 / no such file")
    target = root.joinpath(*parts).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise ViewerFileNotFound(message="无此文件 / no such file")
    return target


def _send(request: Request, target: Path, caching: Policy) -> Response:
    st = target.stat()
    etag = strong_etag(target.name, str(st.st_size), str(st.st_mtime_ns))
    twin = target.with_name(target.name + ".gz")
    response = respond(request, etag, caching, _media_type(target), target,
                       twin if twin.is_file() else None)
    if target.suffix == ".html":   # a viewer document: CesiumJS needs its policy
        response.headers["Content-Security-Policy"] = VIEWER_CSP
    return response


@router.get("/")
@router.get("/index.html")
def index(request: Request) -> Response:
    page = DIST / "index.html"
    if not page.is_file():
        return HTMLResponse(NOT_BUILT, status_code=503,
                            headers={"Cache-Control": REVALIDATE.cache_control})
    return _send(request, page, REVALIDATE)


@router.get("/3d.html")
def scene_3d(request: Request) -> Response:
    """The standalone 3D page: a stable address for ``app/<hash>/3d.html`` (a redirect, so its
    relative module imports resolve; the browser keeps the ``#view`` fragment)."""
    import json

    info = json.loads(_resolve(".", "build.json").read_text())
    target = f"/{info['app']}/3d.html"
    if request.url.query:
        target += "?" + request.url.query
    return Response(status_code=307, headers={"Location": target,
                                              "Cache-Control": REVALIDATE.cache_control})


@router.get("/build.json")
def build_info(request: Request) -> Response:
    return _send(request, _resolve(".", "build.json"), REVALIDATE)


@router.get("/app/{path:path}")
def app_file(request: Request, path: str) -> Response:
    return _send(request, _resolve("app", path), IMMUTABLE)


@router.get("/vendor/{path:path}")
def vendor_file(request: Request, path: str) -> Response:
    return _send(request, _resolve("vendor", path), IMMUTABLE)


NOT_BUILT = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>地图客户端尚未构建 / viewer not built</title>
<style>body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;max-width:42rem;margin:3rem auto;
padding:0 1rem;line-height:1.6;color:#222}code,pre{background:#f3f3f3;padding:.15rem .35rem;
border-radius:4px}pre{padding:.8rem}</style></head>
<body>
<h1>地图客户端尚未构建</h1>
<p>服务已运行，但网页客户端 <code>viewer/dist</code> 还没有生成。请在项目目录运行：</p>
<pre>scripts/build_viewer.sh</pre>
<p>然后刷新本页。接口仍然可用：<a href="/docs">/docs</a> 接口文档，
<a href="/health">/health</a> 服务状态。</p>
<hr>
<h2 lang="en">The web viewer has not been built</h2>
<p lang="en">The server is running, but <code>viewer/dist</code> does not exist yet. In the project
folder run <code>scripts/build_viewer.sh</code>, then reload this page. The API works meanwhile:
<a href="/docs">/docs</a> (API documentation), <a href="/health">/health</a>.</p>
</body></html>
"""
