"""CRS resolution for survey readers: file CRS -> EPSG, zone inference, the dataset's srid.

``srid`` given by the caller means "the survey's projected CRS": data without a CRS of its own
is taken to be in it, and data with another CRS (e.g. lon/lat GeoJSON) is projected to it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from cadastre.ingest.model import IssueLog, SurveyFeature, SurveyFormatError
from gis.crs import (
    Datum,
    GaussKrugerZone,
    ZoneError,
    get_transformer,
    zone_for,
    zone_from_easting,
    zone_from_epsg,
)

__all__ = [
    "MIN_EPSG_CONFIDENCE",
    "epsg_from_crs",
    "gk_zone_from_crs",
    "is_geographic",
    "check_target_srid",
    "zone_from_eastings",
    "datum_from_name",
    "reproject_features",
    "reprojected_warning",
    "inferred_zone_warning",
    "zone_of_srid",
    "crs_unknown",
]

MIN_EPSG_CONFIDENCE = 70

#: (semi-major axis, inverse flattening) -> datum of the Chinese Gauss-Kruger families.
_ELLIPSOIDS: tuple[tuple[float, float, Datum], ...] = (
    (6378137.0, 298.257222101, Datum.CGCS2000),
    (6378140.0, 298.257, Datum.XIAN80),
    (6378245.0, 298.3, Datum.BEIJING54),
)


def crs_unknown(zh: str, en: str, **details: object) -> SurveyFormatError:
    return SurveyFormatError("CRS_UNKNOWN", zh, en, **details)


def datum_from_name(name: str) -> Datum | None:
    """Datum from a 坐标系 value such as "2000国家大地坐标系", "西安80", "北京54"."""
    text = name.strip().upper().replace(" ", "")
    if not text:
        return None
    if "2000" in text or "CGCS" in text:
        return Datum.CGCS2000
    if "西安" in text or "XIAN" in text or "1980" in text or text.endswith("80"):
        return Datum.XIAN80
    if "北京" in text or "BEIJING" in text or "1954" in text or text.endswith("54"):
        return Datum.BEIJING54
    return None


def _datum_of(crs: CRS) -> Datum | None:
    ellipsoid = crs.ellipsoid
    if ellipsoid is None:
        return None
    for a, rf, datum in _ELLIPSOIDS:
        if math.isclose(ellipsoid.semi_major_metre, a, abs_tol=0.01) and math.isclose(
            ellipsoid.inverse_flattening, rf, abs_tol=1e-6
        ):
            return datum
    return None


def gk_zone_from_crs(crs: CRS) -> GaussKrugerZone | None:
    """A Chinese Gauss-Kruger zone recognised from projection parameters (e.g. ESRI .prj)."""
    if not crs.is_projected or crs.coordinate_operation is None:
        return None
    method = crs.coordinate_operation.method_name.lower()
    if "transverse mercator" not in method and "gauss" not in method:
        return None
    params = {p.name.lower(): float(p.value) for p in crs.coordinate_operation.params}
    lon0 = params.get("longitude of natural origin")
    fe = params.get("false easting")
    scale = params.get("scale factor at natural origin", 1.0)
    if lon0 is None or fe is None or not math.isclose(scale, 1.0, abs_tol=1e-9):
        return None
    if params.get("false northing", 0.0) != 0.0 or params.get("latitude of natural origin", 0.0):
        return None
    unit = crs.axis_info[0].unit_name if crs.axis_info else "metre"
    datum = _datum_of(crs)
    if datum is None or unit not in ("metre", "meter"):
        return None
    prefix, rest = divmod(fe, 1_000_000)
    if rest != 500_000:
        return None
    try:
        if prefix:
            n = int(prefix)
            if 25 <= n <= 45 and math.isclose(lon0, 3 * n):
                return zone_for(n, 3, True, datum)
            if 13 <= n <= 23 and math.isclose(lon0, 6 * n - 3):
                return zone_for(n, 6, True, datum)
            return None
        if math.isclose(lon0 % 3, 0.0):
            return zone_for(round(lon0 / 3), 3, False, datum)
    except ZoneError:
        return None
    return None


def epsg_from_crs(crs: CRS) -> int | None:
    """EPSG code of a file's CRS (pyproj identification with a minimum confidence)."""
    try:
        epsg = crs.to_epsg(min_confidence=MIN_EPSG_CONFIDENCE)
    except CRSError:
        epsg = None
    if epsg is not None:
        return int(epsg)
    zone = gk_zone_from_crs(crs)
    if zone is not None:
        return zone.epsg
    if crs.is_geographic and _datum_of(crs) is Datum.CGCS2000:
        return 4490
    return None


