"""Bad-corpus cases for containers and binary formats: zip, Shapefile, GeoPackage, GeoJSON,
FlatGeobuf, DXF and IFC.  Registered into fixtures_bad.CASES by ``register_containers``.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ezdxf
import geopandas as gpd
import make_fixtures as mf
import pyogrio
from shapely.geometry import Point, Polygon


def _zip_bytes(members: list[tuple[str, bytes]], mode: int = 0o644) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, mf.ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _encrypted_flag(data: bytes) -> bytes:
    """Set the 'encrypted' flag bit in every local and central header."""
    out = bytearray(data)
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (pos := out.find(sig, start)) >= 0:
            out[pos + offset] |= 0x01
            start = pos + 4
    return bytes(out)


def _gpkg_bytes(layers: dict[str, gpd.GeoDataFrame]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.gpkg"
        for i, (name, gdf) in enumerate(layers.items()):
            pyogrio.write_dataframe(gdf, path, layer=name, append=i > 0)
        return path.read_bytes()


def _fgb_bytes(gdf: gpd.GeoDataFrame) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "parcels.fgb"
        pyogrio.write_dataframe(gdf, path)
        return path.read_bytes()


def _geojson(features: list[dict[str, Any]], epsg: int | None = 4528) -> str:
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if epsg:
        doc["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}}
    return json.dumps(doc, ensure_ascii=False)


def _parcel_feature(code: str, ring: list[tuple[float, float]]) -> dict[str, Any]:
    coords = [list(p) for p in ring + ring[:1]]
    return {
        "type": "Feature",
        "properties": {"ZDDM": code},
        "geometry": {"type": "Polygon", "coordinates": [coords]},
    }


def _dxf_text(build: Callable[[Any], None]) -> bytes:
    doc = ezdxf.new("R2010")
    for name in ("JZX", "JZD", "ROAD", "TEXT"):
        doc.layers.add(name)
    build(doc.modelspace())
    stream = io.StringIO()
    doc.write(stream)
    return stream.getvalue().encode("utf-8")


def _rect_dxf(e0: float, n0: float, layer: str = "JZX", swap: bool = False) -> Callable:
    def build(msp: Any) -> None:
        pts = [(e0, n0), (e0 + 30, n0), (e0 + 30, n0 + 20), (e0, n0 + 20)]
        if swap:
            pts = [(n, e) for e, n in pts]
        msp.add_lwpolyline(pts, close=True, dxfattribs={"layer": layer})

    return build


def register_containers(case: Callable, raw: Callable) -> None:
    parcels = mf.parcels_gdf()
    shp = mf.shapefile_members(parcels, "ZDJBXX", "GBK")
    good_zip = _zip_bytes(shp)
    raw(
        "zip_truncated.zip",
        good_zip[: len(good_zip) // 2],
        "half of a zipped Shapefile",
        error="FILE_TRUNCATED",
    )
    raw(
        "zip_slip.zip",
        _zip_bytes([("../../evil/ZDJBXX.shp", b"x")]),
        "a '..' member path",
        error="ZIP_UNSAFE_PATH",
    )
    raw(
        "zip_absolute.zip",
        _zip_bytes([("/etc/cron.d/evil", b"* * * * * root true\n")]),
        "an absolute member path",
        error="ZIP_UNSAFE_PATH",
    )
    raw(
        "zip_symlink.zip",
        _zip_bytes([("ZDJBXX.shp", b"/etc/passwd")], mode=0o120777),
        "a symbolic link member",
        error="ZIP_UNSAFE_PATH",
    )
    raw(
        "zip_bomb.zip",
        _zip_bytes([("ZDJBXX.dbf", bytes(24 * 1024 * 1024))]),
        "24 MiB of zeros compressed ~1000:1",
        error="ZIP_BOMB",
    )
    raw(
        "zip_too_many_files.zip",
        _zip_bytes([(f"f{i:03d}.txt", b"x") for i in range(101)]),
        "101 members",
        error="ZIP_TOO_MANY_FILES",
    )
    raw(
        "zip_nested.zip",
        _zip_bytes([("inner.zip", good_zip)]),
        "a zip inside the zip",
        error="ZIP_NESTED",
    )
    raw(
        "zip_nested_renamed.zip",
        _zip_bytes([("data.bin", good_zip)]),
        "a zip inside the zip under another name",
        error="ZIP_NESTED",
    )
    raw(
        "zip_encrypted.zip",
        _encrypted_flag(good_zip),
        "members flagged as encrypted",
        error="ZIP_ENCRYPTED",
    )
    raw(
        "zip_missing_dbf.zip",
        _zip_bytes([m for m in shp if not m[0].endswith(".dbf")]),
        "a Shapefile without its .dbf",
        error="SHP_MISSING_PART",
    )
    jzd_4527 = mf.points_gdf().to_crs(4527)
    raw(
        "zip_mixed_crs.zip",
        _zip_bytes(shp + mf.shapefile_members(jzd_4527, "JZD", "UTF-8")),
        "ZDJBXX in EPSG:4528 and JZD in EPSG:4527",
        error="CRS_MIXED",
    )
    raw(
        "zip_no_survey_file.zip",
        _zip_bytes([("说明.txt", "说明文件".encode()), ("photo.png", b"\x89PNG\r\n\x1a\n")]),
        "a readme and a picture only",
        error="ZIP_NO_SURVEY_FILE",
    )
    plain = parcels.copy()
    plain.geometry = plain.geometry.translate(xoff=-40_000_000)
    raw(
        "zip_no_prj_plain.zip",
        _zip_bytes(
            [
                m
                for m in mf.shapefile_members(
                    plain.set_crs(None, allow_override=True), "ZDJBXX", "UTF-8"
                )
            ]
        ),
        "no .prj and eastings without zone prefix",
        error="CRS_UNKNOWN",
    )
    raw(
        "zip_geographic_no_srid.zip",
        _zip_bytes(mf.shapefile_members(parcels.to_crs(4490), "ZDJBXX", "UTF-8")),
        "lon/lat (EPSG:4490) without an srid to project to",
        error="CRS_UNKNOWN",
    )
    dup = parcels.copy()
    dup["ZDDM"] = [mf.PARCEL_A, mf.PARCEL_A]
    raw(
        "zip_duplicate_codes.zip",
        _zip_bytes(mf.shapefile_members(dup, "ZDJBXX", "GBK")),
        "two parcels with one 宗地代码",
        issue="DUPLICATE_PARCEL_CODE",
    )
    raw(
        "shp_alone.shp",
        dict(shp)["ZDJBXX.shp"],
        "a bare .shp without .shx/.dbf",
        error="SHP_MISSING_PART",
    )

    gpkg = _gpkg_bytes({"ZDJBXX": parcels})
    raw(
        "gpkg_truncated.gpkg",
        gpkg[: len(gpkg) - 4096],
        "a GeoPackage missing its last page",
        error="FILE_TRUNCATED",
    )
    roads = gpd.GeoDataFrame({"width": [7.5]}, geometry=[Point(mf.RECT_A[0]).buffer(3)], crs=4528)
    raw(
        "gpkg_unknown_layers.gpkg",
        _gpkg_bytes({"roads": roads}),
        "one layer of polygons whose kind cannot be told: its fields are listed",
        error="FIELDS_NOT_RECOGNISED",
    )
    mixed = gpd.GeoDataFrame(
        {"ZDDM": [mf.PARCEL_A, mf.PARCEL_B]},
        geometry=[Polygon(mf.RECT_A), Point(mf.RECT_B[0])],
        crs=4528,
    )
    raw(
        "gpkg_point_parcel.gpkg",
        _gpkg_bytes({"ZDJBXX": mixed}),
        "a parcel stored as a point",
        issue="GEOMETRY_TYPE_MISMATCH",
    )

    good_feature = _parcel_feature(mf.PARCEL_A, mf.RECT_A)
    nan = _geojson([good_feature]).replace(f"{mf.RECT_A[1][0]}", "NaN", 1)
    raw("geojson_nan.geojson", nan.encode(), "NaN coordinate", error="COORDINATE_NOT_FINITE")
    full = _geojson([good_feature, _parcel_feature(mf.PARCEL_B, mf.RECT_B)])
    raw(
        "geojson_truncated.geojson",
        full[: len(full) // 2].encode(),
        "cut in the middle",
        error="FILE_TRUNCATED",
    )
    raw(
        "geojson_huge.geojson",
        _geojson([_parcel_feature(mf.PARCEL_A, [(e * 1e12, n) for e, n in mf.RECT_A])]).encode(),
        "eastings of 4e19 m",
        error="COORDINATE_OUT_OF_RANGE",
    )
    raw(
        "geojson_wrong_zone.geojson",
        _geojson(
            [_parcel_feature(mf.PARCEL_A, [(e - 1_000_000, n) for e, n in mf.RECT_A])]
        ).encode(),
        "declares EPSG:4528 (zone 40) but holds zone-39 eastings",
        error="COORDINATE_OUT_OF_RANGE",
    )
    raw(
        "geojson_duplicate_codes.geojson",
        _geojson([good_feature, _parcel_feature(mf.PARCEL_A, mf.RECT_B)]).encode(),
        "one 宗地代码 on two parcels",
        issue="DUPLICATE_PARCEL_CODE",
    )
    plan = mf.floorplan_geojson()
    plan["features"][0]["properties"]["unit_code"] = "330106001001GB00023F00000101"
    raw(
        "geojson_invalid_unit_code.geojson",
        json.dumps(plan, ensure_ascii=False).encode(),
        "幢号 0000 in a unit code",
        issue="UNIT_CODE_INVALID",
    )
    lonlat = json.loads(parcels.to_crs(4326).to_json())
    raw(
        "geojson_lonlat_no_srid.geojson",
        json.dumps(lonlat).encode(),
        "RFC 7946 lon/lat without an srid to project to",
        error="CRS_UNKNOWN",
    )
    raw(
        "geojson_named.shp",
        _geojson([good_feature]).encode(),
        "valid GeoJSON uploaded with a .shp name",
        issue="EXTENSION_MISMATCH",
    )

    fgb = _fgb_bytes(parcels)
    raw(
        "fgb_truncated.fgb", fgb[: len(fgb) - 200], "a FlatGeobuf cut short", error="FILE_TRUNCATED"
    )

    def no_boundary(msp: Any) -> None:
        msp.add_line((40_512_500, 3_350_500), (40_512_600, 3_350_500), dxfattribs={"layer": "ROAD"})
        msp.add_text("道路", dxfattribs={"layer": "TEXT", "insert": (40_512_550, 3_350_502)})

    raw(
        "dxf_no_boundary_layer.dxf",
        _dxf_text(no_boundary),
        "roads and text only",
        error="DXF_NO_BOUNDARY_LAYER",
    )
    good_dxf = _dxf_text(_rect_dxf(40_512_500, 3_350_500))
    raw(
        "dxf_truncated.dxf",
        good_dxf[: int(len(good_dxf) * 0.7)],
        "cut before EOF",
        error="FILE_TRUNCATED",
    )
    raw("dxf_named.txt", good_dxf, "a valid DXF uploaded as .txt", issue="EXTENSION_MISMATCH")
    raw(
        "dxf_plain_no_srid.dxf",
        _dxf_text(_rect_dxf(512_500, 3_350_500)),
        "eastings without zone prefix and no srid",
        error="CRS_UNKNOWN",
    )

    def two_zones(msp: Any) -> None:
        _rect_dxf(40_512_500, 3_350_500)(msp)
        _rect_dxf(39_512_500, 3_350_500)(msp)

    raw(
        "dxf_mixed_zones.dxf",
        _dxf_text(two_zones),
        "parcels in zone 40 and zone 39",
        error="CRS_MIXED",
    )
    raw(
        "dxf_swapped_axes.dxf",
        _dxf_text(_rect_dxf(40_512_500, 3_350_500, swap=True)),
        "x holds northings, y eastings",
        error="AXES_SWAPPED",
    )
    raw(
        "dxf_local_coords.dxf",
        _dxf_text(_rect_dxf(100, 200)),
        "local drawing coordinates with srid=4528",
        error="COORDINATE_OUT_OF_RANGE",
        srid=4528,
    )

    ifc = mf.GOOD / "building.ifc"
    ifc_text = (
        ifc.read_bytes()
        if ifc.exists()
        else (b"ISO-10303-21;\nHEADER;\n" + b"FILE_SCHEMA(('IFC4'));\n" * 40)
    )
    raw(
        "ifc_truncated.ifc",
        ifc_text[: len(ifc_text) // 2],
        "an IFC cut in half",
        error="FILE_TRUNCATED",
    )
