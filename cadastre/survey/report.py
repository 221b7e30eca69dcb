"""The parts of a validation report: findings (with the file's own reference and what to do),
areas of every parcel, building and unit, and the report as a map layer."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import shapely

from cadastre.survey.advice import advice

__all__ = ["reader_issues", "counts", "point_lonlat", "wkb_to_lonlat", "report_geojson",
           "feature_areas", "with_advice", "AREA_ITEMS"]

#: Features listed one by one with their areas in a report (the totals cover all of them).
AREA_ITEMS = 1000


def reader_issues(data: Any) -> list[dict[str, Any]]:
    out = []
    for issue in data.issues:
        ref = data.features[issue.feature].ref if issue.feature is not None else None
        out.append({"code": issue.code, "severity": issue.severity, "message": issue.message,
                    "subject": [ref] if ref else [], "measure": None,
                    "geometry": point_lonlat(data.srid, issue.location)})
    return out


def counts(data: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in data.features:
        out[f.kind] = out.get(f.kind, 0) + 1
    return out


def point_lonlat(srid: int | None, xy: tuple[float, float] | None) -> dict[str, Any] | None:
    if srid is None or xy is None:
        return None
    from gis.crs import to_wgs84

    lon, lat = to_wgs84(srid, [xy[0]], [xy[1]])
    return {"type": "Point", "coordinates": [round(float(lon[0]), 7), round(float(lat[0]), 7)]}


def wkb_to_lonlat(geom_wkb: bytes | None) -> dict[str, Any] | None:
    if not geom_wkb:
        return None
    from gis.crs import project_geometry

    g = project_geometry(shapely.from_wkb(geom_wkb), 3857, 4326)
    return json.loads(shapely.to_geojson(shapely.set_precision(g, 1e-7)))


def report_geojson(report: dict[str, Any]) -> dict[str, Any]:
    """The report as a GeoJSON layer the viewer draws (errors and warnings at their places)."""
    feats = []
    for severity, items in (("error", report.get("errors", [])),
                            ("warning", report.get("warnings", []))):
        for i, item in enumerate(items):
            feats.append({"type": "Feature", "id": f"{severity}-{i}",
                          "geometry": item.get("geometry"),
                          "properties": {"code": item["code"], "severity": severity,
                                         "message": item["message"],
                                         "subject": item.get("subject", []),
                                         "measure": item.get("measure"),
                                         "advice": item.get("advice")}})
    return {"type": "FeatureCollection", "features": feats}


_AREAS = """
SELECT kind, ref, coalesce(props->>'parcel_code', props->>'building_code', props->>'unit_code'),
       ST_Area(geom),
       CASE WHEN jsonb_typeof(props->coalesce(
                CASE kind WHEN 'unit' THEN 'building_area' ELSE 'declared_area' END)) = 'number'
            THEN (props->>CASE kind WHEN 'unit' THEN 'building_area'
                                    ELSE 'declared_area' END)::float8 END,
       (props->>'floor_no')
FROM cad.survey_feature
WHERE submission_id = %(sid)s AND kind IN ('parcel', 'building', 'floor', 'unit')
ORDER BY idx"""


def _r2(v: float | None) -> float | None:
    return None if v is None else round(float(v), 2)


def feature_areas(conn: psycopg.Connection, sid: uuid.UUID, srid: int | None
                  ) -> dict[str, Any]:
    """Computed area (m², in the survey's projected CRS) of every parcel, building, floor and
    unit, with the declared area where the file gives one (units: 建筑面积) and the
    difference; totals per kind, the first ``AREA_ITEMS`` features one by one."""
    totals: dict[str, dict[str, float]] = {}
    items: list[dict[str, Any]] = []
    for kind, ref, code, area, declared, floor in conn.execute(_AREAS, {"sid": sid}):
        t = totals.setdefault(kind, {"count": 0, "area_m2": 0.0, "declared_m2": 0.0})
        t["count"] += 1
        t["area_m2"] += area
        t["declared_m2"] += declared or 0.0
        if len(items) < AREA_ITEMS:
            item = {"kind": kind, "ref": ref, "code": code, "area_m2": _r2(area),
                    "declared_m2": _r2(declared),
                    "difference_m2": _r2(area - declared) if declared is not None else None}
            if floor is not None:
                item["floor_no"] = floor
            items.append(item)
    for t in totals.values():
        t["area_m2"] = round(t["area_m2"], 2)
        t["declared_m2"] = round(t["declared_m2"], 2)
    return {"srid": srid, "unit": "m²", "totals": totals, "items": items,
            "complete": sum(int(t["count"]) for t in totals.values()) <= AREA_ITEMS}


def with_advice(issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each finding once (by code and subject; an error wins over a warning of the same
    feature and code), with what to do about it."""
    seen: dict[tuple[str, tuple[str, ...]], int] = {}
    out: list[dict[str, Any]] = []
    for issue in issues:
        key = (issue["code"], tuple(issue.get("subject") or ()))
        if issue.get("subject") and key in seen:
            if issue["severity"] == "error" and out[seen[key]]["severity"] != "error":
                out[seen[key]] = {**issue, "advice": advice(issue["code"])}
            continue
        seen[key] = len(out)
        out.append({**issue, "advice": advice(issue["code"])})
    return out
