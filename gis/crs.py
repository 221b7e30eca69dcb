"""Chinese Gauss-Krueger coordinate systems (CGCS2000, Xi'an 80, Beijing 54).

All projection maths is delegated to pyproj/PROJ; this module only maps zone
numbers <-> EPSG codes, detects zones and axis order, and caches transformers.

Axis order: EPSG defines these projected CRSs as X = northing, Y = easting and
Chinese survey data (e.g. JZD.XZBZ/YZBZ) follows that convention.  Everything
here that talks to pyproj uses ``always_xy=True``, i.e. (easting, northing) and
(lon, lat).  Use :func:`survey_xy_to_en` to convert survey X/Y on import.

Stable ``ZoneError.code`` values:
  ZONE_AMBIGUOUS       plain (un-prefixed) easting, zone number unknown
  ZONE_UNKNOWN         easting prefix outside 13-23 / 25-45
  ZONE_WIDTH_MISMATCH  requested width disagrees with the easting prefix
  ZONE_OUT_OF_RANGE    invalid width / zone number / longitude
  EPSG_UNSUPPORTED     EPSG code is not a supported Gauss-Krueger CRS
  EPSG_NOT_IN_DATABASE code family missing from the local PROJ database

Note: CGCS2000 -> WGS 84 and Xi'an 80 -> WGS 84 are "ballpark" (no datum
shift) operations in PROJ; Beijing 54 uses EPSG published transformations.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar, overload

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Proj, Transformer
from pyproj.database import query_crs_info
from pyproj.enums import PJType

__all__ = [
    "Datum",
    "GaussKrugerZone",
    "ZoneError",
    "WGS84_EPSG",
    "WEB_MERCATOR_EPSG",
    "zone_for",
    "zone_from_easting",
    "zone_from_longitude",
    "zone_from_epsg",
    "survey_xy_to_en",
    "detect_swapped_axes",
    "get_transformer",
    "to_wgs84",
    "from_wgs84",
    "to_web_mercator",
    "project_geometry",
    "meridian_convergence",
]

WGS84_EPSG = 4326
WEB_MERCATOR_EPSG = 3857

ZONE_RANGE: dict[int, range] = {3: range(25, 46), 6: range(13, 24)}

T = TypeVar("T")
FloatArray = NDArray[np.float64]


class Datum(enum.Enum):
    CGCS2000 = "CGCS2000"
    XIAN80 = "XIAN80"
    BEIJING54 = "BEIJING54"

    @property
    def db_name(self) -> str:
        """Geodetic CRS name as used in EPSG projected CRS names."""
        return _DB_NAMES[self]


_DB_NAMES: dict[Datum, str] = {
    Datum.CGCS2000: "CGCS2000",
    Datum.XIAN80: "Xian 1980",
    Datum.BEIJING54: "Beijing 1954",
}

# (datum, width, prefixed) -> EPSG code of the first zone (3°: 25, 6°: 13).
# Families not listed here are looked up in the PROJ database by name.
_EPSG_BASE: dict[tuple[Datum, int, bool], int] = {
    (Datum.CGCS2000, 3, True): 4513,
    (Datum.CGCS2000, 3, False): 4534,
    (Datum.CGCS2000, 6, True): 4491,
    (Datum.CGCS2000, 6, False): 4502,
    (Datum.XIAN80, 3, True): 2349,
    (Datum.XIAN80, 3, False): 2370,
    (Datum.BEIJING54, 3, True): 2401,
    (Datum.BEIJING54, 3, False): 2422,
}
_FAMILIES: list[tuple[Datum, int, bool]] = [
    (d, w, p) for d in Datum for w in (3, 6) for p in (True, False)
]


class ZoneError(ValueError):
    """Zone/EPSG resolution failure with a stable machine-readable code."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        super().__init__(f"[{code}] {message_zh} / {message_en}")


