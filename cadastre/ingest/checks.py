"""Checks every reader's output goes through: coordinates, geometry types, codes, duplicates.

File-level failures (non-finite or out-of-range coordinates) raise :class:`SurveyFormatError`;
problems of single features become :class:`ReaderIssue` entries.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from cadastre.codes import (
    COLLECTIVE_ONLY_RIGHT_CHARS,
    county_code_problem,
    county_of,
    validate_parcel_code,
    validate_unit_code,
)
from cadastre.ingest.crsinfo import zone_of_srid
from cadastre.ingest.model import IssueLog, SurveyDataset, SurveyFeature, SurveyFormatError

__all__ = [
    "NORTHING_LIMITS",
    "ensure_finite",
    "check_ranges",
    "check_all_ranges",
    "coerce_geometry",
    "ensure_not_empty",
    "finalize",
    "derive_floors",
]

#: Northings of China in Gauss-Kruger projections (曾母暗沙 ~4°N to 漠河 ~53.5°N), metres.
NORTHING_LIMITS = (300_000.0, 6_000_000.0)
#: Largest distance of an easting from its zone's false easting (a 6° zone edge is ~340 km).
MAX_EASTING_OFFSET = 400_000.0
#: Sanity bound for projected CRSs that are not Chinese Gauss-Kruger zones.
MAX_ABS_COORDINATE = 1.0e8


def ensure_finite(xy: np.ndarray, where: str) -> None:
    """Raise COORDINATE_NOT_FINITE when an (n, 2) array holds NaN or infinity."""
    bad = ~np.isfinite(xy).all(axis=1) if xy.size else np.zeros(0, dtype=bool)
    if bad.any():
        raise SurveyFormatError(
            "COORDINATE_NOT_FINITE",
            f"坐标含有非数值（NaN或无穷大）：{where}",
            f"a coordinate is not a finite number (NaN or infinity): {where}",
            where=where,
        )


def _out_of_range(x: float, y: float, where: str, zh: str, en: str) -> SurveyFormatError:
    return SurveyFormatError(
        "COORDINATE_OUT_OF_RANGE",
        f"坐标({x:.3f}, {y:.3f})超出范围：{zh}（{where}）",
        f"coordinate (E {x:.3f}, N {y:.3f}) out of range: {en} ({where})",
        location=(x, y),
        where=where,
    )


def check_ranges(xy: np.ndarray, srid: int | None, where: str) -> None:
    """Raise COORDINATE_OUT_OF_RANGE for eastings/northings outside China's GK ranges."""
    if xy.size == 0:
        return
    ensure_finite(xy, where)
    huge = np.abs(xy).max(axis=1) > MAX_ABS_COORDINATE
    if huge.any():
        x, y = xy[np.argmax(huge)]
        raise _out_of_range(x, y, where, "数值过大", "value too large")
    zone = zone_of_srid(srid)
    if zone is None:
        return
    lo, hi = NORTHING_LIMITS
    bad_n = (xy[:, 1] < lo) | (xy[:, 1] > hi)
    if bad_n.any():
        x, y = xy[np.argmax(bad_n)]
        raise _out_of_range(
            x,
            y,
            where,
            f"纵坐标(北)应在{lo:.0f}–{hi:.0f}之间",
            f"northing must lie in {lo:.0f}-{hi:.0f}",
        )
    bad_e = np.abs(xy[:, 0] - zone.false_easting) > MAX_EASTING_OFFSET
    if bad_e.any():
        x, y = xy[np.argmax(bad_e)]
        raise _out_of_range(
            x,
            y,
            where,
            f"横坐标(东)不属于EPSG:{srid}（{zone.width}度带第{zone.zone}带）",
            f"easting does not belong to EPSG:{srid} ({zone.width}-degree zone {zone.zone})",
        )


