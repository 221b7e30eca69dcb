"""Boundary-point CSV (界址点成果表 exported as text): one row per point, in boundary order.

Columns are found by header name (Chinese or English): point number (点号/界址点号/point),
X = northing (X/纵坐标/北/northing), Y = easting (Y/横坐标/东/easting), optionally a parcel code
(宗地代码/地块编号/parcel) to hold several parcels and a ring number (圈号).  Files without a
header are read as ``点号,X,Y[,H]``, or as a CASS point file ``点号,编码,Y,X,H`` (east first).
Survey X/Y that look swapped raise AXES_SWAPPED: they are never swapped silently.
"""

from __future__ import annotations

import re

import numpy as np

from cadastre.ingest.checks import ensure_finite
from cadastre.ingest.crsinfo import (
    check_target_srid,
    crs_unknown,
    inferred_zone_warning,
    reproject_features,
    reprojected_warning,
    zone_from_eastings,
)
from cadastre.ingest.model import IssueLog, SurveyDataset, SurveyFeature, SurveyFormatError
from cadastre.ingest.rings import Pending, RingPoint, assemble_polygon, clean_ring, point_features
from cadastre.ingest.sniff import decode_text
from gis.crs import detect_swapped_axes

__all__ = ["read_point_csv"]

_ALIASES: dict[str, tuple[str, ...]] = {
    "point": ("点号", "界址点号", "点名", "jzdh", "point", "point_no", "pointno", "name", "id"),
    "north": ("x", "x坐标", "纵坐标", "北", "北坐标", "n", "northing", "north", "xzb", "xzbz"),
    "east": ("y", "y坐标", "横坐标", "东", "东坐标", "e", "easting", "east", "yzb", "yzbz"),
    "parcel": (
        "宗地代码",
        "宗地号",
        "地块编号",
        "地块号",
        "zddm",
        "parcel",
        "parcel_code",
        "parcel_no",
    ),
    "ring": ("圈号", "ring", "ring_no", "qh"),
}
_PARCEL_CODE_SHAPE = re.compile(r"\d{12}[A-Za-z]{2}\d{5}")


def _split(line: str) -> list[str]:
    for sep in ("\t", ",", ";", "，"):
        if sep in line:
            return [f.strip() for f in line.split(sep)]
    return line.split()


def _normal_header(name: str) -> str:
    name = re.sub(r"[（(][^）)]*[）)]", "", name).strip().lower()
    return name.replace(" ", "")


def _columns(header: list[str]) -> dict[str, int] | None:
    found: dict[str, int] = {}
    for i, name in enumerate(header):
        key = _normal_header(name)
        for role, names in _ALIASES.items():
            if key in names and role not in found:
                found[role] = i
                break
    return found if {"north", "east"} <= set(found) else None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _layout(rows: list[list[str]]) -> tuple[dict[str, int], int]:
    """Column roles and the index of the first data row."""
    header = _columns(rows[0])
    if header is not None:
        return header, 1
    first = rows[0]
    numeric = [_number(f) is not None for f in first]
    if len(first) == 5 and numeric[2] and numeric[3] and not numeric[1]:
        return {"point": 0, "east": 2, "north": 3}, 0  # CASS .dat: 点号,编码,Y(东),X(北),H
    if len(first) in (3, 4) and numeric[1] and numeric[2]:
        return {"point": 0, "north": 1, "east": 2}, 0
    raise SurveyFormatError(
        "CSV_COLUMNS_MISSING",
        "CSV中找不到X(纵坐标/北)和Y(横坐标/东)列：请使用表头 点号,X,Y",
        "the CSV has no recognisable X (northing) and Y (easting) columns: use the header "
        "point,X,Y (点号,X,Y)",
    )


def read_point_csv(data: bytes, *, srid: int | None = None, label: str = "CSV") -> SurveyDataset:
    text, encoding = decode_text(data)
    log = IssueLog()
    lines = [
        (n, ln)
        for n, ln in enumerate(text.splitlines(), 1)
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    rows = [_split(ln) for _, ln in lines]
    if not rows:
        raise SurveyFormatError("FILE_EMPTY", "CSV文件没有数据行", "the CSV has no data rows")
    cols, start = _layout(rows)
    groups: dict[str, dict[int, list[RingPoint]]] = {}
    for (no, _), row in zip(lines[start:], rows[start:], strict=True):
        cells = {role: row[i] for role, i in cols.items() if i < len(row)}
        get = cells.get
        north, east = _number(get("north", "")), _number(get("east", ""))
        ring_text = get("ring", "") or "1"
        if north is None or east is None or not ring_text.isdigit():
            log.error(
                "LINE_UNPARSEABLE",
                f"第{no}行无法解析为界址点坐标",
                f"line {no} holds no readable point coordinates",
            )
            continue
        ensure_finite(np.array([[east, north]]), f"line {no}")
        name = get("point", "") or str(no)
        parcel = get("parcel", "") or label
        groups.setdefault(parcel, {}).setdefault(int(ring_text), []).append(
            RingPoint(name, east, north, f"line {no}")
        )
    all_points = [p for rings in groups.values() for pts in rings.values() for p in pts]
    if not all_points:
        raise SurveyFormatError(
            "CSV_COLUMNS_MISSING",
            "CSV中没有可读取的坐标行",
            "the CSV has no readable coordinate rows",
        )
    norths = [p.north for p in all_points]
    easts = [p.east for p in all_points]
    if detect_swapped_axes(norths, easts):
        raise SurveyFormatError(
            "AXES_SWAPPED",
            "X列像是横坐标(东)、Y列像是纵坐标(北)：测量坐标X应为北、Y应为东，请核对列的顺序",
            "the X column looks like eastings and Y like northings: survey X is the northing "
            "and Y the easting; check the column order",
        )
    zone = zone_from_eastings(easts)
    if zone is not None:
        source = zone.epsg
        inferred_zone_warning(log, zone, "CSV")
    elif srid is not None:
        source = srid
    else:
        raise crs_unknown(
            "横坐标不含带号前缀，无法确定投影带：请指定坐标系(srid)",
            "the eastings carry no zone prefix: pass the srid",
        )
    features: list[SurveyFeature] = []
    for k, (parcel, rings_by_no) in enumerate(groups.items(), start=1):
        pending = Pending()
        rings = [
            clean_ring(n, pts, parcel, pending, warn_open=False)
            for n, pts in sorted(rings_by_no.items())
        ]
        lowest = min(rings_by_no)
        has_outer = any(r.number == lowest and r.usable for r in rings)
        geometry = assemble_polygon(rings) if has_outer else None
        is_code = bool(_PARCEL_CODE_SHAPE.fullmatch(parcel))
        props: dict[str, object] = {
            "parcel_code": parcel if is_code else None,
            "parcel_no": None if is_code else parcel,
            "parcel_seq": k,
            "raw": {"parcel": parcel},
        }
        index: int | None = None
        if geometry is not None:
            index = len(features)
            first_line = rings_by_no[lowest][0].where
            features.append(
                SurveyFeature("parcel", geometry, props, f"{parcel} (parcel {k}, {first_line})")
            )
        pending.flush(log, index)
        features.extend(point_features(rings, parcel if is_code else index, parcel, f"parcel {k}"))
    target = check_target_srid(srid) if srid is not None else source
    if target != source:
        reproject_features(features, source, target)
        reprojected_warning(log, source, target)
    meta = {"encoding": encoding, "columns": cols, "source_srid": source}
    return SurveyDataset("csv_points", target, features, log.issues, meta)
