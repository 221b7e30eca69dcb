"""3D Tiles bounding volumes. Boxes are axis-aligned in the tileset's ENU frame (tight for
city-scale data, and trivially nested); ``region`` is only produced for the registry extent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

MIN_HALF = 0.005  # metres: keeps flat content from producing a degenerate box


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in the tile's frame, stored as min/max corners."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]

    @classmethod
    def from_points(cls, pts: NDArray[np.float64]) -> Box:
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
        if p.size == 0:
            raise ValueError("no points")
        lo, hi = p.min(axis=0), p.max(axis=0)
        return cls(tuple(float(v) for v in lo), tuple(float(v) for v in hi))  # type: ignore[arg-type]

    def union(self, other: Box | None) -> Box:
        if other is None:
            return self
        lo = tuple(min(a, b) for a, b in zip(self.lo, other.lo, strict=True))
        hi = tuple(max(a, b) for a, b in zip(self.hi, other.hi, strict=True))
        return Box(lo, hi)  # type: ignore[arg-type]

    @property
    def center(self) -> NDArray[np.float64]:
        return (np.asarray(self.lo) + np.asarray(self.hi)) / 2

    @property
    def half(self) -> NDArray[np.float64]:
        return np.maximum((np.asarray(self.hi) - np.asarray(self.lo)) / 2, MIN_HALF)

    @property
    def diagonal(self) -> float:
        return float(np.linalg.norm(2 * self.half))

    def to_dict(self) -> dict[str, list[float]]:
        c, h = self.center, self.half
        return {
            "box": [
                float(c[0]),
                float(c[1]),
                float(c[2]),
                float(h[0]),
                0.0,
                0.0,
                0.0,
                float(h[1]),
                0.0,
                0.0,
                0.0,
                float(h[2]),
            ]
        }

    @classmethod
    def from_dict(cls, volume: dict[str, Any]) -> Box:
        """Read back an axis-aligned box (oriented boxes: their enclosing AABB)."""
        v = np.asarray(volume["box"], dtype=np.float64)
        c, axes = v[:3], v[3:].reshape(3, 3)
        ext = np.abs(axes).sum(axis=0)
        return cls(tuple(float(x) for x in c - ext), tuple(float(x) for x in c + ext))  # type: ignore[arg-type]

    def corners(self) -> NDArray[np.float64]:
        c, h = self.center, self.half
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        return c + signs * h

    def contains(self, other: Box, tol: float = 1e-3) -> bool:
        c, h = self.center, self.half
        return bool((np.abs(other.corners() - c) <= h + tol).all())
