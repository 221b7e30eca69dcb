"""界址点 numbering: points of a parcel ring in survey order."""

from __future__ import annotations

from shapely.geometry import Polygon
from shapely.geometry.polygon import orient


def ring_points(poly: Polygon) -> list[tuple[float, float]]:
    """Exterior vertices clockwise, starting at the north-west-most vertex (J1), unclosed."""
    cw = orient(poly, sign=-1.0)
    coords = list(cw.exterior.coords)[:-1]
    start = max(range(len(coords)), key=lambda k: (coords[k][1], -coords[k][0]))
    return coords[start:] + coords[:start]


def clockwise(poly: Polygon) -> Polygon:
    return orient(poly, sign=-1.0)