def _bad_coordinates(xy: np.ndarray, srid: int | None) -> np.ndarray:
    """Per coordinate: would ``check_ranges`` object to it? (The same tests, vectorised.)"""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(xy).all(axis=1)
        bad |= np.abs(xy).max(axis=1) > MAX_ABS_COORDINATE
        zone = zone_of_srid(srid)
        if zone is not None:
            lo, hi = NORTHING_LIMITS
            bad |= (xy[:, 1] < lo) | (xy[:, 1] > hi)
            bad |= np.abs(xy[:, 0] - zone.false_easting) > MAX_EASTING_OFFSET
    return bad


def check_all_ranges(features: Sequence[SurveyFeature], srid: int | None) -> None:
    """``check_ranges`` of every feature in order, with all coordinates tested at once: the
    first feature holding a bad coordinate raises exactly as its own check would."""
    if not features:
        return
    geoms = np.array([f.geometry for f in features], dtype=object)
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    bad = _bad_coordinates(xy, srid)
    if bad.any():
        first = int(owner[bad].min())
        check_ranges(xy[owner == first], srid, _where(features[first]))


def coerce_geometry(kind: str, geom: BaseGeometry | None) -> BaseGeometry | None:
    """The geometry as the kind needs it (2D Polygon/MultiPolygon or Point), or None."""
    if geom is None or geom.is_empty:
        return None
    geom = shapely.force_2d(geom)
    if kind == "boundary_point":
        if isinstance(geom, Point):
            return geom
        if geom.geom_type == "MultiPoint" and len(geom.geoms) == 1:
            return geom.geoms[0]
        return None
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    if geom.geom_type == "GeometryCollection":
        polys = [g for g in geom.geoms if isinstance(g, Polygon)]
        if polys and len(polys) == len(geom.geoms):
            return MultiPolygon(polys) if len(polys) > 1 else polys[0]
    return None


def _where(feature: SurveyFeature) -> str:
    return feature.ref


# A parcel code every rule of ``validate_parcel_code`` accepts, apart from the county part
# (checked once per county) and the collective-only right types A and C (need J).
_PARCEL_CODE_SHAPE = re.compile(r"[0-9]{12}[GJZ][ABSXCDEFGHWY][0-9]{5}")


def _parcel_code_ok(code: str, counties: dict[str, bool]) -> bool:
    """True only for codes ``validate_parcel_code`` finds nothing wrong with (a fast path for
    the usual, valid codes; anything else goes through the full validation)."""
    if not _PARCEL_CODE_SHAPE.fullmatch(code) or code[14:19] == "00000":
        return False
    if code[13] in COLLECTIVE_ONLY_RIGHT_CHARS and code[12] != "J":
        return False
    county = county_of(code)
    if county not in counties:
        counties[county] = county_code_problem(county) is None
    return counties[county]


def _check_codes(features: Sequence[SurveyFeature], log: IssueLog) -> None:
    counties: dict[str, bool] = {}
    for i, f in enumerate(features):
        code = f.properties.get("parcel_code")
        if (isinstance(code, str) and code and not _parcel_code_ok(code, counties)
                and validate_parcel_code(code)):
            err = validate_parcel_code(code)[0]
            log.error(
                "PARCEL_CODE_INVALID",
                f"宗地代码{code}无效：{err.message_zh}",
                f"invalid parcel code {code}: {err.message_en}",
                feature=i,
            )
        unit = f.properties.get("unit_code")
        if isinstance(unit, str) and unit and validate_unit_code(unit):
            err = validate_unit_code(unit)[0]
            log.error(
                "UNIT_CODE_INVALID",
                f"不动产单元代码{unit}无效：{err.message_zh}",
                f"invalid unit code {unit}: {err.message_en}",
                feature=i,
            )


