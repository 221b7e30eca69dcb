"""Laying a local-coordinate floor plan (DXF, IFC) on its registered building.

By control points (local -> projected; a similarity fitted by least squares) or by fitting the
plan's outline to the building's registered footprint. The transform, its residual and the
tolerance go into the report; a residual above the tolerance, a symmetric outline that fits in
several ways, or an unknown building refuses the placement (nothing is staged).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import shapely
from shapely.geometry import MultiPolygon, Polygon

from cadastre.ingest.model import SurveyDataset, SurveyFormatError
from cadastre.survey.options import Anchor
from gis.similarity import Fit, Similarity, fit_outline, fit_points

__all__ = ["place_on_building", "plan_outline"]

_PLAN_KINDS = ("building", "floor", "unit")


def _refused(code: str, zh: str, en: str, **details: Any) -> SurveyFormatError:
    return SurveyFormatError(code, zh, en, **details)


def _largest(geom: Any) -> Polygon | None:
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]
    if not parts:
        return None
    return Polygon(max(parts, key=lambda p: p.area).exterior)    # holes filled


def plan_outline(data: SurveyDataset) -> Polygon | None:
    """The plan's outline: its building outline, else its largest floor (the union of that
    floor's units, slivers between them closed), filled."""
    feats = [f for f in data.features if f.kind in _PLAN_KINDS]
    buildings = [f.geometry for f in feats if f.kind == "building"]
    if buildings:
        return _largest(shapely.union_all(buildings))
    by_floor: dict[Any, list[Any]] = {}
    for f in feats:
        by_floor.setdefault(f.properties.get("floor_no"), []).append(f.geometry)
    best: Polygon | None = None
    for geoms in by_floor.values():
        merged = shapely.union_all(geoms, grid_size=1e-4).buffer(0.02, join_style="mitre")
        outline = _largest(merged.buffer(-0.02, join_style="mitre"))
        if outline is not None and (best is None or outline.area > best.area):
            best = outline
    return best


def _footprint(conn: psycopg.Connection, code: str) -> tuple[Polygon, int]:
    row = conn.execute("SELECT ST_AsBinary(geom), srid FROM cad.building WHERE building_code = %s"
                       " AND valid_to IS NULL", (code,)).fetchone()
    if row is None:
        raise _refused("ANCHOR_BUILDING_NOT_FOUND",
                       f"没有现势的自然幢{code}：请核对自然幢代码",
                       f"no current building {code}: check the building code")
    geom = shapely.from_wkb(bytes(row[0]))
    poly = _largest(geom) if isinstance(geom, MultiPolygon) else Polygon(geom.exterior)
    assert poly is not None
    return poly, int(row[1])


def _fit(anchor: Anchor, data: SurveyDataset, footprint: Polygon) -> tuple[Fit, str]:
    if anchor.points:
        local = np.array([p[0] for p in anchor.points], dtype=float)
        mapped = np.array([p[1] for p in anchor.points], dtype=float)
        try:
            return fit_points(local, mapped), "control_points"
        except ValueError:
            raise _refused("ANCHOR_INVALID", "控制点重合，无法定位",
                           "the control points coincide; the plan cannot be placed") from None
    outline = plan_outline(data)
    if outline is None or outline.area <= 0:
        raise _refused("PLAN_OUTLINE_MISSING", "图中没有可用于按轮廓定位的房屋/层/户面",
                       "the plan has no building, floor or unit polygons to fit to the outline")
    # fitted around the footprint's centre: small numbers, well conditioned
    cx, cy = footprint.centroid.coords[0]
    centred = shapely.transform(footprint, lambda xy: xy - (cx, cy))
    fit = fit_outline(outline, centred, anchor.tolerance)
    t = fit.transform
    moved = Similarity(t.scale, t.rotation, t.tx + cx, t.ty + cy)
    return Fit(moved, fit.rms, fit.max, fit.alternatives), "outline"


def place_on_building(conn: psycopg.Connection, data: SurveyDataset, anchor: Anchor
                      ) -> dict[str, Any]:
    """Transform every feature of ``data`` onto the anchor building (in place; ``data.srid``
    becomes the building's) and return the placement for the report."""
    footprint, srid = _footprint(conn, anchor.building)
    fit, method = _fit(anchor, data, footprint)
    placement = {"method": method, "building": anchor.building, "srid": srid,
                 **fit.transform.as_dict(), "residual_m": round(fit.rms, 4),
                 "residual_max_m": round(fit.max, 4), "tolerance_m": anchor.tolerance}
    if method == "control_points":
        placement["points"] = len(anchor.points)
    if fit.rms > anchor.tolerance:
        raise _refused(
            "PLACEMENT_RESIDUAL_TOO_LARGE",
            f"定位残差{fit.rms:.3f}米超过容差{anchor.tolerance}米：请核对自然幢代码和控制点，"
            "或检查平面图是否为该幢",
            f"the placement's residual of {fit.rms:.3f} m exceeds the tolerance of "
            f"{anchor.tolerance} m: check the building code and control points, or whether the "
            "plan is of this building", placement=placement)
    if fit.alternatives:
        raise _refused(
            "PLACEMENT_AMBIGUOUS",
            f"平面图轮廓对称，可按{fit.alternatives + 1}种方向放到该幢上：请改用两个控制点定位",
            f"the outline is symmetric and fits the building in {fit.alternatives + 1} ways: "
            "place the plan by two control points instead", placement=placement)
    for f in data.features:
        f.geometry = fit.transform.apply(f.geometry)
    data.srid = srid
    return placement
