"""A believable synthetic orthophoto (DOM) of the demo district, drawn from the cadastre itself.

Roads are the gaps between parcels (sidewalks, lane lines, zebra crossings, street trees, cars);
compounds get lawns, trees and a drive, commercial parcels car parks, schools a running track,
parks a pond and paths, lots yards. Roofs get gable or parapet shading and every building casts a
shadow to the north-east in proportion to its height. Deterministic (seeded).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import rasterio
import shapely
from affine import Affine
from PIL import Image
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.features import rasterize
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from cadastre.errors import NotFound
from tiles.raster import RasterInfo, add_raster, rasters_dir

SEED = 20240601
TARGET_RES = 0.5          # metres per pixel
MAX_PX = 8000             # longest side of the image
PAD = 30.0                # metres drawn around the parcels
NEAR = 21.0               # within this of a parcel's box is street; beyond is open land
MAX_ROAD = 45.0           # wider gaps between parcels are squares/junctions, not road segments
SHADOW_PER_METRE = 0.55   # shadow length per metre of height (sun at ~61° elevation, from SW)

(ASPHALT, SIDEWALK, KERB, WHITE, YELLOW, MEDIAN, GRASS, TREE, PAVING, DRIVE, PARKING, TRACK,
 FIELD, WATER, SOIL, WALL, CAR, GLASS, FARM) = range(19)
_RGB = np.float32
PALETTE = np.array([(82, 84, 88), (165, 160, 150), (192, 190, 184), (226, 226, 220),
                    (214, 178, 64), (86, 116, 58), (104, 132, 66), (50, 80, 42), (178, 172, 162),
                    (128, 128, 126), (96, 98, 100), (172, 76, 62), (80, 146, 72), (50, 80, 86),
                    (146, 124, 96), (196, 194, 186), (0, 0, 0), (38, 42, 50), (0, 0, 0)], _RGB)
TEXTURE = np.array([9, 10, 6, 6, 6, 20, 22, 12, 12, 9, 8, 8, 10, 5, 16, 6, 0, 4, 10], _RGB)
FARM_COLOURS = np.array([(112, 138, 66), (150, 148, 82), (134, 112, 84), (92, 124, 58),
                         (160, 142, 102), (124, 146, 80)], _RGB)
CAR_COLOURS = np.array([(220, 222, 224), (200, 202, 206), (150, 152, 156), (30, 32, 36),
                        (140, 30, 32), (40, 60, 120), (236, 236, 232), (90, 92, 96)], _RGB)
ROOFS = {"tower": [(188, 184, 174), (202, 198, 190), (162, 162, 166), (174, 152, 132),
                   (142, 152, 162), (206, 202, 186)],
         "mid": [(192, 192, 186), (150, 156, 162), (122, 132, 142), (176, 170, 160)],
         "house": [(150, 72, 56), (122, 62, 52), (106, 106, 112), (160, 112, 82),
                   (92, 102, 112), (182, 176, 166)]}
SHADOW_TINT = np.array([0.50, 0.54, 0.64], _RGB)
TREE_DENSITY = {"park": 1 / 45, "compound": 1 / 120, "school": 1 / 400, "commercial": 1 / 260,
                "lot": 1 / 600}                     # crowns per m²


@dataclass(frozen=True)
class OrthoResult:
    path: Path
    crs: str
    width: int
    height: int
    resolution: float      # metres per pixel
    seconds: float


@dataclass(frozen=True)
class _Grid:
    transform: Affine
    width: int
    height: int
    res: float

    def burn(self, shapes: list[tuple[BaseGeometry, float]], dtype: str = "uint8",
             fill: float = 0) -> np.ndarray:
        """Rasterize (geometry, value) pairs; later pairs paint over earlier ones."""
        if not shapes:
            return np.full((self.height, self.width), fill, dtype=dtype)
        return rasterize(shapes, (self.height, self.width), fill=fill,
                         transform=self.transform, dtype=dtype)


@dataclass(frozen=True)
class _Building:
    footprint: Polygon
    floors: int
    height: float


# ----------------------------------------------------------------------------- data
def _district_crs(conn: psycopg.Connection) -> int:
    """The projected CRS most parcels are surveyed in (e.g. EPSG:4528), else Web Mercator."""
    row = conn.execute("SELECT srid FROM cad.parcel WHERE valid_to IS NULL "
                       "GROUP BY srid ORDER BY count(*) DESC LIMIT 1").fetchone()
    if row is None:
        raise NotFound("DEMO_EMPTY", "数据库中没有现势宗地，请先运行 cadastre demo / there are "
                       "no current parcels to draw; run `cadastre demo` first")
    crs = CRS.from_epsg(int(row[0]))
    return int(row[0]) if crs.is_projected and crs.axis_info[0].unit_name == "metre" else 3857


def _fetch(conn: psycopg.Connection, srid: int) -> tuple[list[tuple[str, Polygon]],
                                                          list[_Building]]:
    parcels = [(use, g) for use, wkb in conn.execute(
        "SELECT land_use, ST_AsBinary(ST_Transform(geom_3857, %s)) FROM cad.parcel "
        "WHERE valid_to IS NULL ORDER BY parcel_code", (srid,))
        for g in shapely.get_parts(shapely.from_wkb(wkb))]
    buildings = [_Building(g, int(floors), float(height)) for wkb, floors, height in conn.execute(
        "SELECT ST_AsBinary(ST_Transform(geom_3857, %s)), floors_above, "
        "coalesce(height, floors_above * 3.0) FROM cad.building WHERE valid_to IS NULL "
        "ORDER BY 3, building_code", (srid,))
        for g in shapely.get_parts(shapely.from_wkb(wkb))]
    return parcels, buildings


def _grid(parcels: list[tuple[str, Polygon]], max_px: int) -> _Grid:
    x0, y0, x1, y1 = shapely.total_bounds([g for _, g in parcels])
    x0, y0, x1, y1 = x0 - PAD, y0 - PAD, x1 + PAD, y1 + PAD
    res = max(TARGET_RES, float(np.ceil(max(x1 - x0, y1 - y0) / max_px * 20) / 20))
    width, height = int(np.ceil((x1 - x0) / res)), int(np.ceil((y1 - y0) / res))
    return _Grid(Affine(res, 0, x0, 0, -res, y1), width, height, res)


def _kind(land_use: str, area: float) -> str:
    """park (0810), school (other 08xx), lot (small), compound (07xx) or commercial."""
    if land_use.startswith("08"):
        return "park" if land_use == "0810" else "school"
    return "lot" if area < 3000 else "compound" if land_use.startswith("07") else "commercial"


# ----------------------------------------------------------------------------- textures
def _noise(rng: np.random.Generator, shape: tuple[int, int], cell_px: int) -> np.ndarray:
    """Smooth value noise (about unit variance) with features of ``cell_px`` pixels."""
    h, w = shape
    small = rng.standard_normal((h // cell_px + 3, w // cell_px + 3)).astype(np.float32)
    big = Image.fromarray(small).resize((small.shape[1] * cell_px, small.shape[0] * cell_px),
                                        Image.Resampling.BICUBIC)
    return np.asarray(big)[cell_px:cell_px + h, cell_px:cell_px + w]


def _hash01(*keys: np.ndarray) -> np.ndarray:
    """A deterministic hash of integer arrays to [0, 1) (splitmix64 mixing)."""
    h = np.zeros(np.shape(keys[0]), dtype=np.uint64)
    for k in keys:
        h = h + np.asarray(k).astype(np.int64).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h >> np.uint64(40)).astype(np.float32) / float(1 << 24)


def _runs(mask: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels to the nearest False before / after each pixel along ``axis`` (edges are False)."""
    n = mask.shape[axis]
    idx = np.arange(n, dtype=np.int32).reshape((n, 1) if axis == 0 else (1, n))
    before = idx - np.maximum.accumulate(np.where(mask, -1, idx), axis=axis)
    flipped = np.flip(mask, axis)
    after = np.flip(idx - np.maximum.accumulate(np.where(flipped, -1, idx), axis=axis), axis)
    return before, after


