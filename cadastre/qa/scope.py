"""What a QA run looks at. Every rule is written once against two relations the scope defines:

* ``subject`` — the parcels being checked: the current registry (whole district, a bbox, one
  parcel) or the parcels of a survey submission;
* ``context`` — current registry parcels that stay in force around them (for a submission:
  the registry minus the parcels it replaces), used by neighbour checks (overlap, gaps).

Both expose ``ref, code, geom (native CRS), g3857, declared, srid`` plus, computed once per run,
``valid`` (``ST_IsValid(geom)``), the native bounding box ``bx0, by0, bx1, by1`` and the area
of that box the parcel leaves uncovered (``box_gap``); ``subject``
also numbers its rows (``sid``), so a rule can be run in parts (``sid % parts = part``).
They are materialised per run as session temp tables (:class:`ScopeTables`) with GiST indexes
and planner statistics, so each rule reads a small indexed table instead of re-filtering the
registry, and the scope's extent is known to the planner. The registry's buildings and units
are exposed as ``subject_buildings`` / ``subject_units`` in a WITH-clause (``Scope.ctes``): few
rules read them, and a district's units can be millions of rows; a submission's buildings and
units are temp tables too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg

# Registry relations, optionally limited to a bbox (EPSG:3857) or to given parcel codes.
_REG_PARCELS = """
    SELECT p.parcel_code::text AS ref, p.parcel_code::text AS code, p.geom, p.geom_3857 AS g3857,
           p.registered_area AS declared, p.srid
    FROM cad.parcel_current p
    WHERE (%(bbox)s::geometry IS NULL OR p.geom_3857 && %(bbox)s::geometry)
      AND (%(codes)s::text[] IS NULL OR p.parcel_code = ANY(%(codes)s::text[]))"""

_REG_BUILDINGS = """
    SELECT b.building_code::text AS ref, b.building_code::text AS code,
           b.parcel_code::text AS parcel_code, b.geom, b.geom_3857 AS g3857, b.floor_area,
           b.floors_above, b.floors_below
    FROM cad.building_current b
    WHERE (%(bbox)s::geometry IS NULL OR b.geom_3857 && %(bbox)s::geometry)
      AND (%(codes)s::text[] IS NULL OR b.parcel_code = ANY(%(codes)s::text[]))"""

_REG_UNITS = """
    SELECT u.unit_code::text AS ref, u.unit_code::text AS code,
           u.building_code::text AS building_code, u.floor_no, u.floor_count, u.geom,
           u.geom_3857 AS g3857, u.building_area, u.county_code, u.unit_code
    FROM cad.unit_current u
    WHERE (%(bbox)s::geometry IS NULL OR u.geom_3857 && %(bbox)s::geometry)
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
           f.geom_3857 AS g3857, (f.props->>'building_area')::numeric AS building_area,
           left(f.props->>'unit_code', 6)::bpchar AS county_code,
           (f.props->>'unit_code')::bpchar AS unit_code
    FROM cad.survey_feature f
    WHERE f.submission_id = %(submission)s AND f.kind = 'unit'"""

# Registry parcels a submission replaces: same code, or mostly covered by its parcels. The
# covered share is first bounded by the parcels' bounding boxes (an intersection never exceeds
# the intersection of the boxes), so exact intersections are computed only where the bound
# allows a majority.
_REPLACED = """
    SELECT p.parcel_code FROM cad.parcel_current p
    WHERE p.geom_3857 && %(subject_extent)s::geometry
      AND (p.parcel_code::text IN (SELECT code FROM subject WHERE code IS NOT NULL)
           OR ((SELECT sum(greatest(0, least(s.bx1, ST_XMax(p.geom))
                                       - greatest(s.bx0, ST_XMin(p.geom)))
                           * greatest(0, least(s.by1, ST_YMax(p.geom))
                                         - greatest(s.by0, ST_YMin(p.geom))))
                FROM subject s
                WHERE s.g3857 && p.geom_3857 AND s.srid = p.srid AND s.valid)
               > 0.499999 * ST_Area(p.geom)
               AND ST_IsValid(p.geom)     -- (an invalid parcel cannot be intersected)
               AND (SELECT sum(ST_Area(ST_Intersection(s.geom, p.geom))) FROM subject s
                    WHERE s.g3857 && p.geom_3857 AND s.srid = p.srid AND s.valid)
                   > 0.5 * ST_Area(p.geom)))"""

# Registry parcels around a submission that stay in force (within 50 m of its parcels).
_CONTEXT = """
    SELECT p.parcel_code::text AS ref, p.parcel_code::text AS code, p.geom,
           p.geom_3857 AS g3857, p.registered_area AS declared, p.srid
    FROM cad.parcel_current p
    WHERE p.geom_3857 && ST_Expand(%(subject_extent)s::geometry, 50)
      AND p.parcel_code NOT IN (SELECT parcel_code FROM replaced)
      AND EXISTS (SELECT 1 FROM subject s WHERE ST_DWithin(s.g3857, p.geom_3857, 50))"""

_PARCEL_COLUMNS = """ref, code, geom, g3857, declared, srid, ST_IsValid(geom) AS valid,
    ST_XMin(geom) AS bx0, ST_YMin(geom) AS by0, ST_XMax(geom) AS bx1, ST_YMax(geom) AS by1,
    ST_Area(ST_Envelope(geom)) - ST_Area(geom) AS box_gap"""

TEMP_TABLES = ("subject", "replaced", "context", "subject_buildings", "subject_units")


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

    @property
    def whole_register(self) -> bool:
        """The current register everywhere: no bbox, no codes, not a submission."""
        return not self.bbox_3857 and not self.codes and not self.is_submission

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
        """WITH-clause defining subject_buildings and subject_units over the registry (for a
        submission they are temp tables of :class:`ScopeTables`, like ``subject``)."""
        if self.is_submission:
            return ""
        parts = [f"subject_buildings AS NOT MATERIALIZED ({_REG_BUILDINGS})",
                 f"subject_units AS NOT MATERIALIZED ({_REG_UNITS})"]
        return "WITH " + ",\n".join(parts)

    def sql_params(self) -> dict[str, Any]:
        bbox = None
        if self.bbox_3857:
            x0, y0, x1, y1 = self.bbox_3857
            bbox = f"SRID=3857;POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"
        return {"bbox": bbox, "codes": list(self.codes) if self.codes else None,
                "submission": self.submission,
                # the whole register: rules over records need not look each record's parcel up
                "whole_register": self.whole_register,
                **self.params}


class ScopeTables:
    """The scope's ``subject`` and ``context`` as temp tables of one session, for one run.

    ``with ScopeTables(conn, scope) as t:`` creates them (dropping leftovers of an earlier run
    on the same session), and drops them on exit. ``t.params`` holds the bound parameters the
    rules need besides the tolerances (the scope's own plus ``subject_extent``), ``t.size``
    the number of subject parcels.
    """

    def __init__(self, conn: psycopg.Connection, scope: Scope) -> None:
        self.conn = conn
        self.scope = scope
        self.params: dict[str, Any] = scope.sql_params()
        self.size = 0

    def __enter__(self) -> ScopeTables:
        conn, params = self.conn, self.params
        self.drop()
        source = _SUB_PARCELS if self.scope.is_submission else _REG_PARCELS
        self.size = conn.execute(  # type: ignore[assignment]
            # numbered in ref order: every connection of a run numbers the same way
            "CREATE TEMP TABLE subject AS SELECT row_number() OVER (ORDER BY ref) AS sid, "
            f"{_PARCEL_COLUMNS} FROM ({source}) s",
            params).rowcount
        conn.execute("CREATE INDEX ON subject USING gist (g3857)")
        conn.execute("CREATE INDEX ON subject USING gist (geom)")
        conn.execute("CREATE INDEX ON subject (ref)")
        # a small sample is plenty for planning the rules (and analyses 10 × faster)
        target = conn.execute("SELECT current_setting('default_statistics_target')").fetchone()
        conn.execute("SET default_statistics_target = 10")
        conn.execute("ANALYZE subject")
        params["subject_size"] = self.size
        extent = conn.execute("SELECT ST_SetSRID(ST_Extent(g3857), 3857)::text FROM subject"
                              ).fetchone()
        # an empty scope: a box nothing intersects
        params["subject_extent"] = (extent[0] if extent and extent[0] else
                                    "SRID=3857;POINT EMPTY")
        if self.scope.is_submission:
            # a submission's buildings and units too (an upload is bounded in size; the
            # staging table's statistics do not know a fresh submission yet)
            for name, sql in (("subject_buildings", _SUB_BUILDINGS),
                              ("subject_units", _SUB_UNITS)):
                conn.execute(f"CREATE TEMP TABLE {name} AS {sql}", params)
                conn.execute(f"CREATE INDEX ON {name} (ref)")     # (look-ups by ref)
                conn.execute(f"ANALYZE {name}")
            conn.execute(f"CREATE TEMP TABLE replaced AS {_REPLACED}", params)
            conn.execute("ANALYZE replaced")
            conn.execute(f"CREATE TEMP TABLE context AS SELECT {_PARCEL_COLUMNS} "
                         f"FROM ({_CONTEXT}) c", params)
            conn.execute("CREATE INDEX ON context USING gist (g3857)")
            conn.execute("CREATE INDEX ON context USING gist (geom)")
        else:
            conn.execute("CREATE TEMP TABLE context AS SELECT * FROM subject WHERE false")
        conn.execute("ANALYZE context")
        conn.execute("SELECT set_config('default_statistics_target', %s, false)",
                     (target[0] if target else "100",))
        return self

    def drop(self) -> None:
        self.conn.execute("DROP TABLE IF EXISTS " + ", ".join(f"pg_temp.{t}"
                                                              for t in TEMP_TABLES))

    def __exit__(self, *exc: object) -> None:
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            self.drop()
