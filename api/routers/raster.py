"""Orthophoto (DOM) basemap: XYZ tiles, TileJSON and the list of published rasters.

Tile rendering reads files with GDAL, so the routes are plain ``def``: FastAPI runs them in its
thread pool and the event loop stays free.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from api.httpcache import Policy, not_modified, respond
from api.state import app_settings
from tiles.raster import (
    TILE_FORMATS,
    RasterInfo,
    cached_tile,
    get_raster,
    list_rasters,
    tile_address,
    tile_etag,
    tile_format,
)

router = APIRouter(tags=["raster"])

CACHING = Policy("public, max-age=3600")

# Rendered tiles by ETag (the ETag names the raster's file state, the tile and the format): a
# map's first view asks ~25 tiles at once and GDAL renders each in ~50–150 ms of CPU, so every
# visitor after the first gets them from memory. Empty tiles are remembered as b"".
_TILES: OrderedDict[str, bytes] = OrderedDict()
_TILES_MAX_BYTES = 64 * 1024 * 1024
_tiles_bytes = 0
_tiles_lock = threading.Lock()


def _cached_tile(etag: str) -> bytes | None:
    with _tiles_lock:
        body = _TILES.get(etag)
        if body is not None:
            _TILES.move_to_end(etag)
        return body


def _remember_tile(etag: str, body: bytes) -> None:
    global _tiles_bytes
    with _tiles_lock:
        old = _TILES.pop(etag, None)
        _tiles_bytes -= len(old) if old is not None else 0
        _TILES[etag] = body
        _tiles_bytes += len(body)
        while _tiles_bytes > _TILES_MAX_BYTES and _TILES:
            _, dropped = _TILES.popitem(last=False)
            _tiles_bytes -= len(dropped)


class RasterSummary(BaseModel):
    name: str
    bounds: tuple[float, float, float, float]
    minzoom: int
    maxzoom: int
    tiles: str
    tilejson: str


class RasterList(BaseModel):
    rasters: list[RasterSummary]


def _data_dir(request: Request) -> Path:
    return Path(app_settings(request).data_dir)


def _tile_template(request: Request, name: str, fmt: str) -> str:
    base = str(request.url_for("raster_tilejson", name=name)).rsplit("/", 1)[0]
    return f"{base}/{{z}}/{{x}}/{{y}}.{fmt}"


@router.get(
    "/raster/{name}/{z}/{x}/{y}.{fmt}",
    summary="正射影像瓦片 / orthophoto XYZ tile",
    responses={200: {"content": {"image/png": {}, "image/webp": {}}},
               204: {"description": "瓦片无数据 / no data in this tile"},
               304: {"description": "未修改 / not modified (If-None-Match)"}},
    response_class=Response,
)
def raster_tile(request: Request, name: str, z: str, x: str, y: str, fmt: str) -> Response:
    """A 256×256 Web Mercator tile, transparent where the raster has no data."""
    zi, xi, yi = tile_address(z, x, y)
    fmt = tile_format(fmt)
    info = get_raster(_data_dir(request), name)
    etag = tile_etag(info, zi, xi, yi, fmt)
    unchanged = not_modified(request, etag, CACHING)
    if unchanged is not None:
        return unchanged
    body = _cached_tile(etag)
    if body is None:                    # the disk cache, else rendered (and kept on disk)
        body = cached_tile(_data_dir(request), info, zi, xi, yi, fmt, etag)
        _remember_tile(etag, body)
    return respond(request, etag, CACHING, TILE_FORMATS[fmt], body, empty=not body)


def _summary(request: Request, info: RasterInfo) -> RasterSummary:
    return RasterSummary(
        name=info.name, bounds=info.bounds, minzoom=info.minzoom, maxzoom=info.maxzoom,
        tiles=_tile_template(request, info.name, "png"),
        tilejson=str(request.url_for("raster_tilejson", name=info.name)),
    )


@router.get("/api/v1/rasters", summary="正射影像列表 / published orthophoto rasters",
            response_model=RasterList)
def rasters(request: Request) -> RasterList:
    return RasterList(rasters=[_summary(request, info)
                               for info in list_rasters(_data_dir(request))])


@router.get("/raster/{name}/tilejson.json", summary="TileJSON 3.0.0",
            name="raster_tilejson")
def raster_tilejson(
    request: Request, name: str,
    image_format: str = Query("png", alias="format", description="png | webp"),
) -> dict[str, object]:
    """TileJSON for map clients (MapLibre, OpenLayers, Cesium): URL template, zooms, bounds."""
    fmt = tile_format(image_format)
    info = get_raster(_data_dir(request), name)
    lon, lat = info.center
    return {
        "tilejson": "3.0.0",
        "name": info.name,
        "description": "正射影像 / orthophoto",
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [_tile_template(request, info.name, fmt)],
        "minzoom": info.minzoom,
        "maxzoom": info.maxzoom,
        "bounds": list(info.bounds),
        "center": [lon, lat, max(info.minzoom, info.maxzoom - 2)],
    }