# ----------------------------------------------------------------------------- ground
def _ground_shapes(parcels: list[tuple[str, Polygon]], buildings: list[_Building],
                   rng: np.random.Generator) -> list[tuple[BaseGeometry, float]]:
    """Materials of the parcels' interiors, in painting order."""
    tree = shapely.STRtree([b.footprint for b in buildings])
    base: list[tuple[BaseGeometry, float]] = []
    detail: list[tuple[BaseGeometry, float]] = []
    for use, p in parcels:
        kind = _kind(use, p.area)
        x0, y0, x1, y1 = p.bounds
        cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
        if kind == "compound":
            base.append((p, GRASS))
            detail.append((p.buffer(-3, join_style="mitre").difference(
                p.buffer(-8.5, join_style="mitre")), DRIVE))
        elif kind == "commercial":
            base.append((p, PAVING))
            detail.append((p.buffer(-4, join_style="mitre"), PARKING))
            detail.append((p.exterior.buffer(1.2).intersection(p), GRASS))
        elif kind == "lot":
            base.append((p, [SOIL, GRASS, PAVING, PAVING, SOIL][int(rng.integers(5))]))
        elif kind == "school":
            base.append((p, PAVING))
            detail.append((p.difference(p.buffer(-6, join_style="mitre")), GRASS))
            for scale in (1.0, 0.75):
                r = min(30.0, bh * 0.22) * scale
                axis = LineString([(cx - bw * 0.18 * scale, y1 - 10 - r),
                                   (cx + bw * 0.18 * scale, y1 - 10 - r)])
                track = axis.buffer(r)
                if p.buffer(-4).contains(track) and not len(tree.query(track, "intersects")):
                    detail += [(track, TRACK), (axis.buffer(r - 7), FIELD)]
                    break
        else:  # park: lawn, two winding paths, a pond with a promenade
            base.append((p, GRASS))
            t = np.linspace(0, 1, 40)
            wiggle = np.sin(t * np.pi * 3 + rng.uniform(0, 6))
            for line in (LineString(zip(x0 + t * bw, cy + bh * 0.3 + wiggle * bh * 0.06,
                                        strict=True)),
                         LineString(zip(cx + bw * 0.3 + wiggle * bw * 0.05, y0 + t * bh,
                                        strict=True))):
                detail.append((line.buffer(1.6).intersection(p), PAVING))
            pond = affinity.rotate(affinity.scale(
                Point(cx - bw * 0.08, cy - bh * 0.08).buffer(1.0), bw * 0.17, bh * 0.16),
                float(rng.uniform(0, 180))).intersection(p.buffer(-10))
            if pond.geom_type == "Polygon" and not pond.is_empty:
                detail += [(pond.buffer(6).exterior.buffer(1.3), PAVING),
                           (pond.buffer(2), SOIL), (pond, WATER)]
    aprons = [(b.footprint.buffer(4.0 if b.floors >= 7 else 3.0, join_style="mitre"), PAVING)
              for b in buildings if b.floors >= 4]
    walls = [(p.exterior, WALL) for _, p in parcels]
    return base + detail + aprons + walls


