"""The common in-memory structure every survey reader produces, and its error type.

Geometries are shapely objects in the survey's projected CRS with x = easting and y = northing
(survey "X" = northing is swapped on read).  Nothing here touches a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry

from cadastre.errors import InvalidInput

__all__ = [
    "FEATURE_KINDS",
    "AREA_KINDS",
    "DEFAULT_MAX_BYTES",
    "SurveyFeature",
    "ReaderIssue",
    "SurveyDataset",
    "SurveyFormatError",
    "ReaderOptions",
    "IssueLog",
]

FEATURE_KINDS = ("parcel", "building", "floor", "unit", "boundary_point")
AREA_KINDS = frozenset({"parcel", "building", "floor", "unit"})
DEFAULT_MAX_BYTES = 200 * 1024 * 1024

#: Layer names of cadastral boundaries in CASS-style drawings (case-insensitive).
DEFAULT_BOUNDARY_LAYERS = ("JZX", "ZD", "ZDX", "权属线", "宗地", "界址线", "PARCEL")
#: Layer names of boundary points (界址点) in CASS-style drawings (case-insensitive).
DEFAULT_POINT_LAYERS = ("JZD", "界址点", "JZDH", "POINT_NO")


@dataclass
class SurveyFeature:
    kind: str
    geometry: BaseGeometry
    properties: dict[str, Any]
    ref: str


@dataclass
class ReaderIssue:
    code: str
    severity: str  # "error" | "warning"
    message: str  # "中文 / English"
    feature: int | None = None
    location: tuple[float, float] | None = None


@dataclass
class SurveyDataset:
    format: str
    srid: int | None
    features: list[SurveyFeature] = field(default_factory=list)
    issues: list[ReaderIssue] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[SurveyFeature]:
        return [f for f in self.features if f.kind == kind]

    def issue_codes(self) -> list[str]:
        return [i.code for i in self.issues]


class SurveyFormatError(InvalidInput):
    """The uploaded file cannot be read as a survey at all (stable ``code``, bilingual message)."""

    code = "SURVEY_FORMAT_ERROR"

    def __init__(self, code: str, message_zh: str, message_en: str, **details: object) -> None:
        super().__init__(code, f"{message_zh} / {message_en}", **details)
        self.message_zh = message_zh
        self.message_en = message_en


@dataclass(frozen=True)
class ReaderOptions:
    """Tunables of the readers; the defaults suit CASS and TD/T 1066 style deliverables."""

    max_bytes: int = DEFAULT_MAX_BYTES
    boundary_layers: tuple[str, ...] = DEFAULT_BOUNDARY_LAYERS
    point_layers: tuple[str, ...] = DEFAULT_POINT_LAYERS
    #: Search radius (drawing units, m) for a boundary-point number text around its point.
    point_label_radius: float = 3.0
    #: Distance (m) within which a boundary point counts as lying on a parcel boundary.
    point_on_boundary_tolerance: float = 0.01
    #: Maximum chord error (m) when arcs (bulges) are flattened into vertices.
    arc_tolerance: float = 0.001
    zip_max_members: int = 100
    zip_max_total_bytes: int = 500 * 1024 * 1024
    zip_max_ratio: float = 100.0
    #: The surveyor's field map: (source field, normalised key) pairs.
    field_map: tuple[tuple[str, str], ...] = ()
    #: Polygons of layers whose kind cannot be told are parcels, and parcels without a code are
    #: new parcels (coded at acceptance from their cadastral subdistrict).
    new_parcels: bool = False
    #: The file is drawn in local coordinates (a floor plan placed on its building later): no
    #: CRS is inferred and no projected-range check is made by the reader.
    local_coordinates: bool = False

    def mapping(self) -> dict[str, str]:
        """Upper-cased source field -> normalised key."""
        return {source.strip().upper(): key for source, key in self.field_map}


class IssueLog:
    """Collects :class:`ReaderIssue` objects while a reader runs."""

    def __init__(self) -> None:
        self.issues: list[ReaderIssue] = []
        #: Layers whose fields were not (all) recognised: fields seen and suggested mapping.
        self.field_reports: list[dict[str, Any]] = []

    def add(
        self,
        code: str,
        severity: str,
        zh: str,
        en: str,
        feature: int | None = None,
        location: tuple[float, float] | None = None,
    ) -> ReaderIssue:
        if severity not in ("error", "warning"):
            raise ValueError(f"bad severity {severity!r}")
        issue = ReaderIssue(code, severity, f"{zh} / {en}", feature, location)
        self.issues.append(issue)
        return issue

    def error(self, code: str, zh: str, en: str, **where: Any) -> ReaderIssue:
        return self.add(code, "error", zh, en, **where)

    def warning(self, code: str, zh: str, en: str, **where: Any) -> ReaderIssue:
        return self.add(code, "warning", zh, en, **where)
