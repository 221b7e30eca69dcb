"""What a QA run looks at. Every rule is written once against two relations the scope defines:

* ``subject`` — the parcels being checked: the current registry (whole district, a bbox, one
  parcel) or the parcels of a survey submission;
* ``context`` — current registry parcels that stay in force around them (for a submission:
  the registry minus the parcels it replaces), used by neighbour checks (overlap, gaps).

Both expose ``ref, code, geom (native CRS), g3857, declared, srid``. Units, buildings and
floors are exposed the same way (``subject_units`` …) so one rule serves both callers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

# Registry relations, optionally limited to a bbox (EPSG:3857) or to given parcel codes.
_REG_PARCELS = """
    SELECT p.parcel_code::text AS ref, p.parcel_code::text AS code, p.geom, p.geom_3857 AS g3857,
           p.registered_area AS declared, p.srid
    FROM cad.parcel p
    WHERE p.valid_to IS NULL
      AND (%(bbox)s::geometry IS NULL OR p.geom_3857 && %(bbox)s::geometry)
      AND (%(codes)s::text[] IS NULL OR p.parcel_code = ANY(%(codes)s::text[]))"""

_REG_BUILDINGS = """
    SELECT b.building_code::text AS ref, b.building_code::text AS code,
           b.parcel_code::text AS parcel_code, b.geom, b.geom_3857 AS g3857, b.floor_area,
           b.floors_above, b.floors_below
    FROM cad.building b
    WHERE b.valid_to IS NULL
      AND (%(bbox)s::geometry IS NULL OR b.geom_3857 && %(bbox)s::geometry)
      AND (%(codes)s::text[] IS NULL OR b.parcel_code = ANY(%(codes)s::text[]))"""

_REG_UNITS = """
    SELECT u.unit_code::text AS ref, u.unit_code::text AS code,
           u.building_code::text AS building_code, u.floor_no, u.floor_count, u.geom,
           u.geom_3857 AS g3857, u.building_area
    FROM cad.unit u
    WHERE u.valid_to IS NULL
      AND (%(bbox)s::geometry IS NULL OR u.geom_3857 && %(bbox)s::geometry)
      AND (%(codes)s::text[] IS NULL OR u.parcel_code = ANY(%(codes)s::text[]))"""

# Survey submission relations (staged in cad.survey_feature).
_SUB_PARCELS = """
    SELECT f.ref, f.props->>'parcel_code' AS code, f.geom, f.geom_3857 AS g3857,
           (f.props->>'declared_area')::numeric AS declared, f.srid
    FROM cad.survey_feature f
    WHERE f.submission_id = %(submission)s AND f.kind = 'parcel'"""

_SUB_BUILDINGS = """
    SELECT f.ref, f.props->>'building_code' AS code,
           coalesce(left(f.props->>'building_code', 19), f.props->>'parcel_code') AS parcel_code,
           f.geom, f.geom_3857 AS g3857, (f.props->>'floor_area')::numeric AS floor_area,
           (f.props->>'floors_above')::int AS floors_above,
           (f.props->>'floors_below')::int AS floors_below
    FROM cad.survey_feature f
    WHERE f.submission_id = %(submission)s AND f.kind = 'building'"""

_SUB_UNITS = """
    SELECT f.ref, f.props->>'unit_code' AS code,
           coalesce(f.props->>'building_code', left(f.props->>'unit_code', 24)) AS building_code,
           (f.props->>'floor_no')::int AS floor_no,
           coalesce((f.props->>'floor_count')::int, 1) AS floor_count, f.geom,
           f.geom_3857 AS g3857, (f.props->>'building_area')::numeric AS building_area
    FROM cad.survey_feature f
    WHERE f.submission_id = %(submission)s AND f.kind = 'unit'"""

# Registry parcels a submission replaces: same code, or mostly covered by its parcels.
_REPLACED = """
    SELECT p.parcel_code FROM cad.parcel p
    WHERE p.valid_to IS NULL
      AND p.geom_3857 && (SELECT ST_SetSRID(ST_Extent(g3857), 3857) FROM subject)
      AND (p.parcel_code::text IN (SELECT code FROM subject WHERE code IS NOT NULL)
           OR (SELECT sum(ST_Area(ST_Intersection(s.geom, p.geom))) FROM subject s
               WHERE s.g3857 && p.geom_3857 AND ST_SRID(s.geom) = p.srid AND ST_IsValid(s.geom))
              > 0.5 * ST_Area(p.geom))"""


# Registry parcels around a submission that stay in force (within 50 m of its parcels).
_CONTEXT = """
    SELECT p.parcel_code::text AS ref, p.parcel_code::text AS code, p.geom,
           p.geom_3857 AS g3857, p.registered_area AS declared, p.srid
    FROM cad.parcel p
    WHERE p.valid_to IS NULL AND p.parcel_code NOT IN (SELECT parcel_code FROM replaced)
      AND EXISTS (SELECT 1 FROM subject s WHERE ST_DWithin(s.g3857, p.geom_3857, 50))"""


@dataclass(frozen=True)
class Scope:
    kind: str                                  # district | bbox | parcels | submission
    bbox_3857: tuple[float, float, float, float] | None = None
    codes: tuple[str, ...] | None = None
    submission: UUID | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def is_submission(self) -> bool:
        return self.kind == "submission"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.bbox_3857:
            out["bbox_3857"] = list(self.bbox_3857)
        if self.codes:
            out["codes"] = list(self.codes)
        if self.submission:
            out["submission"] = str(self.submission)
        return out

    def ctes(self) -> str:
        """WITH-clause defining subject, context, subject_buildings, subject_units."""
        if self.is_submission:
            parts = [f"subject AS NOT MATERIALIZED ({_SUB_PARCELS})",
                     f"replaced AS ({_REPLACED})",
                     f"context AS NOT MATERIALIZED ({_CONTEXT})",
                     f"subject_buildings AS NOT MATERIALIZED ({_SUB_BUILDINGS})",
                     f"subject_units AS NOT MATERIALIZED ({_SUB_UNITS})"]
        else:
            parts = [f"subject AS NOT MATERIALIZED ({_REG_PARCELS})",
                     "context AS NOT MATERIALIZED (SELECT * FROM subject WHERE false)",
                     f"subject_buildings AS NOT MATERIALIZED ({_REG_BUILDINGS})",
                     f"subject_units AS NOT MATERIALIZED ({_REG_UNITS})"]
        return "WITH " + ",\n".join(parts)

    def sql_params(self) -> dict[str, Any]:
        bbox = None
        if self.bbox_3857:
            x0, y0, x1, y1 = self.bbox_3857
            bbox = f"SRID=3857;POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"
        return {"bbox": bbox, "codes": list(self.codes) if self.codes else None,
                "submission": self.submission, **self.params}
