"""Drawing plane coordinates (Gauss-Krüger easting/northing, metres) on paper as SVG in
millimetres: scale choice, frame transform, grid, north arrow and scale bar."""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from cadastre.documents.render import esc

PARCEL_SCALES = (500, 1000, 2000, 5000, 10000)
FLOOR_SCALES = (100, 200, 250, 500, 1000)


def choose_scale(width_m: float, height_m: float, frame_w_mm: float, frame_h_mm: float,
                 scales: Sequence[int], fill: float = 0.78) -> int:
    """The largest map scale (smallest denominator) at which the extent fits the frame."""
    for s in scales:
        if width_m * 1000 / s <= frame_w_mm * fill and height_m * 1000 / s <= frame_h_mm * fill:
            return s
    return scales[-1]


@dataclass(frozen=True)
class Frame:
    """A map frame of ``width`` × ``height`` mm at 1:``scale`` centred on (cx, cy) = (E, N)."""

    width: float
    height: float
    scale: int
    cx: float
    cy: float

    @property
    def mm_per_m(self) -> float:
        return 1000.0 / self.scale

    def xy(self, e: float, n: float) -> tuple[float, float]:
        return (self.width / 2 + (e - self.cx) * self.mm_per_m,
                self.height / 2 - (n - self.cy) * self.mm_per_m)

    def world_box(self, inset_mm: float = 0.0) -> Polygon:
        half_w = (self.width / 2 - inset_mm) / self.mm_per_m
        half_h = (self.height / 2 - inset_mm) / self.mm_per_m
        return box(self.cx - half_w, self.cy - half_h, self.cx + half_w, self.cy + half_h)

    def path(self, geom: BaseGeometry) -> str:
        """SVG path data of a polygon or multipolygon (holes as extra rings: even-odd fill)."""
        polys: Iterable[Polygon]
        if isinstance(geom, Polygon):
            polys = [geom]
        elif isinstance(geom, MultiPolygon):
            polys = geom.geoms
        else:
            polys = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]
        parts = []
        for poly in polys:
            for ring in [poly.exterior, *poly.interiors]:
                pts = [self.xy(e, n) for e, n in list(ring.coords)[:-1]]
                if pts:
                    parts.append("M" + " L".join(f"{x:.2f},{y:.2f}" for x, y in pts) + " Z")
        return " ".join(parts)


def text(x: float, y: float, value: object, size: float = 2.5, anchor: str = "middle",
         weight: int = 400, fill: str = "#111", rotate: float | None = None) -> str:
    transform = f' transform="rotate({rotate:.1f} {x:.2f} {y:.2f})"' if rotate else ""
    return (f'<text x="{x:.2f}" y="{y:.2f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}"{transform}>{esc(value)}</text>')


def label_box(x: float, y: float, width: float, height: float) -> str:
    """A white box behind a label (WeasyPrint has no SVG paint-order halos)."""
    return (f'<rect x="{x - width / 2:.2f}" y="{y - height / 2:.2f}" width="{width:.2f}" '
            f'height="{height:.2f}" fill="#fff" fill-opacity="0.85" stroke="none"/>')


def north_arrow(x: float, y: float, size: float = 12.0) -> str:
    """A north arrow whose tip is at (x, y)."""
    h, w = size, size * 0.38
    return (f'<g><path d="M{x:.2f},{y:.2f} L{x - w:.2f},{y + h:.2f} L{x:.2f},{y + h * 0.72:.2f} Z"'
            f' fill="#111"/><path d="M{x:.2f},{y:.2f} L{x + w:.2f},{y + h:.2f} '
            f'L{x:.2f},{y + h * 0.72:.2f} Z" fill="#fff" stroke="#111" stroke-width="0.25"/>'
            + text(x, y + h + 4.0, "北", 3.2, weight=700) + text(x, y - 1.2, "N", 2.4) + "</g>")


_BAR_METRES = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000)


def scale_bar(frame: Frame, x: float, y: float, target_mm: float = 36.0) -> str:
    """A four-segment scale bar starting at (x, y), with the numeric scale above it."""
    metres = min(_BAR_METRES, key=lambda m: abs(m * frame.mm_per_m - target_mm))
    length = metres * frame.mm_per_m
    seg = length / 4
    parts = [text(x, y - 2.2, f"1:{frame.scale}", 2.6, anchor="start", weight=700)]
    for i in range(4):
        fill = "#111" if i % 2 == 0 else "#fff"
        parts.append(f'<rect x="{x + i * seg:.2f}" y="{y:.2f}" width="{seg:.2f}" height="1.4" '
                     f'fill="{fill}" stroke="#111" stroke-width="0.2"/>')
    parts.append(text(x, y + 4.2, "0", 2.2))
    parts.append(text(x + length, y + 4.2, f"{metres:g} m", 2.2))
    return "<g>" + "".join(parts) + "</g>"


def grid(frame: Frame) -> str:
    """Grid crosses every 10 cm of paper (50 m at 1:500) with coordinates at the frame edge
    (X = northing on the left, Y = easting at the bottom, as on survey maps)."""
    step = frame.scale / 10.0   # metres per 10 cm (1:500 → 50 m)
    if step < 10:
        step = 10.0
    world = frame.world_box()
    e0, n0, e1, n1 = world.bounds
    parts = []
    e = math.ceil(e0 / step) * step
    while e < e1:
        n = math.ceil(n0 / step) * step
        x, _ = frame.xy(e, n0)
        parts.append(text(x, frame.height - 1.2, f"Y={e:.0f}", 1.9, fill="#555"))
        while n < n1:
            cx, cy = frame.xy(e, n)
            parts.append(f'<path d="M{cx - 2:.2f},{cy:.2f} H{cx + 2:.2f} M{cx:.2f},{cy - 2:.2f} '
                         f'V{cy + 2:.2f}" stroke="#777" stroke-width="0.2"/>')
            n += step
        e += step
    n = math.ceil(n0 / step) * step
    while n < n1:
        _, y = frame.xy(e0, n)
        parts.append(text(1.2, y - 0.8, f"X={n:.0f}", 1.9, anchor="start", fill="#555"))
        n += step
    return "<g>" + "".join(parts) + "</g>"


def svg(frame: Frame, body: str) -> str:
    """The map of a frame (user units = millimetres, clipped to the frame) for a page: an SVG
    document of its own in an ``img``. Drawn the same as inline SVG, but its elements stay out
    of the page's style cascade, which costs WeasyPrint about 5 ms a map."""
    drawing = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{frame.width}mm" '
               f'height="{frame.height}mm" viewBox="0 0 {frame.width} {frame.height}" '
               f'font-family="DocCJK, Noto Sans CJK SC, sans-serif">'
               f'<defs><clipPath id="frame"><rect x="0" y="0" width="{frame.width}" '
               f'height="{frame.height}"/></clipPath></defs>'
               f'<g clip-path="url(#frame)">{body}</g>'
               f'<rect x="0" y="0" width="{frame.width}" height="{frame.height}" fill="none" '
               f'stroke="#111" stroke-width="0.4"/></svg>')
    data = base64.b64encode(drawing.encode("utf-8")).decode("ascii")
    return f'<img class="map" alt="" src="data:image/svg+xml;base64,{data}">'