def _streets(mat: np.ndarray, car: np.ndarray, shade: np.ndarray, road: np.ndarray,
             res: float) -> None:
    """Sidewalks, kerbs, lane lines, zebra crossings, street trees and cars on road segments."""
    hb, ha = _runs(road, 1)
    vb, va = _runs(road, 0)
    hrun, vrun = hb + ha - 1, vb + va - 1
    for along_axis in (0, 1):   # 0: roads running north-south, 1: east-west
        b, a, run, other = (hb, ha, hrun, vrun) if along_axis == 0 else (vb, va, vrun, hrun)
        seg = road & (run * res <= MAX_ROAD) & (other > run)
        nb, na = _runs(seg, along_axis)
        ii = np.flatnonzero(seg)
        rows, cols = np.divmod(ii, road.shape[1])
        b_, a_ = b.ravel()[ii], a.ravel()[ii]
        width = (b_ + a_ - 1) * res
        d = (np.minimum(b_, a_) - 0.5) * res                 # kerb of the parcel to pixel centre
        off = (b_ - a_) * res / 2                              # signed, from the centre line
        dn = (np.minimum(nb.ravel()[ii], na.ravel()[ii]) - 0.5) * res   # to the junction
        along = (rows if along_axis == 0 else cols) * res
        key = ((cols if along_axis == 0 else rows) - b_) * 2 + (b_ < a_)
        wide = width >= 30
        walk = np.where(wide, 4.5, 3.0)
        c = d - walk                                           # into the carriageway
        half = width / 2 - walk - np.where(wide, 1.5, 0.0)
        out = np.full(ii.size, ASPHALT, dtype=np.uint8)
        out[c < 0] = SIDEWALK
        out[(c >= -0.5) & (c < 0)] = KERB
        out[(c >= 0.5) & (c < 1.0) & (dn > 2)] = WHITE         # edge line
        out[~wide & (np.abs(off - 0.01) <= 0.25) & (dn > 8)] = YELLOW
        out[wide & (np.abs(off) < 1.5)] = MEDIAN
        out[wide & (np.abs(np.abs(off) - 1.5) < 0.3)] = KERB
        k = np.rint(c / 3.5)
        out[(k >= 1) & (np.abs(c - 3.5 * k - 0.01) <= 0.25) & (c < half - 1) & (along % 10 < 4)
            & (dn > 12)] = WHITE
        out[(c >= 0) & (dn >= 2) & (dn < 6.5) & (np.floor(c) % 2 == 0)
            & (~wide | (np.abs(off) >= 1.8))] = WHITE               # zebra crossings
        # stop lines on the half of the carriageway that drives towards the junction (keep right)
        ahead = na.ravel()[ii] < nb.ravel()[ii]
        approach = np.where(ahead, -1, 1) * (1 if along_axis == 0 else -1)
        out[(c >= 0) & (dn >= 8) & (dn < 8.5) & (np.sign(off) == approach)] = WHITE
        lane = np.floor(c / 3.5)
        u = (along + lane * 2.9 + key * 1.3) % 9.0
        cell = np.floor((along + lane * 2.9 + key * 1.3) / 9.0)
        h = _hash01(cell, lane, key)
        is_car = ((c >= 0) & (3.5 * (lane + 1) <= half + 0.3) & (np.abs(c - 3.5 * lane - 1.75)
                  < 0.95) & (u > 2) & (u < 6.6) & (h < 0.22) & (dn > 10))
        out[is_car] = CAR
        out[is_car & (u > 3.4) & (u < 4.9)] = GLASS
        car.ravel()[ii[is_car]] = (h[is_car] * 997).astype(np.int64) % len(CAR_COLOURS)
        tu, tv = ((along + key * 3.7) % 8.0 - 4.0) / 2.3, (d - walk * 0.5) / 2.3
        crown = (tu**2 + tv**2 < 1) & (c < 0.8) & (dn > 9)
        out[crown] = TREE
        lit = tu * (1 if along_axis == 0 else -1)              # the sun is to the south-west
        shade.ravel()[ii[crown]] = (1.05 + 0.2 * lit - 0.3 * (tu**2 + tv**2))[crown]
        mat.ravel()[ii] = out


