"""A 3D Tiles tile: bounding volume, geometric error, refinement, content and children."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tiles.threed.bounding_volume import Box


@dataclass
class Tile:
    box: Box
    geometric_error: float
    content_uri: str | None = None
    children: list[Tile] = field(default_factory=list)
    refine: str | None = None  # "REPLACE" | "ADD"; inherited when None
    transform: list[float] | None = None  # column-major 4×4

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "boundingVolume": self.box.to_dict(),
            "geometricError": round(float(self.geometric_error), 6),
        }
        if self.refine:
            out["refine"] = self.refine
        if self.transform is not None:
            out["transform"] = self.transform
        if self.content_uri:
            out["content"] = {"uri": self.content_uri}
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tile:
        return cls(
            box=Box.from_dict(d["boundingVolume"]),
            geometric_error=float(d["geometricError"]),
            content_uri=(d.get("content") or {}).get("uri"),
            children=[cls.from_dict(c) for c in d.get("children", [])],
            refine=d.get("refine"),
            transform=d.get("transform"),
        )

    def count(self) -> int:
        return 1 + sum(c.count() for c in self.children)
