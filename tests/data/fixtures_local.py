"""Fixtures in the shapes surveyors actually deliver (issue #22), written by the tests:

- a GeoJSON whose fields are not our names (``IDU``, ``contenance``, ``section`` …),
- an IFC model placed only by its IfcSite latitude/longitude and true north,
- a DXF floor plan in local coordinates (for anchoring to its building).

Each writes into a folder the test gives (under its tmp path), from geometry the test passes.
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import ezdxf
import numpy as np


def foreign_geojson(path: Path, parcels: list[tuple[str, list[list[float]]]],
                    srid: int = 4528) -> Path:
    """Parcels named as a foreign cadastre does: ``IDU`` (the code), ``contenance`` (the area,
    m², rounded to whole square metres), ``section`` and ``numero``."""
    from shapely.geometry import Polygon

    feats = []
    for i, (code, ring) in enumerate(parcels, start=1):
        feats.append({"type": "Feature",
                      "properties": {"IDU": code, "section": "AB", "numero": str(i),
                                     "contenance": round(Polygon(ring).area)},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}})
    path.write_text(json.dumps({
        "type": "FeatureCollection", "name": "parcelles",
        "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"}},
        "features": feats}, ensure_ascii=False))
    return path


def _dms(value: float) -> tuple[int, int, int, int]:
    """Degrees -> IfcCompoundPlaneAngleMeasure (deg, min, sec, millionths of a second)."""
    sign = -1 if value < 0 else 1
    total = round(abs(value) * 3600 * 1_000_000)
    deg, rest = divmod(total, 3600 * 1_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000)
    sec, micro = divmod(rest, 1_000_000)
    return sign * deg, sign * minutes, sign * sec, sign * micro


def site_only_ifc(path: Path, lat: float, lon: float, true_north_deg: float,
                  rooms: list[tuple[float, float, float, float]]) -> Path:
    """An IFC4 model in metres without IfcMapConversion: IfcSite at (lat, lon), true north at
    ``true_north_deg`` clockwise from the model's +Y, one storey, one IfcSpace per room
    (x0, y0, x1, y1 in model coordinates, metres)."""
    import ifcopenshell
    import ifcopenshell.api
    import ifcopenshell.guid

    run = ifcopenshell.api.run
    f = run("project.create_file", version="IFC4")
    project = run("root.create_entity", f, ifc_class="IfcProject", name="local model")
    run("unit.assign_unit", f, length={"is_metric": True, "raw": "METERS"})
    model = run("context.add_context", f, context_type="Model")
    body = run("context.add_context", f, context_type="Model", context_identifier="Body",
               target_view="MODEL_VIEW", parent=model)
    a = math.radians(true_north_deg)
    model.TrueNorth = f.createIfcDirection((math.sin(a), math.cos(a)))
    site = run("root.create_entity", f, ifc_class="IfcSite", name="Site")
    site.RefLatitude, site.RefLongitude = _dms(lat), _dms(lon)
    building = run("root.create_entity", f, ifc_class="IfcBuilding", name="B")
    run("aggregate.assign_object", f, products=[site], relating_object=project)
    run("aggregate.assign_object", f, products=[building], relating_object=site)
    storey = run("root.create_entity", f, ifc_class="IfcBuildingStorey", name="1F")
    storey.Elevation = 0.0
    run("aggregate.assign_object", f, products=[storey], relating_object=building)
    for k, (x0, y0, x1, y1) in enumerate(rooms, start=1):
        space = run("root.create_entity", f, ifc_class="IfcSpace", name=f"10{k}")
        space.LongName = "住宅"
        run("aggregate.assign_object", f, products=[space], relating_object=storey)
        m = np.eye(4)
        m[:3, 3] = (x0, y0, 0.0)
        run("geometry.edit_object_placement", f, product=space, matrix=m)
        w, h = x1 - x0, y1 - y0
        origin = f.createIfcAxis2Placement2D(f.createIfcCartesianPoint((w / 2, h / 2)))
        profile = f.createIfcRectangleProfileDef("AREA", None, origin, w, h)
        solid = f.createIfcExtrudedAreaSolid(
            profile, f.createIfcAxis2Placement3D(f.createIfcCartesianPoint((0.0, 0.0, 0.0))),
            f.createIfcDirection((0.0, 0.0, 1.0)), 2.8)
        rep = f.createIfcShapeRepresentation(body, "Body", "SweptSolid", [solid])
        space.Representation = f.createIfcProductDefinitionShape(None, None, [rep])
    for i, entity in enumerate(f.by_type("IfcRoot")):
        entity.GlobalId = ifcopenshell.guid.compress(
            uuid.uuid5(uuid.NAMESPACE_URL, f"site-only/{i}").hex)
    f.write(str(path))
    return path


def local_plan_dxf(path: Path, units: list[tuple[str, list[tuple[float, float]]]],
                   layer: str = "F01") -> Path:
    """A one-floor DXF floor plan in local coordinates: each unit a closed polyline on the
    floor layer with its unit code written inside."""
    from shapely.geometry import Polygon

    doc = ezdxf.new("R2010")
    doc.header["$INSUNITS"] = 6
    msp = doc.modelspace()
    doc.layers.add(layer)
    for code, ring in units:
        msp.add_lwpolyline(ring, close=True, dxfattribs={"layer": layer})
        c = Polygon(ring).representative_point()
        msp.add_text(code, dxfattribs={"layer": layer, "height": 0.3, "insert": (c.x, c.y)})
    doc.saveas(path)
    return path


def to_local(ring: list[Any], origin: tuple[float, float], turn_deg: float
             ) -> list[tuple[float, float]]:
    """Map coordinates -> a drawing's local frame: moved to ``origin`` and turned by
    ``turn_deg`` (counter-clockwise), as an architect's plan is drawn."""
    a = math.radians(turn_deg)
    c, s = math.cos(a), math.sin(a)
    out = []
    for x, y in ring:
        dx, dy = x - origin[0], y - origin[1]
        out.append((round(c * dx - s * dy, 4), round(s * dx + c * dy, 4)))
    return out