def _check_width(width: int) -> None:
    if width not in ZONE_RANGE:
        raise ZoneError(
            "ZONE_OUT_OF_RANGE",
            f"分带宽度必须为3或6度，实际为{width}",
            f"zone width must be 3 or 6 degrees, got {width}",
        )


def _check_zone(zone: int, width: int) -> None:
    _check_width(width)
    r = ZONE_RANGE[width]
    if zone not in r:
        raise ZoneError(
            "ZONE_OUT_OF_RANGE",
            f"{width}度带带号{zone}超出范围{r.start}–{r.stop - 1}",
            f"{width}-degree zone number {zone} outside {r.start}-{r.stop - 1}",
        )


@dataclass(frozen=True)
class GaussKrugerZone:
    datum: Datum
    width: int
    zone: int
    prefixed: bool

    def __post_init__(self) -> None:
        if not isinstance(self.datum, Datum):
            raise TypeError(f"datum must be a Datum, got {self.datum!r}")
        _check_zone(self.zone, self.width)

    @property
    def central_meridian(self) -> int:
        return 3 * self.zone if self.width == 3 else 6 * self.zone - 3

    @property
    def false_easting(self) -> float:
        return self.zone * 1_000_000.0 + 500_000.0 if self.prefixed else 500_000.0

    @property
    def epsg(self) -> int:
        key = (self.datum, self.width, self.prefixed)
        base = _EPSG_BASE.get(key)
        if base is not None:
            return base + self.zone - ZONE_RANGE[self.width].start
        return _db_family(*key)[self.zone]

    @property
    def crs(self) -> CRS:
        return _crs(self.epsg)


def zone_for(
    zone_number: int, width: int = 3, prefixed: bool = True, datum: Datum = Datum.CGCS2000
) -> GaussKrugerZone:
    return GaussKrugerZone(datum=datum, width=width, zone=zone_number, prefixed=prefixed)


