"""Similarity transforms (scale, rotation, translation) between a local drawing and a map.

``fit_points``: least squares from control points (two determine it; more give a residual).
``fit_outline``: the transform that lays a plan's outline on a registered footprint, started
from each orientation of the two minimum rotated rectangles and refined by least squares
(scipy) on the distances between the two boundaries (shapely). No mirroring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.optimize import least_squares
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

__all__ = ["Similarity", "Fit", "fit_points", "fit_outline"]


@dataclass(frozen=True)
class Similarity:
    scale: float
    rotation: float          # radians, counter-clockwise
    tx: float
    ty: float

    def apply_xy(self, xy: np.ndarray) -> np.ndarray:
        c, s = self.scale * math.cos(self.rotation), self.scale * math.sin(self.rotation)
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack([c * x - s * y + self.tx, s * x + c * y + self.ty])

    def apply(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, self.apply_xy)

    def as_dict(self) -> dict[str, float]:
        return {"scale": round(self.scale, 8),
                "rotation_deg": round(math.degrees(self.rotation) % 360.0, 6),
                "tx": round(self.tx, 4), "ty": round(self.ty, 4)}


@dataclass(frozen=True)
class Fit:
    transform: Similarity
    rms: float               # metres
    max: float               # metres
    alternatives: int = 0    # other placements as good as this one (a symmetric outline)


def fit_points(local: np.ndarray, mapped: np.ndarray) -> Fit:
    """Least-squares similarity from ``local`` to ``mapped`` (n >= 2 point pairs)."""
    local, mapped = np.asarray(local, float), np.asarray(mapped, float)
    if len(local) < 2 or len(local) != len(mapped):
        raise ValueError("at least two pairs of control points are needed")
    z, w = local[:, 0] + 1j * local[:, 1], mapped[:, 0] + 1j * mapped[:, 1]
    if np.ptp(z.real) == 0 and np.ptp(z.imag) == 0:
        raise ValueError("the control points coincide")
    # w = a·z + b with complex a (scale and rotation) and b (translation): linear least squares
    (a, b), *_ = np.linalg.lstsq(np.column_stack([z, np.ones_like(z)]), w, rcond=None)
    scale, rotation, tx, ty = float(abs(a)), float(np.angle(a)), b.real, b.imag
    t = Similarity(scale, rotation, float(tx), float(ty))
    d = np.hypot(*(t.apply_xy(local) - mapped).T)
    return Fit(t, float(np.sqrt((d ** 2).mean())), float(d.max()))


def _boundary_points(poly: Polygon, step: float) -> np.ndarray:
    ring = poly.exterior
    n = max(8, int(math.ceil(ring.length / step)))
    pts = shapely.line_interpolate_point(ring, np.linspace(0.0, ring.length, n, endpoint=False))
    return np.vstack([shapely.get_coordinates(pts), np.asarray(ring.coords)[:-1]])


def _rect_frame(poly: Polygon) -> tuple[np.ndarray, float]:
    """Centre and orientation (radians) of the minimum rotated rectangle."""
    rect = np.asarray(poly.minimum_rotated_rectangle.exterior.coords)[:4]
    edge = rect[1] - rect[0]
    return poly.centroid.coords[0], math.atan2(edge[1], edge[0])


def _distances(params: np.ndarray, src: np.ndarray, plan: Polygon, target: Polygon,
               dst: np.ndarray) -> np.ndarray:
    t = Similarity(math.exp(params[0]), params[1], params[2], params[3])
    moved = t.apply_xy(src)
    there = shapely.distance(shapely.points(moved), target.exterior)
    back = shapely.distance(shapely.points(dst), t.apply(plan.exterior))
    return np.concatenate([there, back])


def fit_outline(plan: Polygon, target: Polygon, tolerance: float) -> Fit:
    """The similarity laying ``plan`` on ``target`` best (symmetric boundary distances);
    ``alternatives`` counts other distinct placements within ``tolerance`` (rms)."""
    step = max(0.25, math.sqrt(target.area) / 50.0)
    src, dst = _boundary_points(plan, step), _boundary_points(target, step)
    (pcx, pcy), pa = _rect_frame(plan)
    (tcx, tcy), ta = _rect_frame(target)
    s0 = math.sqrt(target.area / plan.area)
    fits: list[Fit] = []
    for k in range(4):
        rot = ta - pa + k * math.pi / 2
        c, s = s0 * math.cos(rot), s0 * math.sin(rot)
        x0 = np.array([math.log(s0), rot, tcx - (c * pcx - s * pcy), tcy - (s * pcx + c * pcy)])
        res = least_squares(_distances, x0, args=(src, plan, target, dst), method="lm",
                            x_scale=np.array([0.01, 0.01, 1.0, 1.0]))
        d = _distances(res.x, src, plan, target, dst)
        t = Similarity(math.exp(res.x[0]), math.atan2(math.sin(res.x[1]), math.cos(res.x[1])),
                       float(res.x[2]), float(res.x[3]))
        fits.append(Fit(t, float(np.sqrt((d ** 2).mean())), float(d.max())))
    fits.sort(key=lambda f: f.rms)
    best = fits[0]
    corners = np.asarray(plan.exterior.coords)
    others = 0
    seen = [best.transform.apply_xy(corners)]
    for f in fits[1:]:
        if f.rms > max(tolerance, 2 * best.rms):
            continue
        here = f.transform.apply_xy(corners)
        if all(np.hypot(*(here - s).T).max() > tolerance for s in seen):
            others += 1
            seen.append(here)
    return Fit(best.transform, best.rms, best.max, others)
