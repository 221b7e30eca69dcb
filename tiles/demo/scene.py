"""A photogrammetry-like textured scene of part of the demo district, delivered as an OSGB
production (``metadata.xml`` + ``Data/Tile_+xxx_+yyy/``) so the demo runs the same path as a real
ContextCapture delivery.

Per 200 m tile: terrain (a grid, gently undulating) and building blocks from ``cad.building``
footprints and heights, textured with a per-LOD atlas drawn with Pillow (ground with parcels and
building footprints, a facade with windows, a roof). LOD tree as ContextCapture writes it: root
``Tile_x.osgb`` (PagedLOD, coarse) → ``Tile_x_L1_0.osgb`` (Group of four quadrant PagedLODs) →
``Tile_x_L2_q.osgb`` (leaf, finest). Files are authored as osgt and encoded with osgconv (see
``osgb/author.py``: osgconv cannot build PagedLODs from OBJ, and its osgt writer rounds).
"""

from __future__ import annotations

import math
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import shapely
from PIL import Image, ImageDraw
from shapely.geometry import MultiPolygon, Polygon, box

from tiles.threed.osgb.author import AuthoredGeometry, AuthoredLod, write_osgb
from tiles.threed.units import _triangulate

TILE = 200.0
SEED = 20240601
BUILDINGS = """
SELECT building_code, ST_AsBinary(geom), coalesce(height, floors_above * 3.0),
       ground_elevation, srid
FROM cad.building
WHERE valid_to IS NULL AND ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, srid))
"""


@dataclass
class Block:
    code: str
    footprint: Polygon  # local coordinates
    base: float
    height: float


def _atlas(size: int, tile_box: Polygon, blocks: list[Block], rng: random.Random) -> Image.Image:
    """Left half: ground; right top: facade; right bottom: roof."""
    img = Image.new("RGB", (size, size), (86, 88, 90))
    d = ImageDraw.Draw(img)
    half = size // 2
    x0, y0, x1, y1 = tile_box.bounds

    def px(x: float, y: float) -> tuple[float, float]:
        return (x - x0) / (x1 - x0) * half, (1 - (y - y0) / (y1 - y0)) * size

    for _ in range(int(size / 8)):  # lawns and paving between the blocks
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        r = rng.uniform(3, 12)
        d.ellipse(
            [*px(cx - r, cy + r), *px(cx + r, cy - r)], fill=(88, 128 + rng.randint(0, 30), 62)
        )
    for b in blocks:
        d.polygon([px(x, y) for x, y in b.footprint.exterior.coords], fill=(176, 172, 164))
    d.rectangle([half, 0, size, half], fill=(196, 190, 178))  # facade
    rows, cols = 8, 6
    for r in range(rows):
        for c in range(cols):
            wx = half + (c + 0.25) * half / cols
            wy = (r + 0.25) * half / rows
            d.rectangle(
                [wx, wy, wx + half / cols * 0.5, wy + half / rows * 0.45],
                fill=(52 + rng.randint(0, 30), 64 + rng.randint(0, 30), 82),
            )
    d.rectangle([half, half, size, size], fill=(150, 150, 146))  # roof
    for _ in range(12):
        rx, ry = rng.uniform(half, size - 20), rng.uniform(half, size - 20)
        d.rectangle([rx, ry, rx + size / 40, ry + size / 40], fill=(120, 122, 124))
    return img


def _terrain(tile_box: Polygon, n: int, base: float) -> AuthoredGeometry:
    x0, y0, x1, y1 = tile_box.bounds
    xs, ys = np.meshgrid(np.linspace(x0, x1, n + 1), np.linspace(y0, y1, n + 1))
    zs = base + 0.6 * np.sin(xs / 37.0) * np.cos(ys / 53.0)
    pos = np.column_stack([xs.ravel(), ys.ravel(), zs.ravel()])
    uv = np.column_stack([(xs.ravel() - x0) / (x1 - x0) * 0.5, (ys.ravel() - y0) / (y1 - y0)])
    i, j = np.meshgrid(np.arange(n), np.arange(n))
    a = (j * (n + 1) + i).ravel()
    tris = np.vstack(
        [np.column_stack([a, a + 1, a + n + 2]), np.column_stack([a, a + n + 2, a + n + 1])]
    )
    return AuthoredGeometry(pos, tris, uv, None)


def _blocks_geometry(blocks: list[Block]) -> AuthoredGeometry | None:
    pos, uv = [], []
    for b in blocks:
        top = b.base + b.height
        caps = _triangulate(b.footprint)
        if len(caps):
            (bx0, by0, bx1, by1) = b.footprint.bounds
            p = np.concatenate([caps, np.full((*caps.shape[:2], 1), top)], axis=2).reshape(-1, 3)
            u = 0.5 + 0.5 * (p[:, 0] - bx0) / max(bx1 - bx0, 1e-6)
            v = 0.5 * (p[:, 1] - by0) / max(by1 - by0, 1e-6)
            pos.append(p)
            uv.append(np.column_stack([u, v]))
        c = np.asarray(b.footprint.exterior.coords)[:, :2]
        for (ax, ay), (bx, by) in zip(c[:-1], c[1:], strict=True):
            q = np.array(
                [
                    [ax, ay, b.base],
                    [bx, by, b.base],
                    [bx, by, top],
                    [ax, ay, b.base],
                    [bx, by, top],
                    [ax, ay, top],
                ]
            )
            pos.append(q)
            uv.append(np.array([[0.5, 0.5], [1, 0.5], [1, 1], [0.5, 0.5], [1, 1], [0.5, 1]]))
    if not pos:
        return None
    p = np.vstack(pos)
    return AuthoredGeometry(p, np.arange(len(p)).reshape(-1, 3), np.vstack(uv), None)


