"""Polygons from ordered boundary points (TXT 报盘 files and boundary-point CSVs).

Rings are cleaned (consecutive duplicate points dropped, closed if left open), ring 1 is the
outer ring, and other rings become holes of the part that contains them or parts of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.polygon import orient

from cadastre.ingest.model import IssueLog, SurveyFeature

__all__ = ["RingPoint", "Ring", "Pending", "clean_ring", "assemble_polygon", "point_features"]


@dataclass(frozen=True)
class RingPoint:
    name: str
    east: float
    north: float
    where: str  # e.g. "line 12"


@dataclass
class Ring:
    number: int
    points: list[RingPoint]  # distinct consecutive vertices, without the closing repeat
    usable: bool = True  # False: fewer than 3 distinct points, no polygon can be made


@dataclass
class Pending:
    """Issues collected before the feature they belong to has an index."""

    items: list[tuple[str, str, str, str, tuple[float, float] | None]] = field(default_factory=list)

    def add(
        self,
        code: str,
        severity: str,
        zh: str,
        en: str,
        location: tuple[float, float] | None = None,
    ) -> None:
        self.items.append((code, severity, zh, en, location))

    def flush(self, log: IssueLog, feature: int | None) -> None:
        for code, severity, zh, en, location in self.items:
            log.add(code, severity, zh, en, feature=feature, location=location)
        self.items.clear()


def point_seq(name: str) -> int | None:
    """The number in a boundary-point name such as "J12" -> 12."""
    m = re.search(r"(\d+)\s*$", name)
    return int(m.group(1)) if m else None


def clean_ring(
    number: int, points: list[RingPoint], label: str, pending: Pending, warn_open: bool = True
) -> Ring:
    """Drop consecutive duplicates, note an open ring, and mark rings under 3 points unusable."""
    kept: list[RingPoint] = []
    for p in points:
        if kept and (kept[-1].east, kept[-1].north) == (p.east, p.north):
            pending.add(
                "DUPLICATE_POINT",
                "warning",
                f"{label}圈{number}中界址点{p.name}与前一点坐标相同，已忽略（{p.where}）",
                f"{label} ring {number}: point {p.name} repeats the previous point and was "
                f"dropped ({p.where})",
                (p.east, p.north),
            )
            continue
        kept.append(p)
    closed = len(kept) > 1 and (kept[0].east, kept[0].north) == (kept[-1].east, kept[-1].north)
    if closed:
        kept.pop()
    if len(kept) < 3:
        first = kept[0] if kept else (points[0] if points else None)
        pending.add(
            "RING_TOO_FEW_POINTS",
            "error",
            f"{label}圈{number}只有{len(kept)}个不同的界址点，至少需要3个，无法构成面",
            f"{label} ring {number} has only {len(kept)} distinct points; a polygon needs 3",
            (first.east, first.north) if first else None,
        )
        return Ring(number, kept, usable=False)
    if not closed and warn_open:
        pending.add(
            "RING_CLOSED",
            "warning",
            f"{label}圈{number}未闭合（末点{kept[-1].name}≠首点{kept[0].name}），已自动闭合",
            f"{label} ring {number} was not closed (last point {kept[-1].name} != first "
            f"{kept[0].name}); closed automatically",
            (kept[0].east, kept[0].north),
        )
    return Ring(number, kept)


def assemble_polygon(rings: list[Ring]) -> Polygon | MultiPolygon | None:
    """Ring 1 (the lowest number) is outer; rings inside a part are its holes, others parts.

    Unusable rings are left out; the caller decides whether a missing outer ring is fatal.
    """
    rings = sorted((r for r in rings if r.usable), key=lambda r: r.number)
    if not rings:
        return None
    parts: list[tuple[Polygon, list[Polygon]]] = []
    for ring in rings:
        shell = Polygon([(p.east, p.north) for p in ring.points])
        host = next((i for i, (outer, _) in enumerate(parts) if outer.contains(shell)), None)
        if host is None:
            parts.append((shell, []))
        else:
            parts[host][1].append(shell)
    polygons = [
        orient(Polygon(outer.exterior.coords, [h.exterior.coords for h in holes]), sign=1.0)
        for outer, holes in parts
    ]
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def point_features(
    rings: list[Ring], parcel_ref: str | int | None, label: str, source_ref: str
) -> list[SurveyFeature]:
    """One boundary_point feature per distinct vertex of each ring."""
    out: list[SurveyFeature] = []
    for ring in rings:
        for p in ring.points:
            props = {
                "point_no": p.name,
                "point_seq": point_seq(p.name),
                "parcel_ref": parcel_ref,
                "ring_no": ring.number,
                "raw": {"name": p.name, "ring": ring.number, "x_north": p.north, "y_east": p.east},
            }
            out.append(
                SurveyFeature(
                    "boundary_point",
                    Point(p.east, p.north),
                    props,
                    f"{p.name} of {label} ({source_ref}, {p.where})",
                )
            )
    return out