def zone_from_easting(
    easting: float, width: int | None = None, datum: Datum = Datum.CGCS2000
) -> GaussKrugerZone:
    """Zone of a zone-prefixed easting (e.g. 39500000 -> 3° zone 39)."""
    if width is not None:
        _check_width(width)
    if not math.isfinite(easting) or easting < 0:
        raise ZoneError("ZONE_UNKNOWN", f"无效的横坐标{easting}", f"invalid easting {easting}")
    if easting < 1_000_000:
        raise ZoneError(
            "ZONE_AMBIGUOUS",
            f"横坐标{easting:.3f}不含带号，无法确定投影带，请从元数据提供带号",
            f"easting {easting:.3f} has no zone prefix; the zone number must come from metadata",
        )
    prefix = int(easting // 1_000_000)
    detected = next((w for w, r in ZONE_RANGE.items() if prefix in r), None)
    if detected is None:
        raise ZoneError(
            "ZONE_UNKNOWN",
            f"横坐标带号{prefix}不属于3度带(25–45)或6度带(13–23)",
            f"easting prefix {prefix} is neither a 3-degree (25-45) nor a 6-degree (13-23) zone",
        )
    if width is not None and width != detected:
        raise ZoneError(
            "ZONE_WIDTH_MISMATCH",
            f"带号{prefix}属于{detected}度带，与指定的{width}度带不符",
            f"prefix {prefix} is a {detected}-degree zone, but a {width}-degree zone was requested",
        )
    return GaussKrugerZone(datum=datum, width=detected, zone=prefix, prefixed=True)


def zone_from_longitude(
    lon: float, width: int = 3, prefixed: bool = True, datum: Datum = Datum.CGCS2000
) -> GaussKrugerZone:
    """Zone containing a longitude (boundary longitudes go to the eastern zone)."""
    _check_width(width)
    if not math.isfinite(lon):
        raise ZoneError("ZONE_OUT_OF_RANGE", f"无效的经度{lon}", f"invalid longitude {lon}")
    # round half up rather than Python's banker's rounding
    n = math.floor(lon / 3 + 0.5) if width == 3 else math.floor(lon / 6) + 1
    if n not in ZONE_RANGE[width]:
        raise ZoneError(
            "ZONE_OUT_OF_RANGE",
            f"经度{lon}超出中国{width}度带范围",
            f"longitude {lon} is outside the Chinese {width}-degree zones",
        )
    return GaussKrugerZone(datum=datum, width=width, zone=n, prefixed=prefixed)


def zone_from_epsg(epsg: int) -> GaussKrugerZone:
    """Inverse of :attr:`GaussKrugerZone.epsg`."""
    for (datum, width, prefixed), base in _EPSG_BASE.items():
        offset = epsg - base
        if 0 <= offset < len(ZONE_RANGE[width]):
            return GaussKrugerZone(datum, width, ZONE_RANGE[width].start + offset, prefixed)
    for key in _FAMILIES:
        if key in _EPSG_BASE:
            continue
        try:
            family = _db_family(*key)
        except ZoneError:
            continue
        for zone, code in family.items():
            if code == epsg:
                return GaussKrugerZone(key[0], key[1], zone, key[2])
    raise ZoneError(
        "EPSG_UNSUPPORTED",
        f"EPSG:{epsg}不是受支持的高斯-克吕格投影坐标系",
        f"EPSG:{epsg} is not a supported Gauss-Kruger CRS",
    )


@lru_cache(maxsize=1)
def _db_projected_names() -> dict[str, int]:
    infos = query_crs_info(auth_name="EPSG", pj_types=PJType.PROJECTED_CRS)
    return {i.name: int(i.code) for i in infos if not i.deprecated}


@lru_cache(maxsize=16)
def _db_family(datum: Datum, width: int, prefixed: bool) -> dict[int, int]:
    """zone number -> EPSG code, looked up by CRS name in the PROJ database."""
    kind = "3-degree Gauss-Kruger" if width == 3 else "Gauss-Kruger"
    pattern = re.compile(
        rf"{re.escape(datum.db_name)} / {kind} " + (r"zone (\d+)" if prefixed else r"CM (\d+)E")
    )
    found: dict[int, int] = {}
    for name, code in _db_projected_names().items():
        m = pattern.fullmatch(name)
        if m is None:
            continue
        value = int(m.group(1))
        if prefixed:
            zone = value
        elif width == 3:
            zone = value // 3
        else:
            zone = (value + 3) // 6
        found[zone] = code
    missing = [z for z in ZONE_RANGE[width] if z not in found]
    if missing:
        label = f"{datum.value} {width}° {'prefixed' if prefixed else 'plain'}"
        raise ZoneError(
            "EPSG_NOT_IN_DATABASE",
            f"本地PROJ数据库中缺少{label}坐标系（带号{missing}）",
            f"{label} CRS family missing from the local PROJ database (zones {missing})",
        )
    return {z: found[z] for z in ZONE_RANGE[width]}


# --------------------------------------------------------------------------- axes

NORTHING_RANGE = (1.5e6, 6.0e6)


def survey_xy_to_en(x_north: T, y_east: T) -> tuple[T, T]:
    """Survey (X=northing, Y=easting) -> GIS (easting, northing)."""
    return y_east, x_north


def _looks_like_northing(v: FloatArray) -> NDArray[np.bool_]:
    return (v >= NORTHING_RANGE[0]) & (v <= NORTHING_RANGE[1])


def _looks_like_easting(v: FloatArray) -> NDArray[np.bool_]:
    prefix = np.floor(v / 1e6)
    rest = v - prefix * 1e6
    plain = (v >= 100_000) & (v <= 900_000)
    valid_prefix = ((prefix >= 13) & (prefix <= 23)) | ((prefix >= 25) & (prefix <= 45))
    prefixed = valid_prefix & (rest >= 100_000) & (rest <= 900_000)
    return plain | prefixed


def detect_swapped_axes(xs: ArrayLike, ys: ArrayLike) -> bool:
    """True if survey "X" holds eastings and "Y" northings (majority vote).

    Heuristic valid for China: northings in ~[1.5e6, 6.0e6] m without prefix,
    eastings either plain (500000 ± 400000) or zone-prefixed (>= 13e6).
    """
    x = np.asarray(xs, dtype=np.float64).ravel()
    y = np.asarray(ys, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError("xs and ys must have the same length")
    if x.size == 0:
        return False
    normal = int(np.count_nonzero(_looks_like_northing(x) & _looks_like_easting(y)))
    swapped = int(np.count_nonzero(_looks_like_easting(x) & _looks_like_northing(y)))
    return swapped > normal and 2 * swapped >= x.size


# --------------------------------------------------------------------- transforms


@lru_cache(maxsize=256)
def _crs(epsg: int) -> CRS:
    return CRS.from_epsg(epsg)


@lru_cache(maxsize=256)
def get_transformer(src_epsg: int, dst_epsg: int) -> Transformer:
    """Cached (thread-safe in pyproj >= 3.1) always_xy transformer."""
    return Transformer.from_crs(_crs(src_epsg), _crs(dst_epsg), always_xy=True)


def _transform(src: int, dst: int, xs: ArrayLike, ys: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    ox, oy = get_transformer(src, dst).transform(x, y)
    return np.asarray(ox, dtype=np.float64), np.asarray(oy, dtype=np.float64)


def to_wgs84(epsg: int, eastings: ArrayLike, northings: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Projected (easting, northing) -> WGS 84 (lons, lats)."""
    return _transform(epsg, WGS84_EPSG, eastings, northings)


def from_wgs84(epsg: int, lons: ArrayLike, lats: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS 84 (lons, lats) -> projected (eastings, northings)."""
    return _transform(WGS84_EPSG, epsg, lons, lats)


def to_web_mercator(
    epsg: int, eastings: ArrayLike, northings: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Projected (easting, northing) -> EPSG:3857 (x, y)."""
    return _transform(epsg, WEB_MERCATOR_EPSG, eastings, northings)


GeomT = TypeVar("GeomT", bound=shapely.Geometry)


def project_geometry(geom: GeomT, src_epsg: int, dst_epsg: int) -> GeomT:
    """Reproject a shapely geometry (x = easting/lon); Z is preserved."""
    if src_epsg == dst_epsg:
        return geom
    transformer = get_transformer(src_epsg, dst_epsg)

    def func(coords: FloatArray) -> FloatArray:
        out = transformer.transform(*coords.T)
        return np.column_stack(out).astype(np.float64, copy=False)

    transform: Callable[..., GeomT] = shapely.transform
    return transform(geom, func, include_z=None)


@lru_cache(maxsize=64)
def _proj(epsg: int) -> Proj:
    return Proj(_crs(epsg))


@overload
def meridian_convergence(epsg: int, easting: float, northing: float) -> float: ...
@overload
def meridian_convergence(epsg: int, easting: ArrayLike, northing: ArrayLike) -> FloatArray: ...
def meridian_convergence(epsg: int, easting: ArrayLike, northing: ArrayLike) -> float | FloatArray:
    """Grid convergence in degrees (positive east of the CM, northern hemisphere).

    Inputs are projected (easting, northing); they are converted to the CRS's
    own geographic coordinates before calling ``Proj.get_factors``.
    """
    to_geo = _geo_transformer(epsg)
    e = np.asarray(easting, dtype=np.float64)
    n = np.asarray(northing, dtype=np.float64)
    lon, lat = to_geo.transform(e, n)
    factors = _proj(epsg).get_factors(lon, lat)
    result = np.asarray(factors.meridian_convergence, dtype=np.float64)
    if e.ndim == 0 and n.ndim == 0:
        return float(result)
    return result


@lru_cache(maxsize=64)
def _geo_transformer(epsg: int) -> Transformer:
    crs = _crs(epsg)
    geodetic = crs.geodetic_crs
    if geodetic is None:
        raise ValueError(f"EPSG:{epsg} has no geodetic CRS")
    return Transformer.from_crs(crs, geodetic, always_xy=True)
