"""Vector tiles built inside PostGIS (ST_AsMVT / ST_AsMVTGeom on the stored EPSG:3857 geometry)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from cadastre.access.privacy import Role
from cadastre.errors import InvalidInput
from cadastre.query.layers import Layer

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
WORLD = 2 * math.pi * 6378137.0


class TileOutOfRange(InvalidInput):
    code = "TILE_OUT_OF_RANGE"


@dataclass(frozen=True)
class TileRequest:
    z: int
    x: int
    y: int
    floor: int | None = None

    def __post_init__(self) -> None:
        check_tile(self.z, self.x, self.y)


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise TileOutOfRange(message=f"缩放级别应在 0–{MAX_ZOOM} / zoom must be 0–{MAX_ZOOM}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise TileOutOfRange(message=f"瓦片行列号越界 / x and y must be 0–{n - 1} at zoom {z}")


def pixel_size(z: int) -> float:
    """Metres per pixel of a 256-px tile at zoom z (Web Mercator, at the equator)."""
    return WORLD / (256 * (1 << z))


@lru_cache(maxsize=256)
def layer_sql(layer: Layer, role: Role) -> str:
    """One layer's ST_AsMVT query for a role; only policy-visible fields are selected."""
    fields = layer.visible(role)
    cols = ",\n       ".join(f'{f.sql} AS "{f.name}"' for f in fields)
    geom = layer.geom_sql
    if layer.geometry == "polygon":
        geom = f"CASE WHEN %(tol)s > 0 THEN ST_Simplify({geom}, %(tol)s, true) ELSE {geom} END"
    where = ["t.valid_to IS NULL", f"{layer.geom_sql} && b.qenv"]
    if layer.geometry == "polygon" and layer.min_pixels:
        where.append(f"(%(px2)s = 0 OR ST_Area({layer.geom_sql}) >= %(px2)s * {layer.min_pixels})")
    if layer.extra_where:
        where.append(layer.extra_where)
    order = f"ORDER BY {layer.order_sql}" if layer.order_sql else ""
    return f"""
SELECT ST_AsMVT(f.*, '{layer.name}', {EXTENT}, 'geom') FROM (
  SELECT ST_AsMVTGeom({geom}, b.env, {EXTENT}, {BUFFER}, true) AS geom,
       {cols}
  FROM {layer.from_sql}, b
  WHERE {' AND '.join(where)}
  {order}
  LIMIT {layer.feature_limit}
) f WHERE f.geom IS NOT NULL"""


def tile_sql(layers: tuple[Layer, ...], role: Role) -> str:
    """All requested layers in one statement; MVT layers concatenate into one tile."""
    parts = [f"({layer_sql(layer, role)})" for layer in layers]
    return (
        "WITH b AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env, "
        f"ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => {BUFFER / EXTENT}) AS qenv)\n"
        "SELECT " + " || ".join(f"coalesce({p}, ''::bytea)" for p in parts)
    )


def tile_params(req: TileRequest, layers: tuple[Layer, ...]) -> dict[str, object]:
    px = pixel_size(req.z)
    needs_floor = any(layer.floor_filter for layer in layers)
    if needs_floor and req.floor is None:
        raise InvalidInput("FLOOR_REQUIRED",
                           "分层图层需要 floor 参数 / the units layer needs ?floor=N")
    return {
        "z": req.z, "x": req.x, "y": req.y,
        # simplify below a quarter pixel only at low zooms; detail zooms keep every vertex
        "tol": px * 0.25 if req.z < 16 else 0.0,
        "px2": px * px if req.z < 16 else 0.0,
        "floor": req.floor if req.floor is not None else 1,
    }


def visible_layers(layers: tuple[Layer, ...], z: int) -> tuple[Layer, ...]:
    return tuple(layer for layer in layers if z >= layer.minzoom)
