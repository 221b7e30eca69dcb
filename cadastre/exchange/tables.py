"""TD/T 1066 tables in a GeoPackage (GDAL via pyogrio), read as exchange rows.

Each layer named after an exchange table (KTT_ZDJBXX, KTT_FW_ZRZ, KTT_FW_C, KTT_FW_H,
ZTT_GY_QLR, QLT_FW_FDCQ_YZ, QLF_QL_* …) yields its features as rows with the fields as
upper-case attributes, streamed in Arrow batches (bounded memory). A parcel layer's polygons
become the ZD_K_103 outline rows of the XML messages; the geometry of buildings, floors and units
their ``X_GEOM``. All rows belong to one "message" (number 0): parties are linked to their
rights by unit code and certificate number (or ``X_QLID``), as within one XML message.
"""

from __future__ import annotations

import math
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyogrio
import shapely

from cadastre.exchange.reader import ExchangeFormatError, Head, Row

BATCH = 20_000


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT or (
            isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


SQLITE_MAGIC = b"SQLite format 3\x00"


def is_gpkg(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(16) == SQLITE_MAGIC


def ogr_zip_source(path: Path) -> str | None:
    """A zip holding shapefiles (SHP+DBF) or a File Geodatabase: the GDAL path to read it by
    (``/vsizip/``), else None."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
    gdb = sorted({n.split(".gdb/")[0] + ".gdb" for n in names if ".gdb/" in n})
    if gdb:
        return f"/vsizip/{{{path}}}/{gdb[0]}"    # braces: the archive has no .zip suffix
    if any(n.lower().endswith((".shp", ".dbf")) for n in names):
        folders = {str(Path(n).parent) for n in names if n.lower().endswith((".shp", ".dbf"))}
        sub = sorted(folders)[0]
        return f"/vsizip/{{{path}}}" + ("" if sub == "." else f"/{sub}")
    return None


def read_ogr(source: str) -> Iterator[Head | Row]:
    """The rows of every table layer of a GDAL data source (a zipped shapefile set or File
    Geodatabase, read through ``/vsizip/``)."""
    yield from _read_layers(source)


def read_gpkg(path: Path) -> Iterator[Head | Row]:
    """The rows of every table layer (``path`` may lack the .gpkg suffix: a stored upload)."""
    if path.suffix.lower() != ".gpkg":
        with tempfile.TemporaryDirectory() as tmp:
            link = Path(tmp) / "upload.gpkg"
            link.symlink_to(path.resolve())
            yield from read_gpkg(link)
        return
    yield from _read_layers(path)


def _read_layers(path: Path | str) -> Iterator[Head | Row]:
    try:
        layers = [name for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:   # GDAL's errors are DataSourceError, DataLayerError, …
        raise ExchangeFormatError("TABLES_UNREADABLE", "无法读取该数据库文件（GeoPackage、"
                                  "Shapefile、File GDB）/ the table file cannot be read") from exc
    for layer in layers:
        table = layer.upper()
        info = pyogrio.read_info(path, layer=layer)
        total, offset = int(info["features"]), 0
        while offset < total:    # in batches: memory bounded by the batch, not the layer
            df = pyogrio.read_dataframe(path, layer=layer, skip_features=offset,
                                        max_features=BATCH)
            geoms = df.geometry.array if "geometry" in df.columns else None
            columns = {str(n).upper(): df[n].tolist() for n in df.columns if n != "geometry"}
            for i in range(len(df)):
                attrs = {k: t for k, v in columns.items() if (t := _text(v[i])) is not None}
                yield from _rows(table, attrs, geoms[i] if geoms is not None else None,
                                 offset + i)
            offset += max(len(df), 1)


def _rows(table: str, attrs: dict[str, str], geom: Any, line: int) -> Iterator[Row]:
    if table == "KTT_ZDJBXX" and geom is not None and not geom.is_empty:
        yield Row(0, table, attrs, line)
        code = attrs.get("ZDDM", "")
        polys = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
        rings = [polys[0].exterior, *polys[0].interiors] if polys else []
        for ring_no, ring in enumerate(rings, start=1):
            for k, (x, y) in enumerate(list(ring.coords)[:-1], start=1):
                yield Row(0, "ZD_K_103", {"BDCDYH": code + "W00000000", "XH": str(k),
                                          "ZDX": str(ring_no), "XZB": repr(float(y)),
                                          "YZB": repr(float(x))}, line)
        return
    if geom is not None and not geom.is_empty and "X_GEOM" not in attrs:
        attrs["X_GEOM"] = shapely.to_wkt(geom, rounding_precision=-1)
    yield Row(0, table, attrs, line)
