"""Full extracts of the spatial layers as a GeoPackage or GeoParquet, with the fields the caller's
role may see: every value passes the one privacy policy (``cadastre.access.privacy.apply``), so a
public extract carries no encumbrance status and a department's masked certificate numbers.

Layers: parcel, building, floor, unit (current versions), written in batches (bounded memory).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import psycopg
import pyogrio
import shapely

from cadastre.access import privacy
from cadastre.access.privacy import Role

BATCH = 50_000
# (layer, privacy entity, SQL of its current rows with the geometry as WKB in ``wkb``)
LAYERS: tuple[tuple[str, str, str], ...] = (
    ("parcel", "parcel", "SELECT p.feature_id::text AS id, p.parcel_code, p.seat, "
     "p.compound_name, p.land_use, p.right_type, p.right_nature, p.registered_area, "
     "p.neighbour_north, p.neighbour_east, p.neighbour_south, p.neighbour_west, p.map_sheet, "
     "p.srid, ST_AsBinary(p.geom) AS wkb FROM cad.parcel p WHERE p.valid_to IS NULL "
     "ORDER BY p.parcel_code"),
    ("building", "building", "SELECT b.feature_id::text AS id, b.building_code, b.parcel_code, "
     "b.name, b.project_name, b.floors_total, b.floors_above, b.floors_below, b.height, "
     "b.structure, b.planned_use, b.completion_date, b.floor_area, b.footprint_area, "
     "b.ground_elevation, ST_AsBinary(b.geom) AS wkb FROM cad.building b "
     "WHERE b.valid_to IS NULL ORDER BY b.building_code"),
    ("floor", "floor", "SELECT f.building_code, f.floor_no, f.floor_label, f.base_elevation, "
     "f.storey_height, f.floor_area, ST_AsBinary(f.geom) AS wkb FROM cad.floor f "
     "WHERE f.valid_to IS NULL ORDER BY f.building_code, f.floor_no"),
    ("unit", "unit", "SELECT u.feature_id::text AS id, u.unit_code, u.building_code, "
     "u.parcel_code, u.floor_no, u.floor_count, u.room_no, u.seat, u.use, u.house_type, "
     "u.house_nature, u.layout, u.building_area, u.inner_area, u.shared_area, "
     "u.shared_coefficient, u.base_elevation, u.height, s.registration_status, s.mortgaged, "
     "s.seized, s.pre_noticed, s.objected, ST_AsBinary(u.geom) AS wkb FROM cad.unit u "
     "LEFT JOIN cad.unit_status s ON s.unit_code = u.unit_code WHERE u.valid_to IS NULL "
     "ORDER BY u.unit_code"),
)


def _plain(value: Any) -> Any:
    return str(value).rstrip() if isinstance(value, str) else value


def _frames(conn: psycopg.Connection, role: Role
            ) -> Iterator[tuple[str, gpd.GeoDataFrame | None]]:
    """Per layer, its rows as ``role`` may see them in frames of at most ``BATCH`` rows; a
    layer without rows yields ``(layer, None)`` once."""
    srid = conn.execute("SELECT min(srid) FROM cad.parcel WHERE valid_to IS NULL").fetchone()
    crs = f"EPSG:{srid[0]}" if srid and srid[0] else None
    for layer, entity, sql in LAYERS:
        with conn.cursor(name=f"extract_{layer}") as cur:
            cur.itersize = BATCH
            cur.execute(sql)
            names = [d.name for d in cur.description or ()]
            empty = True
            while rows := cur.fetchmany(BATCH):
                records = [dict(zip(names, r, strict=True)) for r in rows]
                visible = [privacy.apply(entity, role, {k: _plain(v) for k, v in rec.items()
                                                        if k != "wkb"}) for rec in records]
                geoms = shapely.from_wkb([bytes(rec["wkb"]) for rec in records])
                empty = False
                yield layer, gpd.GeoDataFrame(pd.DataFrame(visible), geometry=geoms, crs=crs)
            if empty:
                yield layer, None


def write_gpkg(conn: psycopg.Connection, target: Path, role: Role,
               progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """The layers as ``role`` may see them; rows per layer."""
    tmp = target.with_name(f".part-{target.stem}.gpkg")     # renamed when complete
    tmp.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    for layer, df in _frames(conn, role):
        counts.setdefault(layer, 0)
        if df is None:
            continue
        pyogrio.write_dataframe(df, tmp, layer=layer, driver="GPKG", append=counts[layer] > 0)
        counts[layer] += len(df)
        if progress:
            progress(layer, counts[layer])
    tmp.replace(target)
    return counts


def write_parquet(conn: psycopg.Connection, target: Path, role: Role,
                  progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """The layers as ``role`` may see them as GeoParquet (geopandas ``to_parquet``), in a zip:
    ``<layer>/part-NNNNN.parquet``, one file per batch of rows (bounded memory; a reader takes
    a layer's folder as one dataset); rows per layer."""
    tmp = target.with_name(f".part-{target.stem}.zip")
    tmp.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    parts: dict[str, int] = {}
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for layer, df in _frames(conn, role):
            counts.setdefault(layer, 0)
            if df is None:
                continue
            buf = io.BytesIO()
            df.to_parquet(buf, index=False, compression="zstd")
            part = parts.get(layer, 0)
            zf.writestr(f"{layer}/part-{part:05d}.parquet", buf.getvalue())
            parts[layer] = part + 1
            counts[layer] += len(df)
            if progress:
                progress(layer, counts[layer])
    tmp.replace(target)
    return counts
