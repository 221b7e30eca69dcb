"""国土资源部 coordinate TXT (报盘格式): ``[属性描述]`` + ``[地块坐标]``.

Each parcel starts with a header line ending in ``@``::

    界址点数,地块面积(公顷),地块编号,地块名称,记录图形属性,图幅号,地块用途,地类编码,@

followed by ``点号,圈号,X(northing),Y(easting)`` lines.  圈号 1 is the outer ring; higher
numbers are holes (or further parts when outside ring 1).  The zone comes from 带号, or from
the eastings' zone prefix when 带号 is empty.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from cadastre.ingest.checks import ensure_finite
from cadastre.ingest.crsinfo import (
    check_target_srid,
    crs_unknown,
    datum_from_name,
    reproject_features,
    reprojected_warning,
    zone_from_eastings,
)
from cadastre.ingest.model import IssueLog, SurveyDataset, SurveyFeature, SurveyFormatError
from cadastre.ingest.rings import (
    Pending,
    Ring,
    RingPoint,
    assemble_polygon,
    clean_ring,
    point_features,
)
from cadastre.ingest.sniff import decode_text
from gis.crs import Datum, GaussKrugerZone, ZoneError, zone_for

__all__ = ["read_coord_txt", "HECTARE"]

HECTARE = 10_000.0
_HEADER_FIELDS = (
    "point_count",
    "area_ha",
    "parcel_no",
    "name",
    "geometry_type",
    "map_sheet",
    "usage",
    "land_use",
)
_SECTION = re.compile(r"^\s*\[(.+?)\]\s*$")
_LEGACY_KEYS = {"分带": "几度分带"}
_PARCEL_CODE_SHAPE = re.compile(r"\d{12}[A-Za-z]{2}\d{5}")


@dataclass
class _Parcel:
    line: int
    header: dict[str, str]
    extra: list[str]
    points: list[tuple[RingPoint, int]] = field(default_factory=list)  # (point, ring no.)


def _parse_header(fields: list[str], line: int) -> _Parcel:
    values = [f.strip() for f in fields[:-1]]  # drop the "@"
    header = {key: values[i] if i < len(values) else "" for i, key in enumerate(_HEADER_FIELDS)}
    return _Parcel(line, header, values[len(_HEADER_FIELDS) :])


def _parse_number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def _parse_lines(text: str, log: IssueLog) -> tuple[dict[str, str], list[_Parcel], bool]:
    attributes: dict[str, str] = {}
    parcels: list[_Parcel] = []
    section: str | None = None
    seen_coords = False
    orphan_reported = False
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().replace("，", ",")  # a full-width comma typed in an editor
        if not line:
            continue
        m = _SECTION.match(line)
        if m:
            section = m.group(1).strip()
            seen_coords = seen_coords or section == "地块坐标"
            continue
        if section == "属性描述":
            key, _, value = line.partition("=")
            key = _LEGACY_KEYS.get(key.strip(), key.strip())
            attributes[key] = value.strip()
            continue
        if section != "地块坐标":
            continue
        fields = line.split(",")
        if fields[-1].strip() == "@":
            parcels.append(_parse_header(fields, no))
            continue
        parsed = _parse_point(fields)
        if parsed is None:
            log.error(
                "LINE_UNPARSEABLE",
                f"第{no}行无法解析为界址点：{line[:60]}",
                f"line {no} is not a boundary point line: {line[:60]}",
            )
            continue
        name, ring, north, east = parsed
        if not math.isfinite(north) or not math.isfinite(east):
            ensure_finite(np.array([[east, north]]), f"line {no}")
        if not parcels:
            if not orphan_reported:
                log.error(
                    "PARCEL_HEADER_MISSING",
                    f"第{no}行的界址点之前没有以@结尾的地块头行，已忽略",
                    f"points before any parcel header line (ending in @) were ignored (line {no})",
                )
                orphan_reported = True
            continue
        parcels[-1].points.append((RingPoint(name, east, north, f"line {no}"), ring))
    return attributes, parcels, seen_coords


def _parse_point(fields: list[str]) -> tuple[str, int, float, float] | None:
    if len(fields) < 4:
        return None
    ring_text = fields[1].strip() or "1"
    north, east = _parse_number(fields[2]), _parse_number(fields[3])
    if north is None or east is None or not re.fullmatch(r"\d+", ring_text):
        return None
    return fields[0].strip(), int(ring_text), north, east


def _resolve_zone(
    attrs: dict[str, str], eastings: list[float], srid: int | None, log: IssueLog
) -> tuple[int, GaussKrugerZone | None]:
    """EPSG of the file's coordinates, from 坐标系/几度分带/带号 or the easting prefix."""
    system = attrs.get("坐标系", "")
    datum = datum_from_name(system)
    if datum is None and system:
        raise crs_unknown(
            f"无法识别的坐标系“{system}”（支持2000国家大地坐标系、西安80、北京54）",
            f"unrecognised 坐标系 '{system}' (CGCS2000, Xi'an 80 and Beijing 54 are supported)",
        )
    if datum is None:
        datum = Datum.CGCS2000
        log.warning(
            "CRS_ASSUMED",
            "未填写坐标系，按2000国家大地坐标系处理",
            "坐标系 is empty; CGCS2000 assumed",
        )
    width_text = re.sub(r"[^\d]", "", attrs.get("几度分带", ""))
    width = int(width_text) if width_text in ("3", "6") else None
    prefixed = zone_from_eastings(eastings, datum, width)
    zone_text = attrs.get("带号", "").strip()
    if zone_text:
        if not re.fullmatch(r"\d{1,2}", zone_text):
            raise crs_unknown(f"带号“{zone_text}”不是有效的带号", f"invalid 带号 '{zone_text}'")
        n = int(zone_text)
        if prefixed is not None:
            if prefixed.zone != n:
                raise SurveyFormatError(
                    "CRS_ZONE_MISMATCH",
                    f"带号为{n}，但横坐标前缀为{prefixed.zone}",
                    f"带号 is {n} but the eastings carry zone prefix {prefixed.zone}",
                )
            return prefixed.epsg, prefixed
        try:
            zone = zone_for(n, width or (3 if 25 <= n <= 45 else 6), prefixed=False, datum=datum)
        except ZoneError as exc:
            raise crs_unknown(exc.message_zh, exc.message_en) from exc
        return zone.epsg, zone
    if prefixed is not None:
        log.warning(
            "ZONE_INFERRED",
            f"带号为空，已根据横坐标前缀确定为{prefixed.width}度带第{prefixed.zone}带",
            f"带号 is empty; zone {prefixed.zone} ({prefixed.width}-degree) was taken "
            "from the easting prefix",
        )
        return prefixed.epsg, prefixed
    if srid is not None:
        return srid, None
    raise crs_unknown(
        "带号为空且横坐标不含带号前缀，无法确定投影带：请填写带号或指定坐标系",
        "带号 is empty and the eastings carry no zone prefix: fill in 带号 or pass the srid",
    )