def _parking(mat: np.ndarray, car: np.ndarray, res: float) -> None:
    """Stalls (2.5 m × 5.5 m, double rows around 6 m aisles) and parked cars in car parks."""
    ii = np.flatnonzero(mat == PARKING)
    rows, cols = np.divmod(ii, mat.shape[1])
    x, y = cols * res, rows * res
    ry, sx = y % 17.0, x % 2.5
    stall = (ry < 5.5) | (ry >= 11.5)
    out = mat.ravel()[ii]
    out[stall & (sx < res)] = WHITE
    h = _hash01(np.floor(x / 2.5), np.floor(y / 17.0) * 2 + (ry >= 11.5))
    ry2 = np.where(ry >= 11.5, ry - 11.5, ry)
    parked = stall & (h < 0.55) & (sx > 0.4) & (sx < 2.1) & (ry2 > 0.4) & (ry2 < 5.1)
    out[parked] = CAR
    out[parked & (ry2 > 1.9) & (ry2 < 3.4)] = GLASS
    car.ravel()[ii[parked]] = (h[parked] * 997).astype(np.int64) % len(CAR_COLOURS)
    mat.ravel()[ii] = out


def _crowns(parcels: list[tuple[str, Polygon]], mat: np.ndarray, shade: np.ndarray,
            grid: _Grid, rng: np.random.Generator) -> None:
    """Round tree crowns rooted on lawns, lit from the south-west, denser in parks."""
    xs, ys = [], []
    for use, p in parcels:
        x0, y0, x1, y1 = p.bounds
        n = rng.poisson((x1 - x0) * (y1 - y0) * TREE_DENSITY[_kind(use, p.area)])
        x, y = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
        keep = shapely.contains_xy(p, x, y)
        xs.append(x[keep])
        ys.append(y[keep])
    x, y = np.concatenate(xs), np.concatenate(ys)
    col, row = ~grid.transform @ (x, y)
    lawn = np.isin(mat[row.astype(int), col.astype(int)], (GRASS, MEDIAN))
    x, y, col, row = x[lawn], y[lawn], col[lawn], row[lawn]
    radius = rng.uniform(1.8, 4.2, x.size)
    polygons = shapely.buffer(shapely.points(x, y), radius, quad_segs=3)
    crown = grid.burn(list(zip(polygons, range(1, x.size + 1), strict=True)), dtype="int32")
    ii = np.flatnonzero(crown)
    k = crown.ravel()[ii] - 1
    pr, pc = np.divmod(ii, grid.width)
    dx = (pc + 0.5 - col[k]) * grid.res / radius[k]
    dy = (pr + 0.5 - row[k]) * grid.res / radius[k]
    ok = ~np.isin(mat.ravel()[ii], (WATER, TRACK, FIELD, CAR, GLASS))
    mat.ravel()[ii[ok]] = TREE
    shade.ravel()[ii[ok]] = (1.05 + 0.16 * (dy - dx) - 0.3 * (dx**2 + dy**2))[ok]


