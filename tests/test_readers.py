"""Survey-file readers on real files in real formats (tests/data/good, made by
tests/data/make_fixtures.py).  No database is involved: the readers only build in-memory data.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import shapely
from pyproj import CRS
from shapely.geometry import MultiPolygon, Point, Polygon

from cadastre.errors import InvalidInput
from cadastre.ingest import ReaderOptions, SurveyDataset, SurveyFormatError, read_survey
from cadastre.ingest.crsinfo import epsg_from_crs
from cadastre.ingest.dxf_floors import parse_floor_layer
from cadastre.ingest.fields import parse_floor_label

GOOD = Path(__file__).parent / "data" / "good"
MM = 0.0005  # half a millimetre: "equal to the mm"
PARCEL_A, PARCEL_B = "330106001001GB00021", "330106001001GB00022"
SRID_ARGS = {"parcels_wgs84.geojson": {"srid": 4528}, "points_plain_cm120.csv": {"srid": 4549}}


def read(name: str, **kwargs: object) -> SurveyDataset:
    return read_survey(GOOD / name, **kwargs)  # type: ignore[arg-type]


def by_code(ds: SurveyDataset, key: str = "parcel_code") -> dict[str, object]:
    return {f.properties[key]: f for f in ds.features if f.properties.get(key)}


def codes(ds: SurveyDataset) -> list[str]:
    return ds.issue_codes()


def close_to(a: tuple[float, float], b: tuple[float, float], tol: float = MM) -> bool:
    return abs(a[0] - b[0]) <= tol and abs(a[1] - b[1]) <= tol


# ------------------------------------------------------------------------------------ common
@pytest.mark.parametrize("name", sorted(p.name for p in GOOD.iterdir()))
def test_every_fixture_gives_the_common_structure(name: str) -> None:
    if name.endswith(".ifc"):
        pytest.importorskip("ifcopenshell")
    ds = read(name, **SRID_ARGS.get(name, {}))
    assert ds.srid is not None and CRS.from_epsg(ds.srid).is_projected
    assert ds.features
    for f in ds.features:
        assert f.kind in ("parcel", "building", "floor", "unit", "boundary_point")
        if f.kind == "boundary_point":
            assert isinstance(f.geometry, Point)
        else:
            assert isinstance(f.geometry, Polygon | MultiPolygon) and f.geometry.is_valid
        assert "raw" in f.properties and f.ref
    for issue in ds.issues:
        assert issue.severity in ("error", "warning") and " / " in issue.message
        assert issue.feature is None or 0 <= issue.feature < len(ds.features)
    assert ds.metadata["filename"] == name


def test_format_error_is_invalid_input_with_stable_code(tmp_path: Path) -> None:
    empty = tmp_path / "x.txt"
    empty.write_bytes(b"")
    with pytest.raises(SurveyFormatError) as err:
        read_survey(empty)
    assert isinstance(err.value, InvalidInput)
    assert err.value.code == "FILE_EMPTY" and " / " in err.value.message


def test_size_limit() -> None:
    with pytest.raises(SurveyFormatError) as err:
        read("txt_gbk_zone40.txt", max_bytes=500)
    assert err.value.code == "FILE_TOO_LARGE"
    with pytest.raises(SurveyFormatError):
        read("txt_gbk_zone40.txt", options=ReaderOptions(max_bytes=10))


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("txt_gbk_zone40.txt", "cn_coord_txt"),
        ("cadastre_cass.dxf", "dxf"),
        ("survey.gpkg", "gpkg"),
        ("parcels.fgb", "flatgeobuf"),
        ("parcels_shp.zip", "shapefile"),
        ("floorplan.geojson", "geojson"),
    ],
)
def test_content_decides_not_the_extension(tmp_path: Path, name: str, fmt: str) -> None:
    renamed = tmp_path / "upload.bin"
    shutil.copy(GOOD / name, renamed)
    ds = read_survey(renamed)
    assert ds.format == fmt
    assert "EXTENSION_MISMATCH" in codes(ds)
    # the original name given separately is what counts
    assert "EXTENSION_MISMATCH" not in codes(read_survey(renamed, filename=name))


def test_temporary_folders_are_removed() -> None:
    before = set(Path(tempfile.gettempdir()).glob("survey-*"))
    read("parcels_shp.zip")
    read("floorplan.geojson")
    assert set(Path(tempfile.gettempdir()).glob("survey-*")) == before


# ------------------------------------------------------------------------- coordinate TXT
def test_txt_real_world_layout_utf8_zone35() -> None:
    ds = read("txt_utf8_zone35.txt")
    assert (ds.format, ds.srid) == ("cn_coord_txt", 4523)  # zone 35 from the easting prefix
    assert ds.metadata["encoding"] == "utf-8"
    assert ds.metadata["zone"] == {"zone": 35, "width": 3, "prefixed": True, "datum": "CGCS2000"}
    (parcel,) = ds.of_kind("parcel")
    assert parcel.properties["name"] == "47"  # stray space in the header field
    assert parcel.properties["parcel_no"] == "020417"
    assert parcel.properties["declared_area"] is None
    assert "parcel_code" not in parcel.properties
    assert parcel.ref == "47 (parcel 1, line 7)"
    ring = list(parcel.geometry.exterior.coords)
    assert len(ring) == 18 and ring[0] == ring[-1]  # 17 points, closed by the reader
    assert any(close_to(c, (35487312.206, 2861204.512)) for c in ring)  # x = easting
    assert parcel.geometry.area == pytest.approx(594.0, abs=0.05)
    warnings = {i.code: i for i in ds.issues}
    assert warnings["RING_CLOSED"].feature == 0 and warnings["RING_CLOSED"].severity == "warning"
    assert close_to(warnings["RING_CLOSED"].location, (35487312.206, 2861204.512))
    assert "ZONE_INFERRED" in warnings
    points = ds.of_kind("boundary_point")
    assert [p.properties["point_no"] for p in points[:3]] == ["J1", "J2", "J3"]
    assert points[1].properties["point_seq"] == 2 and points[1].properties["parcel_ref"] == 0
    assert close_to((points[1].geometry.x, points[1].geometry.y), (35487319.013, 2861206.618))


def test_txt_gbk_two_parcels_with_hole_zone40() -> None:
    ds = read("txt_gbk_zone40.txt")
    assert (ds.srid, ds.metadata["encoding"], ds.issues) == (4528, "gb18030", [])
    assert ds.metadata["attributes"]["数据产生单位"] == "西湖区不动产登记测绘队"
    parcels = by_code(ds)
    a, b = parcels[PARCEL_A], parcels[PARCEL_B]
    assert a.properties["declared_area"] == pytest.approx(1200.0)  # 0.1200 公顷
    assert b.properties["declared_area"] == pytest.approx(1100.0)
    assert (a.properties["name"], a.properties["usage"], a.properties["land_use"]) == (
        "文三路地块",
        "商服用地",
        "0501",
    )
    assert a.properties["map_sheet"] == "H50G056078"
    assert a.geometry.bounds == (40512500.0, 3350500.0, 40512540.0, 3350530.0)
    assert len(b.geometry.interiors) == 1 and b.geometry.area == pytest.approx(1100.0)
    assert shapely.Polygon(b.geometry.interiors[0]).bounds == (
        40512555.0,
        3350510.0,
        40512565.0,
        3350520.0,
    )
    points = ds.of_kind("boundary_point")
    assert len(points) == 12
    hole_points = [p for p in points if p.properties["ring_no"] == 2]
    assert [p.properties["point_no"] for p in hole_points] == ["J7", "J8", "J9", "J10"]
    assert {p.properties["parcel_ref"] for p in hole_points} == {PARCEL_B}


def test_txt_projected_to_requested_srid() -> None:
    ds = read("txt_gbk_zone40.txt", srid=4549)  # same zone, no prefix: E - 40 000 000
    assert ds.srid == 4549 and "CRS_REPROJECTED" in codes(ds)
    a = by_code(ds)[PARCEL_A]
    assert close_to(a.geometry.bounds[:2], (512500.0, 3350500.0))


def _txt(
    tmp_path: Path,
    header: dict[str, str],
    rows: list[str],
    encoding: str = "utf-8",
    name: str = "t.txt",
) -> Path:
    lines = ["[属性描述]", *(f"{k}={v}" for k, v in header.items()), "[地块坐标]", *rows]
    path = tmp_path / name
    path.write_bytes("\r\n".join(lines).encode(encoding))
    return path


SQUARE = [
    "J1,1,3350500.000,{e0}",
    "J2,1,3350500.000,{e1}",
    "J3,1,3350520.000,{e1}",
    "J4,1,3350520.000,{e0}",
]


def test_txt_plain_eastings_need_zone_or_srid(tmp_path: Path) -> None:
    rows = ["4,0.04,1,甲,,,,,@"] + [r.format(e0="512500.000", e1="512520.000") for r in SQUARE]
    path = _txt(tmp_path, {"坐标系": "2000国家大地坐标系", "带号": "40"}, rows)
    assert read_survey(path).srid == 4549  # 带号 40, plain eastings -> CM 120°E
    path = _txt(tmp_path, {"坐标系": "2000国家大地坐标系", "带号": ""}, rows)
    assert read_survey(path, srid=4549).srid == 4549
    with pytest.raises(SurveyFormatError) as err:
        read_survey(path)
    assert err.value.code == "CRS_UNKNOWN"


@pytest.mark.parametrize(
    ("system", "epsg"), [("西安80", 2364), ("1954北京坐标系", 2416), ("2000国家大地坐标系", 4528)]
)
def test_txt_datums(tmp_path: Path, system: str, epsg: int) -> None:
    rows = ["4,,1,甲,,,,,@"] + [r.format(e0="40512500.000", e1="40512520.000") for r in SQUARE]
    path = _txt(tmp_path, {"坐标系": system, "几度分带": "3", "带号": "40"}, rows, "utf-8-sig")
    ds = read_survey(path)
    assert ds.srid == epsg and ds.of_kind("parcel")[0].geometry.area == pytest.approx(400.0)
    assert "RING_CLOSED" in codes(ds)


def test_txt_multipart_and_extra_header_fields(tmp_path: Path) -> None:
    rows = ["8,0.08,1,甲,面,,,0701,扩展1,扩展2,@"]
    rows += [r.format(e0="40512500.000", e1="40512520.000") for r in SQUARE]
    rows += [r.replace(",1,", ",2,").format(e0="40512600.000", e1="40512620.000") for r in SQUARE]
    ds = read_survey(_txt(tmp_path, {"带号": "40", "坐标系": "2000国家大地坐标系"}, rows))
    parcel = ds.of_kind("parcel")[0]
    assert isinstance(parcel.geometry, MultiPolygon) and parcel.geometry.area == 800.0
    assert parcel.properties["raw"]["extra"] == ["扩展1", "扩展2"]


# ------------------------------------------------------------------------------------ CSV
def test_csv_two_parcels_chinese_headers() -> None:
    ds = read("boundary_points.csv")
    assert (ds.format, ds.srid) == ("csv_points", 4528) and "CRS_ASSUMED" in codes(ds)
    parcels = by_code(ds)
    assert set(parcels) == {PARCEL_A, PARCEL_B}
    assert parcels[PARCEL_B].geometry.area == pytest.approx(1200.0)
    points = ds.of_kind("boundary_point")
    assert len(points) == 8 and points[0].properties["parcel_ref"] == PARCEL_A
    assert (points[0].geometry.x, points[0].geometry.y) == (40512500.0, 3350500.0)


def test_csv_english_headers_plain_eastings() -> None:
    ds = read("points_plain_cm120.csv", srid=4549)
    (parcel,) = ds.of_kind("parcel")
    assert parcel.geometry.bounds == (512500.0, 3350500.0, 512540.0, 3350530.0)
    assert [p.properties["point_no"] for p in ds.of_kind("boundary_point")][:2] == ["P1", "P2"]
    with pytest.raises(SurveyFormatError) as err:
        read("points_plain_cm120.csv")
    assert err.value.code == "CRS_UNKNOWN"


def test_csv_cass_dat_is_east_first(tmp_path: Path) -> None:
    dat = tmp_path / "jzd.dat"
    dat.write_text(
        "1,,40512500.000,3350500.000,12.1\n2,,40512540.000,3350500.000,12.3\n"
        "3,,40512540.000,3350530.000,12.2\n4,,40512500.000,3350530.000,12.0\n"
    )
    parcel = read_survey(dat).of_kind("parcel")[0]
    assert parcel.geometry.bounds == (40512500.0, 3350500.0, 40512540.0, 3350530.0)


# ---------------------------------------------------------------------------- OGR formats
def test_zipped_shapefile_with_cpg_gbk() -> None:
    ds = read("parcels_shp.zip")
    assert (ds.format, ds.srid, ds.metadata["container"]) == ("shapefile", 4528, "zip")
    a, b = by_code(ds)[PARCEL_A], by_code(ds)[PARCEL_B]
    assert a.properties["seat"] == "西湖区文三路100号"
    assert (a.properties["declared_area"], a.properties["land_use"]) == (1200.0, "0501")
    assert a.properties["raw"]["QLLX"] == "3"
    assert len(b.geometry.interiors) == 1 and b.geometry.area == pytest.approx(1100.0)
    points = ds.of_kind("boundary_point")
    assert [p.properties["point_no"] for p in points] == ["J1", "J2", "J3", "J4", "J5", "J6"]
    assert points[4].properties["parcel_ref"] == PARCEL_B


def test_zipped_shapefile_gbk_without_cpg_and_gbk_member_names() -> None:
    ds = read("parcels_gbk_nocpg.zip")
    assert "成果/宗地.shp" in ds.metadata["members"]  # GBK-encoded name in the zip header
    assert by_code(ds)[PARCEL_B].properties["seat"] == "西湖区学院路28号"


def test_geopackage_all_kinds() -> None:
    ds = read("survey.gpkg")
    kinds = {
        k: len(ds.of_kind(k)) for k in ("parcel", "boundary_point", "building", "floor", "unit")
    }
    assert kinds == {"parcel": 2, "boundary_point": 6, "building": 1, "floor": 2, "unit": 4}
    (building,) = ds.of_kind("building")
    assert building.properties["building_code"] == PARCEL_A + "F0001"
    assert (building.properties["floors_above"], building.properties["height"]) == (2, 6.6)
    floors = sorted(ds.of_kind("floor"), key=lambda f: f.properties["floor_no"])
    assert [
        (f.properties["floor_no"], f.properties["base_elevation"], f.properties["storey_height"])
        for f in floors
    ] == [(1, 0.0, 3.3), (2, 3.3, 3.3)]
    unit = by_code(ds, "unit_code")[PARCEL_A + "F00010202"]
    assert unit.properties["building_code"] == PARCEL_A + "F0001"
    assert (unit.properties["floor_no"], unit.properties["room_no"]) == (2, "202")
    assert (
        unit.properties["building_area"],
        unit.properties["inner_area"],
        unit.properties["shared_area"],
    ) == (118.5, 100.2, 18.3)
    assert unit.properties["use"] == "住宅" and unit.geometry.area == pytest.approx(120.0)


def test_geojson_lonlat_projected_to_srid() -> None:
    ds = read("parcels_wgs84.geojson", srid=4528)
    assert ds.srid == 4528 and "CRS_REPROJECTED" in codes(ds)
    a = by_code(ds)[PARCEL_A]
    assert a.properties["seat"] == "西湖区文三路100号"
    for corner in [(40512500.0, 3350500.0), (40512540.0, 3350530.0)]:
        assert any(close_to(c, corner, 0.001) for c in a.geometry.exterior.coords)
    with pytest.raises(SurveyFormatError) as err:
        read("parcels_wgs84.geojson")
    assert err.value.code == "CRS_UNKNOWN"


def test_flatgeobuf() -> None:
    ds = read("parcels.fgb")
    assert (ds.format, ds.srid) == ("flatgeobuf", 4528)
    assert by_code(ds)[PARCEL_B].geometry.area == pytest.approx(1100.0)


def test_geojson_floor_plan_units_and_derived_floors() -> None:
    ds = read("floorplan.geojson")
    assert ds.srid == 4528 and len(ds.of_kind("unit")) == 8
    floors = sorted(ds.of_kind("floor"), key=lambda f: f.properties["floor_no"])
    assert [
        (f.properties["floor_no"], f.properties["base_elevation"], f.properties["storey_height"])
        for f in floors
    ] == [(-1, -3.3, 3.3), (1, 0.0, 3.0), (2, 3.0, 3.0), (3, 6.0, 3.0)]
    assert floors[0].geometry.area == pytest.approx(240.0)
    assert floors[0].properties["building_code"] == "330106001001GB00023F0001"
    unit = by_code(ds, "unit_code")["330106001001GB00023F00019002"]
    assert (unit.properties["floor_no"], unit.properties["room_no"], unit.properties["use"]) == (
        -1,
        "B102",
        "车库",
    )
    assert unit.properties["shared_area"] == 17.5


def test_kind_attribute_and_esri_style_crs(tmp_path: Path) -> None:
    path = tmp_path / "mixed.geojson"
    path.write_text(
        '{"type":"FeatureCollection","features":['
        '{"type":"Feature","properties":{"kind":"宗地","ZDDM":"330106001001GB00021"},'
        '"geometry":{"type":"Polygon","coordinates":[[[512500,3350500],[512540,3350500],'
        "[512540,3350530],[512500,3350500]]]}},"
        '{"type":"Feature","properties":{"kind":"boundary_point","JZDH":"J1"},'
        '"geometry":{"type":"Point","coordinates":[512500,3350500]}}]}',
        encoding="utf-8",
    )
    ds = read_survey(path, srid=4549)  # no crs member and not lon/lat: projected, srid says
    assert [f.kind for f in ds.features] == ["parcel", "boundary_point"]
    assert "CRS_GEOJSON_NOT_WGS84" in codes(ds)
    gk = CRS.from_proj4(
        "+proj=tmerc +lat_0=0 +lon_0=120 +k=1 +x_0=40500000 +y_0=0 +ellps=GRS80 +units=m +no_defs"
    )
    assert gk.to_epsg() is None and epsg_from_crs(gk) == 4528


# ------------------------------------------------------------------------------------ DXF
def test_cass_dxf_parcels_points_and_codes() -> None:
    ds = read("cadastre_cass.dxf")
    assert (ds.format, ds.srid) == ("dxf", 4528)
    parcels = by_code(ds)
    assert sorted(parcels) == [f"330106001001GB0003{i}" for i in range(1, 6)]
    assert len(ds.of_kind("parcel")) == 5  # the unlabelled inner ring is only a hole
    p1, p2 = parcels["330106001001GB00031"], parcels["330106001001GB00032"]
    assert p1.geometry.area == pytest.approx(2107.515, abs=0.05)  # arc edge, bulge 0.2
    assert len(p2.geometry.interiors) == 2 and p2.geometry.area == pytest.approx(2000.0)
    assert parcels["330106001001GB00033"].geometry.area == pytest.approx(300.0)
    assert parcels["330106001001GB00034"].ref == "polygonised boundary lines"
    assert parcels["330106001001GB00035"].ref.startswith("layer ZDX2")  # SOUTH XDATA
    numbers = {p.properties["point_no"]: p for p in ds.of_kind("boundary_point")}
    assert sorted(numbers) == sorted(["J1", "J2", "J3", "J4", "J5", "J6", "J7", "J8", "J99"])
    assert numbers["J2"].properties["parcel_ref"] == "330106001001GB00031"
    assert numbers["J6"].properties["parcel_refs"] == ["330106001001GB00032"]  # from ATTRIB
    assert (numbers["J3"].geometry.x, numbers["J3"].geometry.y) == (40514050.0, 3352040.0)
    off = next(i for i in ds.issues if i.code == "POINT_OFF_BOUNDARY")
    assert ds.features[off.feature].properties["point_no"] == "J99"
    assert {"DXF_POLYGONIZED", "CRS_ASSUMED"} <= set(codes(ds))


def test_dxf_srid_and_configurable_layers() -> None:
    ds = read("cadastre_cass.dxf", srid=4528)
    assert "CRS_ASSUMED" in codes(ds) and ds.srid == 4528
    only_houses = read("cadastre_cass.dxf", options=ReaderOptions(boundary_layers=("JMD",)))
    areas = sorted(round(f.geometry.area) for f in only_houses.of_kind("parcel"))
    assert areas == [100, 1200]  # the JMD outline, plus the SOUTH-tagged parcel


def test_dxf_floor_layers() -> None:
    ds = read("floors.dxf")
    units = ds.of_kind("unit")
    assert len(units) == 8 and ds.srid == 4528
    floors = sorted(ds.of_kind("floor"), key=lambda f: f.properties["floor_no"])
    got = [
        (f.properties["floor_no"], f.properties["base_elevation"], f.properties["storey_height"])
        for f in floors
    ]
    # elevation from the layer name, XDATA, text "标高=", text "EL="
    assert got == [(-1, -3.3, 3.3), (1, 0.0, 3.0), (2, 3.0, 3.0), (3, 6.0, 3.0)]
    unit = by_code(ds, "unit_code")["330106001001GB00024F00019001"]
    assert (unit.properties["room_no"], unit.properties["use"]) == ("B101", "车库")
    assert (
        unit.properties["building_area"],
        unit.properties["inner_area"],
        unit.properties["shared_area"],
    ) == (120.0, 102.5, 17.5)
    assert unit.properties["building_code"] == "330106001001GB00024F0001"
    assert unit.geometry.bounds == (40513500.0, 3351500.0, 40513512.0, 3351510.0)


@pytest.mark.parametrize(
    ("label", "floor"),
    [
        ("F01", 1),
        ("F12", 12),
        ("-1F", -1),
        ("3层", 3),
        ("B2", -2),
        ("地下1层", -1),
        ("第5层", 5),
        ("0", None),
        ("JZX", None),
        ("F", None),
    ],
)
def test_floor_layer_names(label: str, floor: int | None) -> None:
    parsed = parse_floor_layer(label)
    assert (parsed[0] if parsed else None) == floor
    if floor is not None:
        assert parse_floor_label(label) == floor
    assert parse_floor_layer("F03@6.00") == (3, 6.0)


# ------------------------------------------------------------------------------------ IFC
def test_ifc_spaces_per_storey() -> None:
    pytest.importorskip("ifcopenshell")
    ds = read("building.ifc")
    assert (ds.format, ds.srid, ds.metadata["georeferenced"]) == ("ifc", 4528, True)
    units = by_code(ds, "unit_code")
    unit = units["330106001001GB00025F00010102"]
    assert unit.geometry.area == pytest.approx(48.0, abs=1e-3)
    # IfcMapConversion: origin (40514500, 3352500), x axis (0.8, 0.6), mm -> m
    assert any(close_to(c, (40514504.8, 3352503.6), 0.001) for c in unit.geometry.exterior.coords)
    assert (
        unit.properties["floor_no"],
        unit.properties["inner_area"],
        unit.properties["building_area"],
    ) == (1, 48.0, 55.8)
    assert unit.properties["use"] == "住宅"
    floors = sorted(ds.of_kind("floor"), key=lambda f: f.properties["floor_no"])
    assert [(f.properties["floor_no"], f.properties["base_elevation"]) for f in floors] == [
        (1, 0.0),
        (2, 3.0),
    ]
    assert floors[0].properties["storey_height"] == pytest.approx(3.0)


def test_ifc_without_ifcopenshell(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "ifcopenshell" or m.startswith("ifcopenshell.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ifcopenshell", None)
    with pytest.raises(SurveyFormatError) as err:
        read("building.ifc")
    assert err.value.code == "FORMAT_UNSUPPORTED" and "ifcopenshell" in err.value.message


def _gbk_dxf(path: Path, declare_gbk: bool) -> None:
    import ezdxf

    doc = ezdxf.new("R2000")
    if declare_gbk:
        doc.encoding = "gbk"  # $DWGCODEPAGE ANSI_936, as CASS writes it
    doc.layers.add("权属线")
    msp = doc.modelspace()
    msp.add_lwpolyline(
        [(40512500, 3350500), (40512520, 3350500), (40512520, 3350520)],
        close=True,
        dxfattribs={"layer": "权属线"},
    )
    msp.add_text(PARCEL_A, dxfattribs={"insert": (40512515, 3350503)})
    msp.add_text("宗地甲", dxfattribs={"insert": (40512516, 3350504)})
    doc.saveas(path, encoding="gbk")


@pytest.mark.parametrize("declare_gbk", [True, False])
def test_dxf_gbk_text_old_versions(tmp_path: Path, declare_gbk: bool) -> None:
    _gbk_dxf(tmp_path / "gbk.dxf", declare_gbk)
    ds = read_survey(tmp_path / "gbk.dxf")
    (parcel,) = ds.of_kind("parcel")
    assert parcel.properties["raw"]["texts"] == [PARCEL_A, "宗地甲"]
    assert "权属线" in ds.metadata["layers"]
    assert ("DXF_ENCODING_GUESSED" in codes(ds)) is not declare_gbk


def test_dxf_unicode_escapes(tmp_path: Path) -> None:
    import ezdxf

    doc = ezdxf.new("R2000")  # cp1252: Chinese names are written as \U+XXXX escapes
    doc.layers.add("界址线")
    doc.modelspace().add_lwpolyline(
        [(40512500, 3350500), (40512520, 3350500), (40512520, 3350520)],
        close=True,
        dxfattribs={"layer": "界址线"},
    )
    doc.saveas(tmp_path / "esc.dxf")
    assert b"\\U+" in (tmp_path / "esc.dxf").read_bytes()
    ds = read_survey(tmp_path / "esc.dxf")
    assert ds.of_kind("parcel")[0].ref.startswith("layer 界址线")


def test_zip_with_several_survey_files(tmp_path: Path) -> None:
    import zipfile

    txt = "\n".join(
        [
            "[属性描述]",
            "坐标系=2000国家大地坐标系",
            "带号=40",
            "[地块坐标]",
            "4,,7,无代码地块,,,,,@",
        ]
        + [r.format(e0="40512600.000", e1="40512620.000") for r in SQUARE]
    )
    archive = tmp_path / "survey.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(GOOD / "floorplan.geojson", "plans/floorplan.geojson")
        zf.writestr("parcels/宗地.txt", txt.encode("gbk"))
        zf.writestr("readme.md", "说明")
    ds = read_survey(archive)
    assert ds.format == "zip" and ds.srid == 4528
    assert len(ds.of_kind("unit")) == 8 and len(ds.of_kind("parcel")) == 1
    point = ds.of_kind("boundary_point")[0]
    assert ds.features[point.properties["parcel_ref"]].kind == "parcel"  # index re-based
    assert "ZIP_FILE_IGNORED" in codes(ds)


def test_duplicate_parcel_code_flags_both_parcels() -> None:
    bad = Path(__file__).parent / "data" / "bad"
    ds = read_survey(bad / "txt_duplicate_parcels.txt")
    flagged = [i.feature for i in ds.issues if i.code == "DUPLICATE_PARCEL_CODE"]
    parcels = [i for i, f in enumerate(ds.features) if f.kind == "parcel"]
    assert sorted(flagged) == parcels and len(parcels) == 2
    assert all(i.severity == "error" for i in ds.issues if i.code == "DUPLICATE_PARCEL_CODE")


def test_column_normalisation_equals_row_normalisation() -> None:
    """The column-wise path large OGR layers take gives exactly the per-row dicts."""
    import math

    import numpy as np

    from cadastre.ingest.fields import normalise_columns, normalise_properties

    rows = [
        {"ZDDM": " 330106001001GB00021 ", "AREA": 12.5, "ZDMJ": None, "MJDW": "2", "yt": 501.0,
         "BDCDYH": None, "height": np.float64(3.2), "flag": True, "n": np.int64(7)},
        {"ZDDM": "", "AREA": float("nan"), "ZDMJ": 20, "MJDW": None, "yt": "0701",
         "BDCDYH": "330106001001GB00022F00010001", "height": "x", "flag": False, "n": None},
        {"ZDDM": None, "AREA": None, "ZDMJ": "30.5", "MJDW": "3", "yt": None,
         "BDCDYH": "330106001001GB00023W00000000", "height": math.inf, "flag": None, "n": 1},
    ]
    for kind in ("parcel", "unit", "building", None):
        columns = {name: [r[name] for r in rows] for name in rows[0]}
        assert normalise_columns(columns, len(rows), kind) == [
            normalise_properties(r, kind) for r in rows], kind
    assert normalise_columns({}, 2, "parcel") == [normalise_properties({}, "parcel")] * 2


def test_range_check_reports_the_first_bad_feature(tmp_path: Path) -> None:
    """All coordinates are checked at once; the error names the first feature at fault."""
    import json

    ring = [[40502000 + dx, 3347000 + dy] for dx, dy in ((0, 0), (10, 0), (10, 10), (0, 10),
                                                        (0, 0))]
    far = [[x, y - 3_200_000] for x, y in ring]          # northing out of China
    feats = [{"type": "Feature", "properties": {"kind": "parcel", "ZDDM": f"330106001001GB0000{i}"},
              "geometry": {"type": "Polygon", "coordinates": [far if i in (3, 5) else ring]}}
             for i in range(1, 7)]
    path = tmp_path / "far.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": {
        "type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4528"}},
        "features": feats}))
    with pytest.raises(SurveyFormatError) as exc:
        read_survey(path)
    assert exc.value.code == "COORDINATE_OUT_OF_RANGE"
    assert "feature #2" in exc.value.message          # the third feature (fids from 0)