def _parcel_properties(p: _Parcel, index: int, log: IssueLog) -> dict[str, object]:
    h = p.header
    area_ha = _parse_number(h["area_ha"]) if h["area_ha"] else None
    props: dict[str, object] = {
        "parcel_no": h["parcel_no"] or None,
        "name": h["name"] or None,
        "declared_area": area_ha * HECTARE if area_ha is not None else None,
        "map_sheet": h["map_sheet"] or None,
        "usage": h["usage"] or None,
        "land_use": h["land_use"] or None,
        "parcel_seq": index,
        "raw": {**h, "extra": p.extra},
    }
    if _PARCEL_CODE_SHAPE.fullmatch(h["parcel_no"]):
        props["parcel_code"] = h["parcel_no"]  # validated later with the other codes
    if h["area_ha"] and area_ha is None:
        log.warning(
            "AREA_UNPARSEABLE",
            f"地块面积“{h['area_ha']}”不是数字（第{p.line}行）",
            f"parcel area '{h['area_ha']}' is not a number (line {p.line})",
        )
    return props


def _group_rings(p: _Parcel, label: str, pending: Pending) -> list[Ring]:
    by_ring: dict[int, list[RingPoint]] = {}
    for point, ring_no in p.points:
        by_ring.setdefault(ring_no, []).append(point)
    return [clean_ring(n, pts, label, pending) for n, pts in by_ring.items()]


def _count_warning(p: _Parcel, label: str, pending: Pending) -> None:
    declared = _parse_number(p.header["point_count"]) if p.header["point_count"] else None
    n = len(p.points)
    if declared is not None and int(declared) not in (n, n - 1, n + 1):
        pending.add(
            "POINT_COUNT_MISMATCH",
            "warning",
            f"{label}头行的界址点数为{int(declared)}，实际有{n}个点（第{p.line}行）",
            f"{label}: the header says {int(declared)} points but {n} follow (line {p.line})",
        )


def read_coord_txt(data: bytes, *, srid: int | None = None) -> SurveyDataset:
    text, encoding = decode_text(data)
    log = IssueLog()
    attrs, parcels, seen_coords = _parse_lines(text, log)
    if not seen_coords or not parcels:
        raise SurveyFormatError(
            "TXT_NO_PARCELS",
            "坐标TXT中没有[地块坐标]节或没有以@结尾的地块头行",
            "the coordinate TXT has no [地块坐标] section or no parcel header line ending in @",
        )
    eastings = [pt.east for p in parcels for pt, _ in p.points]
    source_epsg, zone = _resolve_zone(attrs, eastings, srid, log)
    target = check_target_srid(srid) if srid is not None else source_epsg
    features: list[SurveyFeature] = []
    for k, p in enumerate(parcels, start=1):
        label = p.header["name"] or p.header["parcel_no"] or f"地块{k}"
        pending = Pending()
        _count_warning(p, label, pending)
        rings = _group_rings(p, label, pending)
        props = _parcel_properties(p, k, log)
        lowest = min((n for _, n in p.points), default=None)
        has_outer = any(r.number == lowest and r.usable for r in rings)
        geometry = assemble_polygon(rings) if has_outer else None
        ref = f"{label} (parcel {k}, line {p.line})"
        parcel_index: int | None = None
        if geometry is not None:
            parcel_index = len(features)
            features.append(SurveyFeature("parcel", geometry, props, ref))
        elif not pending.items:
            pending.add(
                "PARCEL_NO_POINTS",
                "error",
                f"{label}没有界址点（第{p.line}行）",
                f"{label} has no boundary points (line {p.line})",
            )
        pending.flush(log, parcel_index)
        code = props.get("parcel_code")
        parcel_ref = code if isinstance(code, str) else parcel_index
        features.extend(point_features(rings, parcel_ref, label, f"parcel {k}"))
    if srid is not None and srid != source_epsg:
        reproject_features(features, source_epsg, srid)
        reprojected_warning(log, source_epsg, srid)
    metadata = {
        "encoding": encoding,
        "attributes": attrs,
        "source_srid": source_epsg,
        "zone": None
        if zone is None
        else {
            "zone": zone.zone,
            "width": zone.width,
            "prefixed": zone.prefixed,
            "datum": zone.datum.value,
        },
        "parcel_count": len(parcels),
    }
    return SurveyDataset("cn_coord_txt", target, features, log.issues, metadata)