def _farmland(rgb: np.ndarray, mat: np.ndarray, res: float) -> None:
    """Open land beyond the district: plots of crops with furrows and field ridges."""
    ii = np.flatnonzero(mat == FARM)
    rows, cols = np.divmod(ii, mat.shape[1])
    x, y = cols * res, rows * res
    band = np.floor(x / 40.0)
    yy = y + 13.0 * band
    crop = (_hash01(band, np.floor(yy / 25.0)) * len(FARM_COLOURS)).astype(np.int64)
    colour = FARM_COLOURS[crop] * (1 + 0.07 * np.sin(yy * 2 * np.pi / 1.6))[:, None]
    colour[(x % 40.0 < res) | (yy % 25.0 < res)] = (158, 148, 118)
    rgb.reshape(-1, 3)[ii] = colour + ((_hash01(ii) - 0.5) * 14)[:, None]


# ----------------------------------------------------------------------------- roofs
def _roofs(buildings: list[_Building], grid: _Grid, shade: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Building id per pixel (taller wins) and roof colour per id; roof shading into ``shade``."""
    bid = grid.burn([(b.footprint, i + 1) for i, b in enumerate(buildings)], dtype="int32")
    n = len(buildings) + 1
    colour = np.zeros((n, 3), np.float32)
    pitched = np.zeros(n, bool)
    axis = np.zeros((n, 4), np.float32)        # centre (col, row) and unit normal of the ridge
    inv = ~grid.transform
    for i, b in enumerate(buildings, start=1):
        palette = ROOFS["tower" if b.floors >= 7 else "mid" if b.floors >= 4 else "house"]
        colour[i] = palette[int(rng.integers(len(palette)))]
        colour[i] *= rng.uniform(0.93, 1.07)
        pitched[i] = b.floors <= 3 and rng.random() < 0.75
        rect = np.asarray(b.footprint.minimum_rotated_rectangle.exterior.coords)[:3]
        e1, e2 = rect[1] - rect[0], rect[2] - rect[1]
        ridge = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
        c = b.footprint.centroid
        axis[i] = (*(inv @ (c.x, c.y)), -ridge[1], -ridge[0])   # normal, in pixel axes
        axis[i, 2:] /= max(float(np.hypot(*axis[i, 2:])), 1e-9)
    ii = np.flatnonzero(bid)
    rows, cols = np.divmod(ii, grid.width)
    k = bid.ravel()[ii]
    s = (cols - axis[k, 0]) * axis[k, 2] + (rows - axis[k, 1]) * axis[k, 3]
    sunward = np.sign(-axis[k, 2] + axis[k, 3])     # the sun is to the south-west
    shade_px = np.where(pitched[k], np.where(s * sunward > 0, 1.12, 0.84), 1.0)
    shade_px = np.where(pitched[k] & (np.abs(s) < 0.6), 1.2, shade_px)
    shade.ravel()[ii] = shade_px
    flat = ~pitched[bid] & (bid > 0)
    rim = functools.reduce(np.logical_or, (np.roll(bid, shift, ax) != bid
                                           for shift, ax in ((1, 0), (-1, 0), (1, 1), (-1, 1))))
    shade[rim & flat] = 1.16                                    # parapets
    plant = grid.burn([(affinity.scale(b.footprint, 0.3, 0.35), 1)     # lift machine rooms
                       for b in buildings if b.floors >= 5]) > 0
    shade[plant & flat] *= 1.1
    shade[np.roll(np.roll(plant, -3, 0), 3, 1) & ~plant & flat] *= 0.78
    return bid, colour


def _shadows(buildings: list[_Building], grid: _Grid) -> np.ndarray:
    """Height of the tallest building whose shadow covers each pixel (0 = sunlit)."""
    step = [b.height * SHADOW_PER_METRE / np.sqrt(2) for b in buildings]
    return grid.burn([(shapely.convex_hull(shapely.union(
        b.footprint, affinity.translate(b.footprint, d, d))), b.height)
        for b, d in zip(buildings, step, strict=True)], dtype="float32")


# ----------------------------------------------------------------------------- compose
def render_demo_orthophoto(conn: psycopg.Connection, *, seed: int = SEED, max_px: int = MAX_PX
                           ) -> tuple[np.ndarray, _Grid, int]:
    """RGB (3, H, W) uint8, the pixel grid and the EPSG code of the image."""
    rng = np.random.default_rng(seed)
    srid = _district_crs(conn)
    parcels, buildings = _fetch(conn, srid)
    grid = _grid(parcels, max_px)
    shape = (grid.height, grid.width)

    mat = grid.burn(_ground_shapes(parcels, buildings, rng), fill=255)
    near = grid.burn([(shapely.box(*p.bounds).buffer(NEAR, join_style="mitre"), 1)
                      for _, p in parcels]) > 0
    road = (mat == 255) & near
    mat[road] = ASPHALT
    mat[mat == 255] = FARM
    car = np.zeros(shape, np.uint8)
    shade = np.ones(shape, np.float32)
    _streets(mat, car, shade, road, grid.res)
    _parking(mat, car, grid.res)
    _crowns(parcels, mat, shade, grid, rng)
    del road, near

    coarse, mid = _noise(rng, shape, 64), _noise(rng, shape, 12)
    rgb = PALETTE[mat]
    rgb += (TEXTURE[mat] * (0.45 * coarse + 0.35 * mid + 0.5 * rng.standard_normal(
        shape, dtype=np.float32)))[..., None]
    green = (mat == GRASS) | (mat == TREE) | (mat == MEDIAN) | (mat == FIELD)
    rgb[green, 0] += 10 * coarse[green]
    del green, coarse
    rgb[(mat == FIELD) & ((np.arange(grid.width) * grid.res // 5) % 2 == 0)[None, :]] *= 1.08
    cars = mat == CAR
    rgb[cars] = CAR_COLOURS[car[cars]]
    _farmland(rgb, mat, grid.res)

    bid, roof_colour = _roofs(buildings, grid, shade, rng)
    roofs = bid > 0
    rgb[roofs] = roof_colour[bid[roofs]] + 4 * mid[roofs][:, None]
    rgb *= shade[..., None]
    heights = np.array([0.0] + [b.height for b in buildings], np.float32)
    shadow = _shadows(buildings, grid) > heights[bid] + 0.5
    trees = mat == TREE
    tree_shadow = np.roll(np.roll(trees, -4, 0), 4, 1) & ~trees & ~roofs & ~shadow
    rgb[shadow] *= SHADOW_TINT
    rgb[tree_shadow] *= 0.7
    out = np.clip(rgb, 0, 255).astype(np.uint8).transpose(2, 0, 1)
    return np.ascontiguousarray(out), grid, srid


def make_demo_orthophoto(conn: psycopg.Connection, out_path: Path | str, *, seed: int = SEED,
                         max_px: int = MAX_PX) -> OrthoResult:
    """Render the demo district to a tiled GeoTIFF with overviews at ``out_path``."""
    started = time.monotonic()
    image, grid, srid = render_demo_orthophoto(conn, seed=seed, max_px=max_px)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 3,
               "dtype": "uint8", "crs": f"EPSG:{srid}", "transform": grid.transform,
               "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "zstd",
               "zstd_level": 1, "predictor": 2, "photometric": "RGB", "interleave": "pixel",
               "bigtiff": "IF_SAFER"}
    with rasterio.open(out_path, "w", **profile) as dst:
        dst.write(image)
        factors = [f for f in (2, 4, 8, 16, 32) if max(grid.width, grid.height) / f >= 256]
        dst.build_overviews(factors, Resampling.average)
        dst.update_tags(TIFFTAG_IMAGEDESCRIPTION="demo orthophoto (synthetic) / 演示正射影像")
    return OrthoResult(out_path, f"EPSG:{srid}", grid.width, grid.height, grid.res,
                       time.monotonic() - started)


def publish_demo_orthophoto(conn: psycopg.Connection, data_dir: Path | str,
                            name: str = "demo-ortho") -> tuple[RasterInfo, OrthoResult]:
    """Render the demo orthophoto and register it as ``name`` (replacing an older one)."""
    source = rasters_dir(data_dir) / f".{name}-source.tif"
    try:
        result = make_demo_orthophoto(conn, source)
        return add_raster(data_dir, source, name=name, replace=True), result
    finally:
        source.unlink(missing_ok=True)
