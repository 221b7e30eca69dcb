"""(Re)generate the survey-reader fixtures: ``good/`` files and the ``bad/`` corpus.

Run from the repository root:  .venv/bin/python tests/data/make_fixtures.py

All data is synthetic (coordinates invented for this project).  The UTF-8 coordinate TXT is
modelled on the layout of a real-world 报盘 file (empty 带号, zone-35 prefixed eastings, a ring
left open, a stray space in a header field) but shares none of its values.  Output is
deterministic except where a library stamps the current time into a format it writes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import ezdxf
import geopandas as gpd
import pyogrio
from shapely.geometry import Point, Polygon

HERE = Path(__file__).resolve().parent
GOOD = HERE / "good"
BAD = HERE / "bad"
ZIP_DATE = (2024, 1, 1, 0, 0, 0)

# --------------------------------------------------------------------- shared geometry
# Zone 35 (CM 105°E, Guizhou-like): an L-shaped parcel of 594 m² with extra collinear points,
# turned by 0.3 rad and rounded to the millimetre (area 594 m² within a few cm²).
Z35_E0, Z35_N0 = 35_487_312.206, 2_861_204.512
Z35_TURN = 0.3
Z35_L = [
    (0, 0),
    (7.125, 0),
    (14.25, 0),
    (21.375, 0),
    (30, 0),
    (30, 6.5),
    (30, 12),
    (24.5, 12),
    (18, 12),
    (18, 18.25),
    (18, 25),
    (12.004, 25),
    (6.002, 25),
    (0, 25),
    (0, 18.75),
    (0, 12.5),
    (0, 6.25),
]
Z35_AREA = 594.0

# Zone 40 (CM 120°E, 杭州市西湖区): two adjacent 40 m × 30 m parcels, the second with a hole.
Z40_E0, Z40_N0 = 40_512_500.000, 3_350_500.000
PARCEL_A = "330106001001GB00021"
PARCEL_B = "330106001001GB00022"
BUILDING = PARCEL_A + "F0001"


def en(de: float, dn: float, e0: float = Z40_E0, n0: float = Z40_N0) -> tuple[float, float]:
    """(easting, northing) from offsets in metres."""
    return round(e0 + de, 3), round(n0 + dn, 3)


RECT_A = [en(0, 0), en(40, 0), en(40, 30), en(0, 30)]
RECT_B = [en(40, 0), en(80, 0), en(80, 30), en(40, 30)]
HOLE_B = [en(55, 10), en(65, 10), en(65, 20), en(55, 20)]


def fmt3(v: float) -> str:
    return f"{v:.3f}"


def write_zip(path: Path, members: list[tuple[str, bytes]], gbk_names: bool = False) -> None:
    """A deterministic zip; ``gbk_names`` stores names in GBK without the UTF-8 flag (Windows)."""

    class GbkInfo(zipfile.ZipInfo):
        def _encodeFilenameFlags(self):  # noqa: N802 - zipfile's private hook
            return self.filename.encode("gbk"), self.flag_bits & ~0x800

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            info = (GbkInfo if gbk_names else zipfile.ZipInfo)(name, ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)


def fix_dbf_date(dbf: Path) -> None:
    data = bytearray(dbf.read_bytes())
    data[1:4] = bytes([124, 1, 1])  # 2024-01-01
    dbf.write_bytes(bytes(data))


def shapefile_members(
    gdf: gpd.GeoDataFrame,
    stem: str,
    encoding: str | None,
    keep_cpg: bool = True,
    zero_ldid: bool = False,
) -> list[tuple[str, bytes]]:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "layer.shp"
        pyogrio.write_dataframe(gdf, target, encoding=encoding)
        fix_dbf_date(target.with_suffix(".dbf"))
        if zero_ldid:
            dbf = bytearray(target.with_suffix(".dbf").read_bytes())
            dbf[29] = 0
            target.with_suffix(".dbf").write_bytes(bytes(dbf))
        out = []
        for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            part = target.with_suffix(ext)
            if part.exists() and (ext != ".cpg" or keep_cpg):
                out.append((stem + ext, part.read_bytes()))
        return out


# --------------------------------------------------------------------- coordinate TXT
def z35_points() -> list[tuple[float, float]]:
    c, s = math.cos(Z35_TURN), math.sin(Z35_TURN)
    return [
        (round(Z35_E0 + c * de - s * dn, 3), round(Z35_N0 + s * de + c * dn, 3)) for de, dn in Z35_L
    ]


def txt_zone35_utf8() -> str:
    lines = [
        "[属性描述]",
        "投影类型=高斯克吕格",
        "坐标系=2000国家大地坐标系",
        "分带=3度带",
        "带号=",
        "[地块坐标]",
        f"{len(Z35_L)},,020417, 47,,,地块1,,@",
    ]
    for i, (e, n) in enumerate(z35_points(), start=1):
        lines.append(f"J{i},1,{fmt3(n)},{fmt3(e)}")
    return "\n".join(lines) + "\n"  # ring left open on purpose (last point != J1)


def txt_header(zone: str = "40", system: str = "2000国家大地坐标系") -> list[str]:
    return [
        "[属性描述]",
        "格式版本号=1.01版本",
        "数据产生单位=西湖区不动产登记测绘队",
        "数据产生日期=2024-05-20",
        f"坐标系={system}",
        "几度分带=3",
        "投影类型=高斯克吕格",
        "计量单位=米",
        f"带号={zone}",
        "精度=0.001",
        "转换参数=,,,,,,",
        "[地块坐标]",
    ]


def ring_lines(names: list[str], pts: list[tuple[float, float]], ring: int) -> list[str]:
    rows = [f"{n},{ring},{fmt3(n_)},{fmt3(e)}" for n, (e, n_) in zip(names, pts, strict=True)]
    return rows + [rows[0]]


def txt_zone40_gbk() -> str:
    lines = txt_header()
    lines.append(f"5,0.1200,{PARCEL_A},文三路地块,面,H50G056078,商服用地,0501,@")
    lines += ring_lines(["J1", "J2", "J3", "J4"], RECT_A, 1)
    lines.append(f"10,0.1100,{PARCEL_B},学院路地块,面,H50G056078,住宅用地,0701,@")
    lines += ring_lines(["J2", "J5", "J6", "J3"], RECT_B, 1)
    lines += ring_lines(["J7", "J8", "J9", "J10"], HOLE_B, 2)
    return "\r\n".join(lines) + "\r\n"


# --------------------------------------------------------------------- CSV
def csv_two_parcels() -> str:
    rows = ["宗地代码,界址点号,X坐标(北),Y坐标(东)"]
    for code, names, pts in (
        (PARCEL_A, ["J1", "J2", "J3", "J4"], RECT_A),
        (PARCEL_B, ["J2", "J5", "J6", "J3"], RECT_B),
    ):
        rows += [f"{code},{n},{fmt3(nn)},{fmt3(e)}" for n, (e, nn) in zip(names, pts, strict=True)]
    return "\r\n".join(rows) + "\r\n"


def csv_plain_english() -> str:
    rows = ["point,northing,easting"]
    for i, (e, n) in enumerate(RECT_A, start=1):
        rows.append(f"P{i},{fmt3(n)},{fmt3(e - 40_000_000)}")  # CM 120°E without zone prefix
    return "\n".join(rows) + "\n"


# --------------------------------------------------------------------- OGR formats
def parcels_gdf() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "ZDDM": [PARCEL_A, PARCEL_B],
            "ZL": ["西湖区文三路100号", "西湖区学院路28号"],
            "ZDMJ": [1200.0, 1100.0],
            "MJDW": ["1", "1"],
            "YT": ["0501", "0701"],
            "TFH": ["H50G056078", "H50G056078"],
            "QLLX": ["3", "3"],
        },
        geometry=[Polygon(RECT_A), Polygon(RECT_B, [HOLE_B])],
        crs=4528,
    )


def points_gdf() -> gpd.GeoDataFrame:
    names = ["J1", "J2", "J3", "J4", "J5", "J6"]
    pts = [RECT_A[0], RECT_A[1], RECT_A[2], RECT_A[3], RECT_B[1], RECT_B[2]]
    return gpd.GeoDataFrame(
        {
            "JZDH": names,
            "ZDZHDM": [PARCEL_A] * 4 + [PARCEL_B] * 2,
            "XZBZ": [p[1] for p in pts],
            "YZBZ": [p[0] for p in pts],
        },
        geometry=[Point(p) for p in pts],
        crs=4528,
    )


def building_layers() -> dict[str, gpd.GeoDataFrame]:
    foot = Polygon([en(5, 5), en(25, 5), en(25, 17), en(5, 17)])
    west = Polygon([en(5, 5), en(15, 5), en(15, 17), en(5, 17)])
    east = Polygon([en(15, 5), en(25, 5), en(25, 17), en(15, 17)])
    zrz = gpd.GeoDataFrame(
        {"ZRZH": [BUILDING], "JZWMC": ["文三路1幢"], "DSCS": [2], "DXCS": [0], "JZWGD": [6.6]},
        geometry=[foot],
        crs=4528,
    )
    floors = gpd.GeoDataFrame(
        {"ZRZH": [BUILDING] * 2, "CH": [1, 2], "CG": [3.3, 3.3], "base_elevation": [0.0, 3.3]},
        geometry=[foot, foot],
        crs=4528,
    )
    codes, rooms, geoms, ch, base = [], [], [], [], []
    for floor in (1, 2):
        for k, g in enumerate((west, east), start=1):
            codes.append(f"{BUILDING}{floor:02d}{k:02d}")
            rooms.append(f"{floor}0{k}")
            geoms.append(g)
            ch.append(floor)
            base.append(3.3 * (floor - 1))
    units = gpd.GeoDataFrame(
        {
            "BDCDYH": codes,
            "ZRZH": [BUILDING] * 4,
            "CH": ch,
            "SHBW": rooms,
            "FWYT1": ["住宅"] * 4,
            "SCJZMJ": [118.5] * 4,
            "SCTNJZMJ": [100.2] * 4,
            "SCFTJZMJ": [18.3] * 4,
            "base_elevation": base,
            "height": [3.3] * 4,
        },
        geometry=geoms,
        crs=4528,
    )
    return {"ZRZ": zrz, "C": floors, "H": units}


def write_ogr_fixtures() -> None:
    parcels, points = parcels_gdf(), points_gdf()
    write_zip(
        GOOD / "parcels_shp.zip",
        shapefile_members(parcels, "ZDJBXX", "GBK") + shapefile_members(points, "JZD", "UTF-8"),
    )
    write_zip(
        GOOD / "parcels_gbk_nocpg.zip",
        shapefile_members(parcels, "成果/宗地", "GBK", keep_cpg=False, zero_ldid=True),
        gbk_names=True,
    )
    gpkg = GOOD / "survey.gpkg"
    gpkg.unlink(missing_ok=True)
    pyogrio.write_dataframe(parcels, gpkg, layer="ZDJBXX")
    pyogrio.write_dataframe(points, gpkg, layer="JZD", append=True)
    for name, layer in building_layers().items():
        pyogrio.write_dataframe(layer, gpkg, layer=name, append=True)
    wgs = parcels.to_crs(4326)
    wgs.geometry = wgs.geometry.set_precision(1e-9)
    wgs = wgs.rename(
        columns={"ZDDM": "parcel_code", "ZL": "seat", "ZDMJ": "declared_area", "YT": "land_use"}
    ).drop(columns=["MJDW", "TFH", "QLLX"])
    (GOOD / "parcels_wgs84.geojson").write_text(
        wgs.to_json(ensure_ascii=False, drop_id=True), encoding="utf-8"
    )
    fgb = GOOD / "parcels.fgb"
    fgb.unlink(missing_ok=True)
    pyogrio.write_dataframe(parcels, fgb, layer="parcels")


def floorplan_geojson() -> dict:
    features = []
    cells = [(0, 0, 12, 10), (12, 0, 24, 10)]
    for floor, base in ((-1, -3.3), (1, 0.0), (2, 3.0), (3, 6.0)):
        for k, (x0, y0, x1, y1) in enumerate(cells, start=1):
            ring = [
                en(x, y, 40_513_000.0, 3_351_000.0)
                for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))
            ]
            unit_no = (90 if floor < 0 else floor) * 100 + k
            features.append(
                {
                    "type": "Feature",
                    "properties": {
                        "floor_no": floor,
                        "base_elevation": base,
                        "storey_height": 3.3 if floor < 0 else 3.0,
                        "unit_code": f"330106001001GB00023F0001{unit_no:04d}",
                        "room_no": f"{'B' if floor < 0 else ''}{abs(floor)}0{k}",
                        "use": "车库" if floor < 0 else "住宅",
                        "building_area": 120.0,
                        "inner_area": 102.5,
                        "shared_area": 17.5,
                    },
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            )
    return {
        "type": "FeatureCollection",
        "name": "floorplan",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4528"}},
        "features": features,
    }


def main() -> None:
    GOOD.mkdir(parents=True, exist_ok=True)  # files are overwritten (building.ifc kept if
    shutil.rmtree(BAD, ignore_errors=True)  # ifcopenshell is missing); bad/ is rebuilt whole
    BAD.mkdir(parents=True)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2024-01-01T00:00:00Z"})
    ezdxf.options.write_fixed_meta_data_for_testing = True  # no timestamps/GUIDs in DXF
    warnings.filterwarnings("ignore", message="'crs' was not provided")
    (GOOD / "txt_utf8_zone35.txt").write_bytes(txt_zone35_utf8().encode("utf-8"))
    (GOOD / "txt_gbk_zone40.txt").write_bytes(txt_zone40_gbk().encode("gbk"))
    (GOOD / "boundary_points.csv").write_bytes(csv_two_parcels().encode("utf-8-sig"))
    (GOOD / "points_plain_cm120.csv").write_text(csv_plain_english(), encoding="utf-8")
    write_ogr_fixtures()
    (GOOD / "floorplan.geojson").write_text(
        json.dumps(floorplan_geojson(), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    sys.path.insert(0, str(HERE))
    import fixtures_bad
    import fixtures_cad

    fixtures_cad.write_all(GOOD)
    fixtures_bad.write_all(BAD)
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(
        f"good: {len(list(GOOD.iterdir()))} files, bad: {len(list(BAD.iterdir())) - 1} files, "
        f"tests/data total {total / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != "0":  # ezdxf orders some objects by hash
        os.execve(
            sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"}
        )
    main()