def _check_duplicates(features: Sequence[SurveyFeature], log: IssueLog) -> None:
    keys = {"parcel": "parcel_code", "unit": "unit_code"}
    first: dict[tuple[str, str], int] = {}            # (kind, code) -> its first feature
    more: dict[tuple[str, str], list[int]] = {}       # codes seen again -> all their features
    for i, f in enumerate(features):
        key = keys.get(f.kind)
        if key is not None:
            value = f.properties.get(key)
            if isinstance(value, str) and value:
                k = (f.kind, value)
                if k in more:
                    more[k].append(i)
                elif k in first:
                    more[k] = [first[k], i]
                else:
                    first[k] = i
    for kind, code, zh, en in (
        ("parcel", "DUPLICATE_PARCEL_CODE", "宗地代码", "parcel code"),
        ("unit", "DUPLICATE_UNIT_CODE", "不动产单元代码", "unit code"),
    ):
        # in the order the codes first occur, as a scan of the features finds them
        for (seen_kind, value), where in sorted(more.items(), key=lambda kv: kv[1][0]):
            if seen_kind != kind:
                continue
            refs = "; ".join(features[i].ref for i in where)
            for i in where:
                c = features[i].geometry.representative_point()
                log.error(
                    code,
                    f"{zh}{value}在文件中重复出现（{refs}）",
                    f"{en} {value} occurs more than once in the file ({refs})",
                    feature=i,
                    location=(c.x, c.y),
                )


def _check_validity(features: Sequence[SurveyFeature], log: IssueLog) -> None:
    areas = [i for i, f in enumerate(features) if f.kind != "boundary_point"]
    valid = shapely.is_valid(np.array([features[i].geometry for i in areas], dtype=object))
    for i in (i for i, ok in zip(areas, valid.tolist(), strict=True) if not ok):
        f = features[i]
        reason = shapely.is_valid_reason(f.geometry)
        c = f.geometry.representative_point() if not f.geometry.is_empty else None
        log.error(
            "GEOMETRY_INVALID",
            f"图形无效（{reason}）：{f.ref}",
            f"invalid geometry ({reason}): {f.ref}",
            feature=i,
            location=(c.x, c.y) if c is not None and not c.is_empty else None,
        )


def derive_floors(features: list[SurveyFeature], source: str) -> int:
    """Add one floor feature per (building, floor) from the unit footprints; returns the count.

    Used by floor-plan readers that only carry units.  The floor's base elevation and storey
    height are taken from its units when they agree.
    """
    groups: dict[tuple[str | None, int], list[SurveyFeature]] = defaultdict(list)
    for f in features:
        floor_no = f.properties.get("floor_no")
        if f.kind == "unit" and isinstance(floor_no, int):
            groups[(f.properties.get("building_code"), floor_no)].append(f)
    for (building, floor_no), units in sorted(
        groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])
    ):
        footprint = shapely.union_all([u.geometry for u in units])
        props: dict[str, object] = {
            "building_code": building,
            "floor_no": floor_no,
            "derived_from_units": len(units),
            "raw": {},
        }
        for key, sources in (
            ("base_elevation", ("base_elevation",)),
            ("storey_height", ("storey_height", "height")),
        ):
            for src in sources:  # the first source the units agree on
                values = {u.properties.get(src) for u in units} - {None}
                if len(values) == 1:
                    props[key] = values.pop()
                    break
        features.append(
            SurveyFeature(
                "floor",
                footprint,
                props,
                f"floor {floor_no} (derived from {len(units)} units, {source})",
            )
        )
    return len(groups)


def ensure_not_empty(dataset: SurveyDataset) -> None:
    """SURVEY_EMPTY when the dataset has no feature at all."""
    if not dataset.features:
        raise SurveyFormatError(
            "SURVEY_EMPTY",
            "文件中没有可读取的宗地、界址点、房屋或户",
            "the file holds no readable parcel, boundary point, building, floor or unit",
            issues=[i.code for i in dataset.issues],
        )


def finalize(dataset: SurveyDataset, ranges: bool = True) -> SurveyDataset:
    """Run the common checks, append their issues to the dataset, and return it.
    ``ranges=False``: the coordinates were range-checked already (survey staging checks each
    batch before it is sent)."""
    log = IssueLog()
    if ranges:
        check_all_ranges(dataset.features, dataset.srid)
    _check_codes(dataset.features, log)
    _check_duplicates(dataset.features, log)
    _check_validity(dataset.features, log)
    dataset.issues.extend(log.issues)
    ensure_not_empty(dataset)
    return dataset
