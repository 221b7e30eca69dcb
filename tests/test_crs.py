"""Tests for gis.crs (zone detection, EPSG mapping, axis order, transforms)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely
from pyproj import CRS
from shapely.geometry import Polygon

from gis.crs import (
    Datum,
    GaussKrugerZone,
    ZoneError,
    detect_swapped_axes,
    from_wgs84,
    get_transformer,
    meridian_convergence,
    project_geometry,
    survey_xy_to_en,
    to_web_mercator,
    to_wgs84,
    zone_for,
    zone_from_easting,
    zone_from_epsg,
    zone_from_longitude,
)

ZONES_3 = list(range(25, 46))
ZONES_6 = list(range(13, 24))
ALL_ZONES = [
    GaussKrugerZone(d, w, z, p)
    for d in Datum
    for w, zones in ((3, ZONES_3), (6, ZONES_6))
    for z in zones
    for p in (True, False)
]
ELLIPSOIDS = {
    Datum.CGCS2000: (6378137.0, 298.257222101),
    Datum.XIAN80: (6378140.0, 298.257),
    Datum.BEIJING54: (6378245.0, 298.3),
}
DB_NAMES = {Datum.CGCS2000: "CGCS2000", Datum.XIAN80: "Xian 1980", Datum.BEIJING54: "Beijing 1954"}

# Survey samples: X = northing, Y = easting (zone-prefixed)
HUBEI_X, HUBEI_Y = 3320113.398, 39500000.000  # on CM 117E, lat 30N
GUIZHOU_X, GUIZHOU_Y = 2834000.0, 35521000.0  # zone 35 (CM 105E)


def gk_params(crs: CRS) -> dict[str, float]:
    op = crs.coordinate_operation
    assert op is not None
    return {p.name: float(p.value) for p in op.params}


def assert_gk_crs(zone: GaussKrugerZone, crs: CRS) -> None:
    params = gk_params(crs)
    assert params["Longitude of natural origin"] == zone.central_meridian
    assert params["Latitude of natural origin"] == 0.0
    assert params["Scale factor at natural origin"] == 1.0
    assert params["False easting"] == zone.false_easting
    assert params["False northing"] == 0.0
    a, inv_f = ELLIPSOIDS[zone.datum]
    assert crs.ellipsoid is not None
    assert crs.ellipsoid.semi_major_metre == pytest.approx(a)
    assert crs.ellipsoid.inverse_flattening == pytest.approx(inv_f)
    assert crs.name.startswith(DB_NAMES[zone.datum] + " / ")
    if zone.prefixed:
        assert crs.name.endswith(f"zone {zone.zone}")
    else:
        assert crs.name.endswith(f"CM {zone.central_meridian}E")
    assert ("3-degree" in crs.name) == (zone.width == 3)


# ---------------------------------------------------------------- zone detection


@pytest.mark.parametrize("n", ZONES_3)
def test_every_3_degree_zone_from_prefixed_easting(n: int) -> None:
    zone = zone_from_easting(n * 1_000_000 + 432_109.876)
    assert (zone.datum, zone.width, zone.zone, zone.prefixed) == (Datum.CGCS2000, 3, n, True)
    assert zone.central_meridian == 3 * n
    assert zone.epsg == 4513 + (n - 25)
    assert_gk_crs(zone, zone.crs)
    crs_json: dict[str, Any] = zone.crs.to_json_dict()
    fe = {p["name"]: p["value"] for p in crs_json["conversion"]["parameters"]}
    assert fe["False easting"] == n * 1_000_000 + 500_000
    assert fe["Longitude of natural origin"] == 3 * n
    plain = zone_for(n, 3, prefixed=False)
    assert plain.epsg == 4534 + (n - 25)
    assert_gk_crs(plain, plain.crs)


@pytest.mark.parametrize("n", ZONES_6)
def test_every_6_degree_zone_from_prefixed_easting(n: int) -> None:
    zone = zone_from_easting(n * 1_000_000 + 687_000.0)
    assert (zone.width, zone.zone, zone.prefixed) == (6, n, True)
    assert zone.central_meridian == 6 * n - 3
    assert zone.epsg == 4491 + (n - 13)
    assert_gk_crs(zone, zone.crs)
    plain = zone_for(n, 6, prefixed=False)
    assert plain.epsg == 4502 + (n - 13)
    assert_gk_crs(plain, plain.crs)


def test_zone_from_easting_width_and_datum() -> None:
    assert zone_from_easting(39500000.0, width=3).zone == 39
    assert zone_from_easting(20500000.0, width=6).zone == 20
    z = zone_from_easting(39500000.0, datum=Datum.XIAN80)
    assert (z.datum, z.epsg) == (Datum.XIAN80, 2363)
    assert zone_from_easting(39500000.0, datum=Datum.BEIJING54).epsg == 2415


def _code(exc: pytest.ExceptionInfo[ZoneError]) -> str:
    return exc.value.code


@pytest.mark.parametrize("easting", [500000.0, 123456.789, 999999.999, 0.0])
def test_plain_easting_is_ambiguous(easting: float) -> None:
    with pytest.raises(ZoneError) as exc:
        zone_from_easting(easting)
    assert _code(exc) == "ZONE_AMBIGUOUS"
    assert isinstance(exc.value, ValueError)
    msg = str(exc.value)
    assert "带号" in msg and "zone" in msg
    assert msg.index("带号") < msg.index("zone")  # Chinese first, then English


@pytest.mark.parametrize(
    "easting", [1500000.0, 12500000.0, 24500000.0, 46500000.0, 99000000.0, -5.0, float("nan")]
)
def test_unknown_prefix(easting: float) -> None:
    with pytest.raises(ZoneError) as exc:
        zone_from_easting(easting)
    assert _code(exc) == "ZONE_UNKNOWN"


@pytest.mark.parametrize("easting,width", [(39500000.0, 6), (20500000.0, 3), (13100000.0, 3)])
def test_width_mismatch(easting: float, width: int) -> None:
    with pytest.raises(ZoneError) as exc:
        zone_from_easting(easting, width=width)
    assert _code(exc) == "ZONE_WIDTH_MISMATCH"


def test_invalid_zone_numbers() -> None:
    for args in [(24, 3), (46, 3), (12, 6), (24, 6), (39, 4)]:
        with pytest.raises(ZoneError) as exc:
            zone_for(*args)
        assert _code(exc) == "ZONE_OUT_OF_RANGE"


# ---------------------------------------------------------------- longitude


@pytest.mark.parametrize(
    "lon,width,expected",
    [
        (117.0, 3, 39),
        (118.4, 3, 39),
        (118.5, 3, 40),  # boundary goes east
        (115.5, 3, 39),  # no banker's rounding (38.5 -> 39)
        (105.2, 3, 35),
        (75.0, 3, 25),
        (135.0, 3, 45),
        (117.0, 6, 20),
        (119.99, 6, 20),
        (120.0, 6, 21),
        (73.6, 6, 13),
        (134.7, 6, 23),
    ],
)
def test_zone_from_longitude(lon: float, width: int, expected: int) -> None:
    zone = zone_from_longitude(lon, width=width)
    assert zone.zone == expected
    assert abs(lon - zone.central_meridian) <= width / 2


def test_zone_from_longitude_every_cm() -> None:
    for n in ZONES_3:
        for dl in (-1.49, 0.0, 1.49):
            assert zone_from_longitude(3 * n + dl).zone == n
    for n in ZONES_6:
        for dl in (-2.99, 0.0, 2.99):
            assert zone_from_longitude(6 * n - 3 + dl, width=6).zone == n
    z = zone_from_longitude(120.0, prefixed=False, datum=Datum.BEIJING54)
    assert (z.zone, z.prefixed, z.epsg) == (40, False, 2437)


@pytest.mark.parametrize("lon,width", [(10.0, 3), (72.0, 3), (137.0, 3), (60.0, 6), (140.0, 6)])
def test_zone_from_longitude_out_of_range(lon: float, width: int) -> None:
    with pytest.raises(ZoneError) as exc:
        zone_from_longitude(lon, width=width)
    assert _code(exc) == "ZONE_OUT_OF_RANGE"


# ---------------------------------------------------------------- EPSG families


def test_epsg_round_trip_all_families() -> None:
    seen: set[int] = set()
    for zone in ALL_ZONES:
        epsg = zone.epsg
        assert epsg not in seen
        seen.add(epsg)
        assert zone_from_epsg(epsg) == zone
        assert zone_for(zone.zone, zone.width, zone.prefixed, zone.datum) == zone
        assert_gk_crs(zone, CRS.from_epsg(epsg))
    assert len(seen) == 3 * 2 * (21 + 11)


@pytest.mark.parametrize(
    "datum,width,prefixed,first,last",
    [
        (Datum.CGCS2000, 3, True, 4513, 4533),
        (Datum.CGCS2000, 3, False, 4534, 4554),
        (Datum.CGCS2000, 6, True, 4491, 4501),
        (Datum.CGCS2000, 6, False, 4502, 4512),
        (Datum.XIAN80, 3, True, 2349, 2369),
        (Datum.XIAN80, 3, False, 2370, 2390),
        (Datum.BEIJING54, 3, True, 2401, 2421),
        (Datum.BEIJING54, 3, False, 2422, 2442),
        (Datum.XIAN80, 6, True, 2327, 2337),  # from the PROJ database
        (Datum.XIAN80, 6, False, 2338, 2348),
        (Datum.BEIJING54, 6, True, 21413, 21423),
        (Datum.BEIJING54, 6, False, 21453, 21463),
    ],
)
def test_epsg_family_bounds(
    datum: Datum, width: int, prefixed: bool, first: int, last: int
) -> None:
    zones = ZONES_3 if width == 3 else ZONES_6
    assert zone_for(zones[0], width, prefixed, datum).epsg == first
    assert zone_for(zones[-1], width, prefixed, datum).epsg == last


def test_known_codes_from_domain_doc() -> None:
    assert zone_from_epsg(4527) == GaussKrugerZone(Datum.CGCS2000, 3, 39, True)
    assert zone_from_epsg(4549).central_meridian == 120
    assert zone_from_epsg(4549).prefixed is False


@pytest.mark.parametrize("epsg", [4326, 4490, 3857, 32650, 2326, 2391, 21464])
def test_zone_from_epsg_unsupported(epsg: int) -> None:
    with pytest.raises(ZoneError) as exc:
        zone_from_epsg(epsg)
    assert _code(exc) == "EPSG_UNSUPPORTED"


@pytest.mark.parametrize(
    "epsg,a,inv_f",
    [
        (2349, 6378140.0, 298.257),
        (2363, 6378140.0, 298.257),
        (2390, 6378140.0, 298.257),
        (2327, 6378140.0, 298.257),
        (2401, 6378245.0, 298.3),
        (2415, 6378245.0, 298.3),
        (2442, 6378245.0, 298.3),
        (21413, 6378245.0, 298.3),
    ],
)
def test_old_datum_ellipsoids(epsg: int, a: float, inv_f: float) -> None:
    zone = zone_from_epsg(epsg)
    assert zone.datum in (Datum.XIAN80, Datum.BEIJING54)
    ell = zone.crs.ellipsoid
    assert ell is not None
    assert ell.semi_major_metre == a
    assert ell.inverse_flattening == pytest.approx(inv_f)


# ---------------------------------------------------------------- transforms


def _zone_grid(zone: GaussKrugerZone) -> tuple[np.ndarray, np.ndarray]:
    half = zone.width / 2
    lons, lats = np.meshgrid(
        np.linspace(zone.central_meridian - half, zone.central_meridian + half, 9),
        np.linspace(18.0, 53.0, 8),
    )
    return from_wgs84(zone.epsg, lons.ravel(), lats.ravel())


# Each zone costs ~0.2 s (PROJ operation search), so use a spread of zones.
ROUND_TRIP_ZONES = (
    [zone_for(n, 3, True) for n in (25, 30, 35, 39, 42, 45)]
    + [zone_for(n, 3, False) for n in (27, 39)]
    + [zone_for(n, 6, True) for n in (13, 18, 23)]
    + [zone_for(20, 6, False)]
)


@pytest.mark.parametrize("zone", ROUND_TRIP_ZONES, ids=lambda z: str(z.epsg))
def test_gk_wgs84_round_trip_within_1mm(zone: GaussKrugerZone) -> None:
    e, n = _zone_grid(zone)
    assert np.all(np.abs(e - zone.false_easting) < 400_000)
    assert np.all((n > 1.9e6) & (n < 5.9e6))
    lons, lats = to_wgs84(zone.epsg, e, n)
    e2, n2 = from_wgs84(zone.epsg, lons, lats)
    assert np.max(np.abs(e2 - e)) < 1e-3
    assert np.max(np.abs(n2 - n)) < 1e-3
    # the central meridian maps to the false easting exactly
    cm_e, _ = from_wgs84(zone.epsg, [zone.central_meridian], [35.0])
    assert cm_e[0] == pytest.approx(zone.false_easting, abs=1e-6)


def test_survey_sample_to_wgs84() -> None:
    e, n = survey_xy_to_en(HUBEI_X, HUBEI_Y)
    assert (e, n) == (HUBEI_Y, HUBEI_X)
    zone = zone_from_easting(e)
    assert zone.epsg == 4527
    lon, lat = to_wgs84(zone.epsg, e, n)
    assert float(lon) == pytest.approx(117.0, abs=1e-9)
    assert float(lat) == pytest.approx(30.0, abs=1e-7)

    e, n = survey_xy_to_en(GUIZHOU_X, GUIZHOU_Y)
    zone = zone_from_easting(e)
    assert (zone.zone, zone.central_meridian, zone.epsg) == (35, 105, 4523)
    lon, lat = to_wgs84(zone.epsg, [e], [n])
    assert 105.0 < lon[0] < 105.5 and 25.4 < lat[0] < 25.8
    # plain variant of the same point, same result
    lon2, lat2 = to_wgs84(zone_for(35, prefixed=False).epsg, [e - 35e6], [n])
    assert lon2[0] == pytest.approx(lon[0], abs=1e-12)
    assert lat2[0] == pytest.approx(lat[0], abs=1e-12)


def test_survey_xy_to_en_arrays() -> None:
    xs = np.array([HUBEI_X, GUIZHOU_X])
    ys = np.array([HUBEI_Y, GUIZHOU_Y])
    e, n = survey_xy_to_en(xs, ys)
    assert np.array_equal(e, ys) and np.array_equal(n, xs)


def test_detect_swapped_axes() -> None:
    # correct survey order: X = northing, Y = easting
    assert detect_swapped_axes([HUBEI_X], [HUBEI_Y]) is False
    assert detect_swapped_axes([GUIZHOU_X, GUIZHOU_X + 12.5], [GUIZHOU_Y, GUIZHOU_Y + 3]) is False
    assert detect_swapped_axes([GUIZHOU_X], [521000.0]) is False  # plain easting
    # swapped: X holds eastings
    assert detect_swapped_axes([HUBEI_Y], [HUBEI_X]) is True
    assert (
        detect_swapped_axes(
            np.array([GUIZHOU_Y, GUIZHOU_Y + 3]), np.array([GUIZHOU_X, GUIZHOU_X + 12.5])
        )
        is True
    )
    assert detect_swapped_axes([521000.0, 498000.0], [GUIZHOU_X, GUIZHOU_X + 1]) is True
    # nothing recognisable / empty
    assert detect_swapped_axes([], []) is False
    assert detect_swapped_axes([12.0], [34.0]) is False
    assert detect_swapped_axes([24500000.0], [GUIZHOU_X]) is False  # invalid prefix
    with pytest.raises(ValueError):
        detect_swapped_axes([1.0, 2.0], [1.0])


def test_web_mercator() -> None:
    x, y = to_web_mercator(4527, [39500000.0], [0.0])
    assert x[0] == pytest.approx(6378137.0 * np.radians(117.0), abs=1e-3)
    assert y[0] == pytest.approx(0.0, abs=1e-3)


def test_old_datum_to_wgs84_is_close() -> None:
    for epsg in (2363, 2415):  # Xi'an 80 / Beijing 54 zone 39
        lon, lat = to_wgs84(epsg, [HUBEI_Y], [HUBEI_X])
        assert np.isfinite(lon[0]) and np.isfinite(lat[0])
        assert abs(lon[0] - 117.0) < 0.01 and abs(lat[0] - 30.0) < 0.01


def test_transformer_cache() -> None:
    assert get_transformer(4527, 4326) is get_transformer(4527, 4326)


def test_project_geometry_round_trip() -> None:
    poly = Polygon(
        [
            (39500000.0, 3320113.398),
            (39500100.0, 3320113.398),
            (39500100.0, 3320213.398),
            (39500000.0, 3320213.398),
        ]
    )
    wgs = project_geometry(poly, 4527, 4326)
    minx, miny, maxx, maxy = wgs.bounds
    assert 116.99 < minx < maxx < 117.01 and 29.99 < miny < maxy < 30.01
    back = project_geometry(wgs, 4326, 4527)
    assert shapely.equals_exact(back, poly, tolerance=1e-3)
    assert project_geometry(poly, 4527, 4527) is poly


def test_project_geometry_keeps_z() -> None:
    poly = Polygon(
        [
            (35521000.0, 2834000.0, 1012.5),
            (35521050.0, 2834000.0, 1012.5),
            (35521050.0, 2834050.0, 1015.0),
        ]
    )
    out = project_geometry(poly, 4523, 4326)
    assert out.has_z
    zs = shapely.get_coordinates(out, include_z=True)[:, 2]
    assert np.allclose(zs[:3], [1012.5, 1012.5, 1015.0])
    flat = project_geometry(
        Polygon([(35521000.0, 2834000.0), (35521050.0, 2834000.0), (35521050.0, 2834050.0)]),
        4523,
        4326,
    )
    assert not flat.has_z


# ---------------------------------------------------------------- convergence


def test_meridian_convergence() -> None:
    on_cm = meridian_convergence(4527, HUBEI_Y, HUBEI_X)
    assert isinstance(on_cm, float)
    assert on_cm == pytest.approx(0.0, abs=1e-9)
    east = meridian_convergence(4527, HUBEI_Y + 100_000, HUBEI_X)
    west = meridian_convergence(4527, HUBEI_Y - 100_000, HUBEI_X)
    assert east > 0 > west
    assert east == pytest.approx(-west, rel=1e-9)
    # gamma ~ dlon * sin(lat): ~1.04 deg of longitude at 30N -> ~0.52 deg
    assert 0.45 < east < 0.58
    # plain code, same CM, same answer; vectorised input
    arr = meridian_convergence(4548, np.array([600_000.0, 500_000.0]), np.array([HUBEI_X] * 2))
    assert isinstance(arr, np.ndarray) and arr.shape == (2,)
    assert arr[0] == pytest.approx(east, abs=1e-9)
    assert arr[1] == pytest.approx(0.0, abs=1e-9)
    # Beijing 54 / Xi'an 80 and 6-degree zones work too, sign convention holds
    for epsg in (2415, 2363, 4497, 21419):
        zone = zone_from_epsg(epsg)
        assert meridian_convergence(epsg, zone.false_easting + 50_000, 4e6) > 0
        assert meridian_convergence(epsg, zone.false_easting - 50_000, 4e6) < 0
