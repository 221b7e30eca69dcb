"""3D cadastre: unit volumes (户) extruded from their plan polygons, as 3D Tiles.

Each current unit polygon is extruded from ``base_elevation`` by ``height`` into a closed,
outward-facing mesh (top and bottom by ear clipping, one quad per edge, flat normals), every
vertex georeferenced exactly (see ``georef.py``). One glb per building carries a feature ID per
vertex (``EXT_mesh_features``) and a property table (``EXT_structural_metadata``) whose columns
are exactly what ``privacy.visible_fields("unit", Role.PUBLIC)`` allows from ``CANDIDATES``: no
party data can reach the tiles. Closed volumes work both as a CesiumJS classification layer over
photogrammetry (``Cesium3DTileset`` with ``classificationType``) and as a standalone 3D view.

Heights: floor elevations go through the same height datum rule as photogrammetry
(``georef.HeightDatum``, setting ``CADASTRE_THREED_HEIGHT_DATUM``).

Classification margin: CesiumJS colours (and picks) only the surfaces *inside* a classification
volume, and a photogrammetry facade or roof lies exactly on the unit's boundary (the unit plans
subdivide the building footprint). So the geometry is grown a little: ``MARGIN_XY`` outward in
plan (mitred), ``MARGIN_Z`` down and up, and the units at the top of their building reach
``ROOF_MARGIN`` above it (parapets, roof noise of a real model). The metadata keeps the exact
values (``base_elevation``, ``height``, ``building_area``); only the drawn volume is padded.

Building shells (the far level of detail, ``shells``) are the simplified building footprints
extruded over the span of the building's units. The tileset hierarchy, the incremental updates
and the publishing are in ``unit_tiles.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mapbox_earcut
import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.polygon import orient

from cadastre.access.privacy import Role, visible_fields
from tiles.threed.bounding_volume import Box
from tiles.threed.compress import NONE, Compression
from tiles.threed.content import MeshPart, PropertyTable, write_glb
from tiles.threed.georef import ELLIPSOIDAL, EnuFrame, Georeference, HeightDatum, SpatialReference

CANDIDATES = (
    "unit_code",
    "building_code",
    "floor_no",
    "room_no",
    "use",
    "building_area",
    "base_elevation",
    "height",
)
TYPES = {
    "unit_code": "STRING",
    "building_code": "STRING",
    "floor_no": "INT16",
    "room_no": "STRING",
    "use": "STRING",
    "building_area": "FLOAT64",
    "base_elevation": "FLOAT64",
    "height": "FLOAT64",
}
COLOUR = (0.30, 0.62, 0.95, 1.0)
MARGIN_XY, MARGIN_Z, ROOF_MARGIN = 0.3, 0.1, 1.5  # metres, see the module docstring
SHELL_SIMPLIFY = 0.5  # metres: building shells (far LOD) are simplified footprints


def public_columns() -> tuple[str, ...]:
    """The unit attributes that may go into 3D metadata (the privacy policy decides)."""
    return visible_fields("unit", Role.PUBLIC, CANDIDATES)


def _triangulate(poly: Polygon) -> np.ndarray:
    rings = [np.asarray(poly.exterior.coords)[:-1, :2]]
    rings += [np.asarray(r.coords)[:-1, :2] for r in poly.interiors]
    verts = np.vstack(rings)
    ends = np.cumsum([len(r) for r in rings]).astype(np.uint32)
    tri = np.asarray(mapbox_earcut.triangulate_float64(verts, ends), dtype=np.int64).reshape(-1, 3)
    p = verts[tri]
    area = (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 2, 0] - p[:, 0, 0]) * (
        p[:, 1, 1] - p[:, 0, 1]
    )
    tri[area < 0] = tri[area < 0][:, [0, 2, 1]]  # counter-clockwise seen from above
    return verts[tri]  # (T, 3, 2)


def extrude(geom: Polygon | MultiPolygon, base: float, height: float) -> np.ndarray:
    """Closed volume as unindexed triangles (T, 3, 3) in source coordinates."""
    out = []
    polys = list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]
    top_z = base + height
    for poly in polys:
        poly = orient(poly, 1.0)  # exterior CCW, holes CW: edge a→b has the solid on its left
        caps = _triangulate(poly)
        if len(caps):
            top = np.concatenate([caps, np.full((*caps.shape[:2], 1), top_z)], axis=2)
            bottom = np.concatenate([caps[:, ::-1], np.full((*caps.shape[:2], 1), base)], axis=2)
            out += [top, bottom]
        for ring in [poly.exterior, *poly.interiors]:
            c = np.asarray(ring.coords)[:, :2]
            a, b = c[:-1], c[1:]
            a0, b0 = (
                np.column_stack([a, np.full(len(a), base)]),
                np.column_stack([b, np.full(len(b), base)]),
            )
            a1, b1 = a0.copy(), b0.copy()
            a1[:, 2] = b1[:, 2] = top_z
            out += [np.stack([a0, b0, b1], axis=1), np.stack([a0, b1, a1], axis=1)]
    return np.concatenate(out) if out else np.zeros((0, 3, 3))


def extrude_many(
    geoms: np.ndarray, z0: np.ndarray, z1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`extrude` for many (multi)polygons at once, geometry ``i`` from ``z0[i]`` to
    ``z1[i]``: unindexed triangles (T, 3, 3) and, per triangle, the index of its geometry.
    The walls of every ring are built in one vectorised pass; only the caps' ear clipping runs
    per polygon."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    parts = shapely.orient_polygons(parts, exterior_cw=False)  # exterior CCW, holes CW
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    lo, hi = np.asarray(z0, dtype=np.float64)[owner], np.asarray(z1, dtype=np.float64)[owner]
    # walls: consecutive points of one (closed) ring are an edge, the solid on its left
    same = ring_of[:-1] == ring_of[1:]
    a, b = coords[:-1][same], coords[1:][same]
    part = ring_part[ring_of[:-1][same]]
    za, zb = lo[part], hi[part]
    a0, b0 = np.column_stack([a, za]), np.column_stack([b, za])
    a1, b1 = np.column_stack([a, zb]), np.column_stack([b, zb])
    walls = np.concatenate([np.stack([a0, b0, b1], axis=1), np.stack([a0, b1, a1], axis=1)])
    wall_owner = np.concatenate([owner[part], owner[part]])
    # caps: ear clipping per polygon over its rings' coordinates (closing points dropped)
    counts = shapely.get_num_coordinates(rings)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    first_ring = np.searchsorted(ring_part, np.arange(len(parts)))
    last_ring = np.searchsorted(ring_part, np.arange(len(parts)), side="right")
    caps, cap_owner = [], []
    for j in range(len(parts)):
        ks = range(first_ring[j], last_ring[j])
        verts = np.concatenate([coords[starts[k] : starts[k] + counts[k] - 1] for k in ks])
        ends = np.cumsum([counts[k] - 1 for k in ks]).astype(np.uint32)
        tri = np.asarray(mapbox_earcut.triangulate_float64(verts, ends), dtype=np.int64)
        if not tri.size:
            continue
        p = verts[tri.reshape(-1, 3)]
        area = (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (
            p[:, 2, 0] - p[:, 0, 0]
        ) * (p[:, 1, 1] - p[:, 0, 1])
        p[area < 0] = p[area < 0][:, [0, 2, 1]]  # counter-clockwise seen from above
        n = len(p)
        top = np.concatenate([p, np.full((n, 3, 1), hi[j])], axis=2)
        bottom = np.concatenate([p[:, ::-1], np.full((n, 3, 1), lo[j])], axis=2)
        caps += [top, bottom]
        cap_owner.append(np.full(2 * n, owner[j]))
    tris = np.concatenate([walls, *caps]) if caps else walls
    owners = np.concatenate([wall_owner, *cap_owner]) if cap_owner else wall_owner
    return tris, owners


class BuildingWriter:
    """Writes one building's unit volumes (and shells) as glb in the register's ENU frame."""

    def __init__(
        self,
        out_dir: Path,
        frame: EnuFrame,
        compression: Compression = NONE,
        datum: HeightDatum = ELLIPSOIDAL,
    ) -> None:
        self.out_dir, self.frame = out_dir, frame
        self.compression, self.datum = compression, datum

    def georef(self, srid: int) -> Georeference:
        return _georef(srid, self.datum)

    def to_enu(self, srid: int, pts: np.ndarray) -> np.ndarray:
        return self.frame.from_ecef(self.georef(srid).to_ecef(pts))

    def building(
        self, code: str, rows: list[tuple[Any, ...]], columns: tuple[str, ...]
    ) -> dict[str, Any]:
        srid = int(rows[0][len(columns)])
        recs = [dict(zip(columns + ("srid", "wkb"), row, strict=True)) for row in rows]
        spans = [(float(r.get("base_elevation") or 0), float(r.get("height") or 3)) for r in recs]
        roof = max(b + h for b, h in spans)
        geoms = shapely.from_wkb([bytes(row[-1]) for row in rows])
        grown = shapely.buffer(geoms, MARGIN_XY, join_style="mitre", mitre_limit=2.0)
        base = np.array([b for b, _ in spans]) - MARGIN_Z
        top = np.array([b + h for b, h in spans])
        top += np.where(top >= roof - 1e-6, ROOF_MARGIN, MARGIN_Z)
        tri, owner = extrude_many(grown, base, top)
        enu = self.to_enu(srid, tri.reshape(-1, 3))
        table = PropertyTable(
            "unit",
            {c: (TYPES[c], [_cast(TYPES[c], r[i]) for r in rows]) for i, c in enumerate(columns)},
        )
        uri = f"buildings/{code}.glb"
        box = self._write(uri, enu, np.repeat(owner, 3), table)
        return {
            "uri": uri,
            "box": [list(box.lo), list(box.hi)],
            "units": len(rows),
            "z": [min(b for b, _ in spans), roof],
        }

    def shells(self, uri: str, shells: list[tuple[str, int, Any, float, float]]) -> Box:
        """One glb of building shells: (code, srid, footprint, bottom, top) each, simplified
        footprints extruded over the building's height span; feature = building."""
        tris, fids = [], []
        srids = np.array([srid for _, srid, *_ in shells])
        for srid in np.unique(srids):
            pick = np.flatnonzero(srids == srid)
            geoms = shapely.simplify(
                np.array([shells[k][2] for k in pick], dtype=object), SHELL_SIMPLIFY
            )
            z0 = np.array([shells[k][3] for k in pick])
            z1 = np.maximum(np.array([shells[k][4] for k in pick]), z0 + 0.5)
            t, owner = extrude_many(geoms, z0, z1)
            tris.append(self.to_enu(int(srid), t.reshape(-1, 3)))
            fids.append(np.repeat(pick[owner], 3))
        names = visible_fields("building", Role.PUBLIC, ("building_code",))
        table = PropertyTable("building", {n: ("STRING", [c for c, *_ in shells]) for n in names})
        return self._write(uri, np.concatenate(tris), np.concatenate(fids), table)

    def _write(self, uri: str, enu: np.ndarray, fids: np.ndarray, table: PropertyTable) -> Box:
        t3 = enu.reshape(-1, 3, 3)
        n = np.cross(t3[:, 1] - t3[:, 0], t3[:, 2] - t3[:, 0])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        part = MeshPart(
            enu,
            np.arange(len(enu), dtype=np.uint32).reshape(-1, 3),
            normals=np.repeat(n, 3, axis=0),
            feature_ids=fids,
            color=COLOUR,
        )
        path = self.out_dir / uri
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        box = write_glb(tmp, [part], unlit=False, table=table, compression=self.compression)
        tmp.replace(path)
        return box


_GEOREFS: dict[tuple[int, str], Georeference] = {}


def _georef(srid: int, datum: HeightDatum) -> Georeference:
    """One transformer per SRID and datum per process (PROJ takes ~1 s to choose it)."""
    key = (srid, datum.name)
    if key not in _GEOREFS:
        ref = SpatialReference(f"EPSG:{srid}", CRS.from_epsg(srid))
        _GEOREFS[key] = Georeference(ref, datum=datum)
    return _GEOREFS[key]


def _cast(kind: str, value: Any) -> Any:
    if kind == "FLOAT64":
        return float(value)
    if kind == "INT16":
        return int(value)
    return str(value).strip()