def _node(
    folder: Path,
    stem: str,
    tile_box: Polygon,
    blocks: list[Block],
    n: int,
    size: int,
    base: float,
    rng: random.Random,
) -> list[AuthoredGeometry]:
    name = f"{stem}.jpg"
    _atlas(size, tile_box, blocks, rng).save(folder / name, quality=85)
    geoms = [_terrain(tile_box, n, base)]
    b = _blocks_geometry(blocks)
    if b is not None:
        geoms.append(b)
    for g in geoms:
        g.image = name
    return geoms


def _lod(
    tile_box: Polygon, blocks: list[Block], geoms: list[AuthoredGeometry], level: int, child: str
) -> AuthoredLod:
    cx, cy = tile_box.centroid.x, tile_box.centroid.y
    top = max([b.base + b.height for b in blocks], default=10.0)
    radius = math.hypot(tile_box.bounds[2] - tile_box.bounds[0], top) / 2
    return AuthoredLod((cx, cy, top / 2), radius, radius / 2 * 2**level, child, geoms)


def write_demo_production(
    conn: psycopg.Connection,
    folder: Path,
    tiles: int = 2,
    offset: tuple[float, float] = (120.0, 120.0),
) -> tuple[Path, list[str]]:
    """A ``tiles``×``tiles`` production of 200 m tiles; returns its folder and building codes."""
    rng = random.Random(SEED)
    ext = conn.execute(
        "SELECT ST_XMin(e), ST_YMin(e), s FROM (SELECT ST_Extent(geom) e, "
        "min(srid) s FROM cad.building WHERE valid_to IS NULL) q"
    ).fetchone()
    if ext is None or ext[0] is None:
        raise ValueError("no buildings in the database")
    ox, oy, srid = ext[0] + offset[0], ext[1] + offset[1], int(ext[2])
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "Data").mkdir(parents=True)
    (folder / "metadata.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<ModelMetadata version="1">\n'
        f"    <SRS>EPSG:{srid}</SRS>\n    <SRSOrigin>{ox:.3f},{oy:.3f},0</SRSOrigin>\n"
        "</ModelMetadata>\n",
        encoding="utf-8",
    )
    codes: list[str] = []
    for ti in range(tiles):
        for tj in range(tiles):
            tile_box = box(ti * TILE, tj * TILE, (ti + 1) * TILE, (tj + 1) * TILE)
            rows = conn.execute(
                BUILDINGS,
                (ox + ti * TILE, oy + tj * TILE, ox + (ti + 1) * TILE, oy + (tj + 1) * TILE),
            ).fetchall()
            blocks = []
            for code, wkb, height, ground, _ in rows:
                g = shapely.from_wkb(bytes(wkb))
                poly = max(g.geoms, key=lambda p: p.area) if isinstance(g, MultiPolygon) else g
                local = shapely.affinity.translate(poly, -ox, -oy).simplify(0.05)
                if local.centroid.within(tile_box):
                    blocks.append(Block(code.strip(), local, float(ground), float(height)))
                    codes.append(code.strip())
            base = float(np.mean([b.base for b in blocks])) if blocks else 5.0
            name = f"Tile_+{ti:03d}_+{tj:03d}"
            d = folder / "Data" / name
            d.mkdir()
            root = _node(d, f"{name}_L0", tile_box, blocks, 8, 256, base, rng)
            write_osgb(d / f"{name}.osgb", [_lod(tile_box, blocks, root, 0, f"{name}_L1_0.osgb")])
            quads = []
            for q, (qx, qy) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
                x0, y0 = tile_box.bounds[0] + qx * TILE / 2, tile_box.bounds[1] + qy * TILE / 2
                qbox = box(x0, y0, x0 + TILE / 2, y0 + TILE / 2)
                qb = [b for b in blocks if b.footprint.centroid.within(qbox)]
                mid = _node(d, f"{name}_L1_{q}", qbox, qb, 12, 512, base, rng)
                quads.append(_lod(qbox, qb, mid, 1, f"{name}_L2_{q}.osgb"))
                fine = _node(d, f"{name}_L2_{q}", qbox, qb, 24, 1024, base, rng)
                write_osgb(d / f"{name}_L2_{q}.osgb", leaf=fine)
            write_osgb(d / f"{name}_L1_0.osgb", quads)
            for jpg in d.glob("*.jpg"):
                jpg.unlink()
    return folder, codes
