"""Placing an IFC model that has no IfcMapConversion by its IfcSite reference point.

IfcSite.RefLatitude/RefLongitude give where the site's placement origin lies on the earth
(degrees, minutes, seconds, millionths), and the model context's TrueNorth the direction of
true north in the model's plane. The model is laid into a projected CRS by turning true north
onto the CRS's north at that point (grid convergence included) and moving the site origin onto
the projected reference point. Accuracy is that of the reference point (often only a few
metres), so the reader says that it was placed this way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gis.crs import ZoneError, from_wgs84, zone_from_longitude
from gis.similarity import Similarity

__all__ = ["SitePlacement", "site_placement"]


@dataclass(frozen=True)
class SitePlacement:
    srid: int
    transform: Similarity
    latitude: float
    longitude: float
    true_north_deg: float            # bearing of true north in the model plane (clockwise from +Y)

    def as_dict(self) -> dict[str, Any]:
        return {"method": "ifc_site", "srid": self.srid, "latitude": round(self.latitude, 8),
                "longitude": round(self.longitude, 8),
                "true_north_deg": round(self.true_north_deg, 4), **self.transform.as_dict()}


def _angle(compound: Any) -> float | None:
    """IfcCompoundPlaneAngleMeasure (deg, min, sec[, millionths], signs alike) -> degrees."""
    if not compound:
        return None
    parts = [float(v) for v in compound] + [0.0] * (4 - len(compound))
    return parts[0] + parts[1] / 60.0 + (parts[2] + parts[3] / 1e6) / 3600.0


def _true_north(model: Any) -> tuple[float, float]:
    for ctx in model.by_type("IfcGeometricRepresentationContext"):
        if ctx.is_a("IfcGeometricRepresentationSubContext"):
            continue
        north = getattr(ctx, "TrueNorth", None)
        if north is not None and north.DirectionRatios:
            x, y = (float(v) for v in north.DirectionRatios[:2])
            if math.hypot(x, y) > 0:
                return x, y
    return 0.0, 1.0


def _site_origin(site: Any, unit_scale: float) -> tuple[float, float]:
    import ifcopenshell.util.placement

    if site.ObjectPlacement is None:
        return 0.0, 0.0
    m = ifcopenshell.util.placement.get_local_placement(site.ObjectPlacement)
    return float(m[0, 3]) * unit_scale, float(m[1, 3]) * unit_scale


def site_placement(model: Any, unit_scale: float, srid: int | None) -> SitePlacement | None:
    """The placement by the first IfcSite with a reference latitude and longitude, in ``srid``
    (else the CGCS2000 3° Gauss-Krüger zone of the longitude); None without such a site.
    Raises ``ZoneError`` when no srid is given and the site is outside the Chinese zones."""
    site = next((s for s in model.by_type("IfcSite")
                 if _angle(s.RefLatitude) is not None and _angle(s.RefLongitude) is not None),
                None)
    if site is None:
        return None
    lat, lon = _angle(site.RefLatitude), _angle(site.RefLongitude)
    assert lat is not None and lon is not None
    if srid is None:
        srid = zone_from_longitude(lon).epsg
    e, n = from_wgs84(srid, [lon, lon], [lat, lat + 0.001])
    # bearing of true north on the grid (clockwise from grid north): the convergence
    grid = math.atan2(float(e[1] - e[0]), float(n[1] - n[0]))
    tx, ty = _true_north(model)
    model_north = math.atan2(tx, ty)            # bearing of true north in the model plane
    rotation = model_north - grid               # counter-clockwise, model -> grid
    ox, oy = _site_origin(site, unit_scale)
    c, s = math.cos(rotation), math.sin(rotation)
    t = Similarity(1.0, rotation, float(e[0]) - (c * ox - s * oy), float(n[0]) - (s * ox + c * oy))
    return SitePlacement(srid, t, lat, lon, math.degrees(model_north))


def place_xy(xy: np.ndarray, placement: SitePlacement) -> np.ndarray:
    return placement.transform.apply_xy(xy)


__all__ += ["place_xy", "ZoneError"]
