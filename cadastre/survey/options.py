"""What a submitter says about a file: field map, "new parcels", and how a local plan is placed.

Stored with the submission (``cad.survey_submission.options``) so that validation, the diff and
the acceptance all read the file the same way.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from cadastre.errors import InvalidInput
from cadastre.ingest.fieldmap import parse_field_map
from cadastre.ingest.model import ReaderOptions

__all__ = ["Anchor", "SubmissionOptions", "parse_points", "DEFAULT_TOLERANCE_M"]

#: Largest RMS distance (m) between a placed plan's outline and its building's footprint, or
#: between placed and given control points, that is accepted.
DEFAULT_TOLERANCE_M = 0.5
MAX_TOLERANCE_M = 5.0
_BUILDING = re.compile(r"\d{12}[GJZ][ABSXCDEFGHWY]\d{5}F\d{4}")
_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_PAIR = re.compile(rf"^{_NUM},{_NUM}[:>]{_NUM},{_NUM}$")


class AnchorInvalid(InvalidInput):
    code = "ANCHOR_INVALID"


Point = tuple[float, float]


def parse_points(text: str | None) -> tuple[tuple[Point, Point], ...]:
    """Control points ``"x,y:E,N; x,y:E,N"`` (local drawing -> projected easting, northing)."""
    if not text or not text.strip():
        return ()
    out = []
    for part in filter(None, (p.strip() for p in re.split(r"[;\n]", text))):
        m = _PAIR.fullmatch(part)
        if m is None:
            raise AnchorInvalid(message="控制点格式应为 x,y:东,北;x,y:东,北 / control points are "
                                        "written x,y:E,N;x,y:E,N")
        x, y, e, n = (float(v) for v in m.groups())
        out.append(((x, y), (e, n)))
    if len(out) < 2 or len(out) > 50:
        raise AnchorInvalid(message="需要2至50对控制点 / 2 to 50 pairs of control points are "
                                    "needed")
    return tuple(out)


@dataclass(frozen=True)
class Anchor:
    """A local plan laid on a registered building (自然幢) by control points or its outline."""

    building: str
    points: tuple[tuple[Point, Point], ...] = ()
    fit_outline: bool = False
    tolerance: float = DEFAULT_TOLERANCE_M

    def __post_init__(self) -> None:
        if not _BUILDING.fullmatch(self.building):
            raise AnchorInvalid(message="自然幢代码应为24位 / the building code has 24 "
                                        "characters")
        if bool(self.points) == bool(self.fit_outline):
            raise AnchorInvalid(message="请给出控制点或选择按幢轮廓定位（二选一）/ give either "
                                        "control points or fit to the building outline")
        if not (math.isfinite(self.tolerance) and 0 < self.tolerance <= MAX_TOLERANCE_M):
            raise AnchorInvalid(message=f"容差应在0至{MAX_TOLERANCE_M}米之间 / the tolerance "
                                        f"must lie in 0-{MAX_TOLERANCE_M} m")

    def as_dict(self) -> dict[str, Any]:
        return {"building": self.building, "points": [list(map(list, p)) for p in self.points],
                "fit_outline": self.fit_outline, "tolerance": self.tolerance}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Anchor:
        points = tuple((tuple(a), tuple(b)) for a, b in d.get("points") or ())
        return cls(d["building"], points, bool(d.get("fit_outline")),  # type: ignore[arg-type]
                   float(d.get("tolerance", DEFAULT_TOLERANCE_M)))


@dataclass(frozen=True)
class SubmissionOptions:
    field_map: dict[str, str] = field(default_factory=dict)      # key -> source field
    new_parcels: bool = False
    anchor: Anchor | None = None

    @classmethod
    def build(cls, field_map: str | dict[str, str] | None = None, new_parcels: bool = False,
              anchor_building: str | None = None, control_points: str | None = None,
              fit_outline: bool = False, tolerance: float | None = None) -> SubmissionOptions:
        """From the CLI's or the upload form's values (raises ``*_INVALID`` errors)."""
        anchor = None
        if anchor_building or control_points or fit_outline:
            anchor = Anchor((anchor_building or "").strip(), parse_points(control_points),
                            fit_outline, tolerance or DEFAULT_TOLERANCE_M)
        return cls(parse_field_map(field_map), bool(new_parcels), anchor)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.field_map:
            out["field_map"] = dict(self.field_map)
        if self.new_parcels:
            out["new_parcels"] = True
        if self.anchor is not None:
            out["anchor"] = self.anchor.as_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SubmissionOptions:
        d = d or {}
        anchor = Anchor.from_dict(d["anchor"]) if d.get("anchor") else None
        return cls(dict(d.get("field_map") or {}), bool(d.get("new_parcels")), anchor)

    def reader_options(self) -> ReaderOptions:
        return ReaderOptions(field_map=tuple((v, k) for k, v in self.field_map.items()),
                             new_parcels=self.new_parcels,
                             local_coordinates=self.anchor is not None)