@lru_cache(maxsize=128)
def is_geographic(epsg: int) -> bool:
    return bool(CRS.from_epsg(epsg).is_geographic)


def check_target_srid(srid: int) -> int:
    """Validate a caller-supplied srid: it must be a projected CRS in the PROJ database."""
    try:
        crs = CRS.from_epsg(srid)
    except CRSError as exc:
        raise crs_unknown(
            f"EPSG:{srid}不在坐标系数据库中", f"EPSG:{srid} is not in the CRS database"
        ) from exc
    if not crs.is_projected:
        raise crs_unknown(
            f"EPSG:{srid}不是投影坐标系，请指定高斯-克吕格投影坐标系",
            f"EPSG:{srid} is not a projected CRS; give a Gauss-Kruger projected CRS",
        )
    return srid


def zone_from_eastings(
    eastings: Iterable[float], datum: Datum = Datum.CGCS2000, width: int | None = None
) -> GaussKrugerZone | None:
    """Zone from zone-prefixed eastings (all must agree); None if they carry no prefix."""
    values = np.asarray(list(eastings), dtype=np.float64)
    if values.size == 0:
        return None
    prefixes = set(np.floor(values / 1_000_000).astype(np.int64).tolist())
    if prefixes == {0}:
        return None
    if len(prefixes) > 1:
        raise SurveyFormatError(
            "CRS_MIXED",
            f"横坐标的带号不一致（{sorted(prefixes)}），同一文件中混有多个投影带",
            f"eastings carry different zone prefixes ({sorted(prefixes)}): "
            "several zones in one file",
            prefixes=sorted(prefixes),
        )
    sample = float(values[0])
    try:
        return zone_from_easting(sample, width=width, datum=datum)
    except ZoneError as exc:
        if exc.code == "ZONE_WIDTH_MISMATCH":
            raise SurveyFormatError("CRS_ZONE_MISMATCH", exc.message_zh, exc.message_en) from exc
        raise SurveyFormatError(
            "COORDINATE_OUT_OF_RANGE",
            f"横坐标{sample:.3f}超出中国高斯-克吕格投影范围（{exc.message_zh}）",
            f"easting {sample:.3f} is outside China's Gauss-Kruger range ({exc.message_en})",
            location=(sample, None),
        ) from exc


def reproject_features(features: list[SurveyFeature], src: int, dst: int) -> None:
    """Project every feature geometry in place from EPSG ``src`` to EPSG ``dst``."""
    if src == dst or not features:
        return
    transformer = get_transformer(src, dst)

    def func(coords: np.ndarray) -> np.ndarray:
        if len(coords) == 1:  # pyproj treats 1-element arrays as deprecated scalars
            x, y = transformer.transform(float(coords[0, 0]), float(coords[0, 1]))
            return np.array([[x, y]], dtype=np.float64)
        xs, ys = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([xs, ys])

    geoms = np.array([f.geometry for f in features], dtype=object)
    for f, geom in zip(features, shapely.transform(geoms, func), strict=True):
        f.geometry = geom


def reprojected_warning(log: IssueLog, src: int, dst: int) -> None:
    log.warning(
        "CRS_REPROJECTED",
        f"坐标已从EPSG:{src}转换到指定的EPSG:{dst}",
        f"coordinates were projected from EPSG:{src} to the requested EPSG:{dst}",
    )


def inferred_zone_warning(
    log: IssueLog, zone: GaussKrugerZone, what: str, what_en: str | None = None
) -> None:
    """The zone came from the easting prefix; the datum (not encoded there) is assumed."""
    log.warning(
        "CRS_ASSUMED",
        f"{what}没有坐标系信息，根据横坐标带号前缀{zone.zone}按{zone.datum.value} "
        f"{zone.width}度带第{zone.zone}带(EPSG:{zone.epsg})处理",
        f"{what_en or what} carries no CRS; from the easting prefix {zone.zone} it is "
        f"read as {zone.datum.value} {zone.width}-degree zone {zone.zone} "
        f"(EPSG:{zone.epsg})",
    )


def zone_of_srid(srid: int | None) -> GaussKrugerZone | None:
    if srid is None:
        return None
    try:
        return zone_from_epsg(srid)
    except ZoneError:
        return None
