"""IFC floor plans (optional, needs ifcopenshell): IfcSpace footprints per IfcBuildingStorey.

Each IfcSpace becomes a unit: its footprint is the union of its triangulated shape projected
on the horizontal plane (ifcopenshell.geom, world coordinates), its floor comes from the storey
it belongs to (name such as "3F"/"3层", else the storey's rank by elevation) and its base
elevation from the storey's Elevation.  The model is placed with IfcMapConversion and the EPSG
code of IfcProjectedCRS (IFC4); without them ``srid`` is needed and the model must already be in
projected coordinates.  Properties come from the space's Name/LongName, property sets
(BDCDYH, FWYT, ...) and Qto_SpaceBaseQuantities.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.polygon import orient

from cadastre.codes import building_code_of, is_unit_code_with_fixture
from cadastre.ingest.crsinfo import (
    check_target_srid,
    crs_unknown,
    reproject_features,
    reprojected_warning,
    zone_from_eastings,
)
from cadastre.ingest.fields import normalise_properties, parse_floor_label
from cadastre.ingest.model import IssueLog, SurveyDataset, SurveyFeature, SurveyFormatError

__all__ = ["read_ifc"]

_CODE28 = re.compile(r"\d{12}[A-Z]{2}\d{5}[FLQW]\d{8}")
_QUANTITIES = {
    "netfloorarea": "inner_area",
    "grossfloorarea": "building_area",
    "height": "height",
    "finishceilingheight": "height",
}


def _import_ifcopenshell() -> Any:
    try:
        import ifcopenshell
        import ifcopenshell.geom
        import ifcopenshell.util.element
        import ifcopenshell.util.unit
    except ImportError as exc:
        raise SurveyFormatError(
            "FORMAT_UNSUPPORTED",
            "服务器未安装ifcopenshell，无法读取IFC文件；请改用GeoJSON或DXF分层分户图",
            "IFC files need ifcopenshell, which is not installed on this server; upload the "
            "floor plans as GeoJSON or DXF instead",
        ) from exc
    return ifcopenshell


def _check_complete(path: Path) -> None:
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - 256))
        tail = fh.read()
    if b"END-ISO-10303-21" not in tail:
        raise SurveyFormatError(
            "FILE_TRUNCATED",
            "IFC文件不完整（缺少END-ISO-10303-21）",
            "the IFC file is truncated (no END-ISO-10303-21)",
        )


def _open(path: Path, ifcopenshell: Any) -> Any:
    try:
        return ifcopenshell.open(str(path))
    except (RuntimeError, OSError, ValueError) as exc:
        raise SurveyFormatError(
            "FILE_CORRUPT",
            "IFC文件已损坏，无法读取",
            f"the IFC file is damaged and cannot be read: {exc}",
        ) from exc


def _map_conversion(model: Any) -> tuple[Any, int | None]:
    try:
        conversions = model.by_type("IfcMapConversion")
    except RuntimeError:  # IFC2X3 has no such entity
        return None, None
    if not conversions:
        return None, None
    conv = conversions[0]
    target = getattr(conv, "TargetCRS", None)
    name = str(getattr(target, "Name", "") or "")
    m = re.search(r"EPSG\s*:?\s*(\d+)", name, re.I)
    return conv, int(m.group(1)) if m else None


def _to_map(xy: np.ndarray, conv: Any, unit_scale: float) -> np.ndarray:
    """Local engineering (metres, from ifcopenshell.geom) -> map coordinates (IFC4 8.18.3.5)."""
    a = float(conv.XAxisAbscissa if conv.XAxisAbscissa is not None else 1.0)
    b = float(conv.XAxisOrdinate if conv.XAxisOrdinate is not None else 0.0)
    norm = math.hypot(a, b) or 1.0
    a, b = a / norm, b / norm
    # Scale converts project length units to map units; geometry is already in metres
    s = (float(conv.Scale) if conv.Scale is not None else 1.0) / unit_scale
    e = float(conv.Eastings) + s * (a * xy[:, 0] - b * xy[:, 1])
    n = float(conv.Northings) + s * (b * xy[:, 0] + a * xy[:, 1])
    return np.column_stack([e, n])


def _footprint(shape: Any, conv: Any, unit_scale: float) -> Polygon | MultiPolygon | None:
    verts = np.asarray(shape.geometry.verts, dtype=np.float64).reshape(-1, 3)[:, :2]
    if conv is not None:
        verts = _to_map(verts, conv, unit_scale)
    faces = np.asarray(shape.geometry.faces, dtype=np.int64).reshape(-1, 3)
    triangles = [Polygon(verts[f]) for f in faces]
    triangles = [t for t in triangles if t.area > 1e-9]
    if not triangles:
        return None
    merged = shapely.union_all(triangles, grid_size=1e-4)
    merged = shapely.make_valid(merged)
    polys = [p for p in shapely.get_parts(merged) if isinstance(p, Polygon) and p.area > 1e-6]
    if not polys:
        return None
    polys = [orient(p, 1.0) for p in polys]
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


def _storeys(model: Any, scale: float) -> dict[int, tuple[int, float | None, float | None]]:
    """storey id -> (floor number, base elevation m, storey height m)."""
    storeys = sorted(model.by_type("IfcBuildingStorey"), key=lambda s: float(s.Elevation or 0.0))
    elevations = [
        round(float(s.Elevation) * scale, 6) if s.Elevation is not None else None for s in storeys
    ]
    ground = next((i for i, e in enumerate(elevations) if e is not None and e >= -0.5), 0)
    out: dict[int, tuple[int, float | None, float | None]] = {}
    for i, storey in enumerate(storeys):
        floor = parse_floor_label(storey.Name)
        if floor is None:
            floor = i - ground + 1 if i >= ground else i - ground
        base = elevations[i]
        nxt = elevations[i + 1] if i + 1 < len(elevations) else None
        height = round(nxt - base, 6) if nxt is not None and base is not None else None
        out[storey.id()] = (floor, base, height or None)
    return out


def _space_props(space: Any, element: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "Name": space.Name,
        "LongName": space.LongName,
        "GlobalId": space.GlobalId,
    }
    quantities: dict[str, Any] = {}
    for pset, values in element.get_psets(space).items():
        for key, value in values.items():
            if key == "id":
                continue
            if pset.lower().startswith("qto_") or key.lower() in _QUANTITIES:
                quantities[key.lower()] = value
            else:
                raw.setdefault(key, value)
    props = normalise_properties(
        {k: v for k, v in raw.items() if k not in ("Name", "LongName")}, "unit"
    )
    props["raw"] = {
        **props["raw"],
        "Name": space.Name,
        "LongName": space.LongName,
        **{f"qto.{k}": v for k, v in quantities.items()},
    }
    for key, target in _QUANTITIES.items():
        if props.get(target) is None and isinstance(quantities.get(key), int | float):
            props[target] = float(quantities[key])
    name = str(space.Name or "").strip()
    if not props.get("unit_code") and _CODE28.fullmatch(name):
        props["unit_code"] = name
    if name and not _CODE28.fullmatch(name) and not props.get("room_no"):
        props["room_no"] = name
    if not props.get("use") and space.LongName:
        props["use"] = str(space.LongName)
    code = props.get("unit_code")
    if isinstance(code, str) and is_unit_code_with_fixture(code, "F"):
        props["building_code"] = props.get("building_code") or building_code_of(code)
    return props


def read_ifc(path: Path, *, srid: int | None = None) -> SurveyDataset:
    _check_complete(path)
    ifcopenshell = _import_ifcopenshell()
    model = _open(path, ifcopenshell)
    log = IssueLog()
    element = ifcopenshell.util.element
    scale = float(ifcopenshell.util.unit.calculate_unit_scale(model))
    storeys = _storeys(model, scale)
    conv, conv_epsg = _map_conversion(model)
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    features: list[SurveyFeature] = []
    for space in model.by_type("IfcSpace"):
        ref = f"IfcSpace #{space.id()} {space.Name or ''}".strip()
        try:
            shape = ifcopenshell.geom.create_shape(settings, space)
        except RuntimeError:
            log.error(
                "GEOMETRY_MISSING",
                f"{ref}没有可计算的几何体，已跳过",
                f"{ref} has no computable geometry; skipped",
            )
            continue
        footprint = _footprint(shape, conv, scale)
        if footprint is None:
            log.error(
                "GEOMETRY_MISSING",
                f"{ref}的水平投影为空，已跳过",
                f"{ref} has an empty footprint; skipped",
            )
            continue
        props = _space_props(space, element)
        container = element.get_aggregate(space) or element.get_container(space)
        floor = storeys.get(container.id()) if container is not None else None
        if floor is None:
            log.warning(
                "SPACE_WITHOUT_STOREY",
                f"{ref}不属于任何楼层",
                f"{ref} belongs to no building storey",
                feature=len(features),
            )
        else:
            props["floor_no"], props["base_elevation"] = floor[0], floor[1]
            props["storey_height"] = floor[2]
            if props.get("height") is None:
                props["height"] = floor[2]
        features.append(SurveyFeature("unit", footprint, props, ref))
    if not features:
        raise SurveyFormatError(
            "SURVEY_EMPTY",
            "IFC中没有带几何体的IfcSpace（房间/户）",
            "the IFC model holds no IfcSpace (room/unit) with geometry",
        )
    source = conv_epsg
    if source is None:
        xy = np.concatenate([shapely.get_coordinates(f.geometry) for f in features])
        zone = zone_from_eastings(xy[:, 0]) if np.abs(xy[:, 0]).min() >= 1e6 else None
        source = zone.epsg if zone is not None else srid
        if source is None or (zone is None and np.abs(xy).max() < 100_000):
            raise crs_unknown(
                "IFC模型没有地理定位（缺少IfcMapConversion/IfcProjectedCRS），坐标为局部坐标",
                "the IFC model is not georeferenced (no "
                "IfcMapConversion/IfcProjectedCRS): its coordinates are local",
            )
    target = check_target_srid(srid) if srid is not None else source
    if target != source:
        reproject_features(features, source, target)
        reprojected_warning(log, source, target)
    meta = {
        "schema": model.schema,
        "source_srid": source,
        "storeys": len(storeys),
        "georeferenced": conv is not None,
    }
    return SurveyDataset("ifc", target, features, log.issues, meta)
