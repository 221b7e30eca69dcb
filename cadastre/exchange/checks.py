"""Checks across the staged rows of an import batch and the register (set-based SQL): duplicate
codes and rights, orphans (buildings without their parcel, units without their building,
parties without their right), rights on missing units, two current ownerships of one unit.

Also counts what is new and what the register already holds, so a re-import of the same data
shows nothing new (and its accept writes nothing).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import psycopg

if TYPE_CHECKING:
    from cadastre.exchange.staging import Issues

R = "xchg.import_row"
_PARCEL_KNOWN = (f"(EXISTS (SELECT 1 FROM {R} p WHERE p.batch_id = %(b)s AND p.entity = 'parcel' "
                 "AND p.code = substr({col}, 1, 19)) OR EXISTS (SELECT 1 FROM cad.parcel c "
                 "WHERE c.valid_to IS NULL AND c.parcel_code = substr({col}, 1, 19)::bpchar))")
_BUILDING_KNOWN = (f"(EXISTS (SELECT 1 FROM {R} p WHERE p.batch_id = %(b)s AND "
                   "p.entity = 'building' AND p.code = substr({col}, 1, 24)) OR EXISTS (SELECT 1 "
                   "FROM cad.building c WHERE c.valid_to IS NULL AND "
                   "c.building_code = substr({col}, 1, 24)::bpchar))")
_UNIT_KNOWN = (f"(EXISTS (SELECT 1 FROM {R} p WHERE p.batch_id = %(b)s AND p.entity = 'unit' "
               "AND p.code = {col}) OR EXISTS (SELECT 1 FROM cad.unit c WHERE c.valid_to IS NULL "
               "AND c.unit_code = {col}::bpchar))")

# a staged party row ``x`` belongs to the staged right row ``r`` of its message: by the right's
# id when the row names it (X_QLID), else by unit and certificate number
PARTY_OF_RIGHT = ("r.msg = x.msg AND r.code = x.code AND CASE WHEN x.attrs ? 'right_id' THEN "
                  "x.attrs->>'right_id' = r.right_id::text ELSE (x.attrs->>'certificate_no' IS "
                  "NULL OR x.attrs->>'certificate_no' = r.attrs->>'certificate_no') END")

# (issue code, warning?, entity named in the report, SQL counting the rows at fault)
CHECKS: tuple[tuple[str, bool, str, str], ...] = (
    ("DUPLICATE_FEATURE", False, "parcel", f"SELECT count(*) FROM (SELECT code FROM {R} WHERE "
     "batch_id = %(b)s AND entity = 'parcel' GROUP BY code HAVING count(*) > 1) d"),
    ("DUPLICATE_FEATURE", False, "building", f"SELECT count(*) FROM (SELECT code FROM {R} WHERE "
     "batch_id = %(b)s AND entity = 'building' GROUP BY code HAVING count(*) > 1) d"),
    ("DUPLICATE_FEATURE", False, "floor", f"SELECT count(*) FROM (SELECT code FROM {R} WHERE "
     "batch_id = %(b)s AND entity = 'floor' GROUP BY code, attrs->>'floor_no' "
     "HAVING count(*) > 1) d"),
    ("DUPLICATE_FEATURE", False, "unit", f"SELECT count(*) FROM (SELECT code FROM {R} WHERE "
     "batch_id = %(b)s AND entity = 'unit' GROUP BY code HAVING count(*) > 1) d"),
    ("DUPLICATE_RIGHT", False, "right", f"SELECT count(*) FROM (SELECT right_id FROM {R} WHERE "
     "batch_id = %(b)s AND entity = 'right' GROUP BY right_id HAVING count(*) > 1) d"),
    ("ORPHAN_BUILDING", False, "building", f"SELECT count(*) FROM {R} x WHERE x.batch_id = %(b)s"
     " AND x.entity = 'building' AND NOT " + _PARCEL_KNOWN.format(col="x.code")),
    ("ORPHAN_FLOOR", False, "floor", f"SELECT count(*) FROM {R} x WHERE x.batch_id = %(b)s"
     " AND x.entity = 'floor' AND NOT " + _BUILDING_KNOWN.format(col="x.code")),
    ("ORPHAN_UNIT", False, "unit", f"SELECT count(*) FROM {R} x WHERE x.batch_id = %(b)s"
     " AND x.entity = 'unit' AND NOT " + _BUILDING_KNOWN.format(col="x.code")),
    ("ORPHAN_POINT", False, "parcel_point", f"SELECT count(*) FROM {R} x WHERE x.batch_id = "
     f"%(b)s AND x.entity = 'parcel_point' AND NOT EXISTS (SELECT 1 FROM {R} p WHERE "
     "p.batch_id = %(b)s AND p.entity = 'parcel' AND p.code = x.code)"),
    ("PARCEL_GEOMETRY_MISSING", False, "parcel", f"SELECT count(*) FROM {R} x WHERE "
     "x.batch_id = %(b)s AND x.entity = 'parcel' AND NOT EXISTS (SELECT 1 FROM cad.parcel c "
     "WHERE c.valid_to IS NULL AND c.parcel_code = x.code::bpchar) AND (SELECT count(*) FROM "
     f"{R} p WHERE p.batch_id = %(b)s AND p.entity = 'parcel_point' AND p.code = x.code "
     "AND coalesce((p.attrs->>'ring_no')::int, 1) = 1) < 3"),
    ("RIGHT_ON_MISSING_UNIT", False, "right", f"SELECT count(*) FROM {R} x WHERE "
     "x.batch_id = %(b)s AND x.entity = 'right' AND CASE WHEN substr(x.code, 20, 1) = 'F' "
     "THEN NOT " + _UNIT_KNOWN.format(col="x.code") + " ELSE NOT "
     + _PARCEL_KNOWN.format(col="x.code") + " END"),
    ("ORPHAN_PARTY", False, "party", f"SELECT count(*) FROM {R} x WHERE x.batch_id = %(b)s "
     f"AND x.entity = 'party' AND NOT EXISTS (SELECT 1 FROM {R} r WHERE r.batch_id = %(b)s "
     "AND r.entity = 'right' AND " + PARTY_OF_RIGHT + ")"),
    ("DUPLICATE_OWNERSHIP", False, "right", "SELECT count(*) FROM (SELECT code FROM ("
     f"SELECT code, right_id FROM {R} WHERE batch_id = %(b)s AND entity = 'right' "
     "AND tbl = 'QLT_FW_FDCQ_YZ' AND attrs->>'status' = '1' UNION SELECT c.unit_code::text, "
     "c.right_id FROM cad.right_record c WHERE c.valid_to IS NULL AND c.status = 1 AND "
     f"c.kind = 'ownership' AND c.unit_code IN (SELECT code FROM {R} WHERE batch_id = %(b)s "
     "AND entity = 'right' AND tbl = 'QLT_FW_FDCQ_YZ')) o GROUP BY code "
     "HAVING count(DISTINCT right_id) > 1) d"),
    ("RIGHT_WITHOUT_HOLDER", True, "right", f"SELECT count(*) FROM {R} r WHERE "
     "r.batch_id = %(b)s AND r.entity = 'right' AND r.tbl IN ('QLT_FW_FDCQ_YZ', "
     f"'QLF_QL_JSYDSYQ') AND NOT EXISTS (SELECT 1 FROM {R} x WHERE x.batch_id = %(b)s AND "
     "x.entity = 'party' AND " + PARTY_OF_RIGHT + " AND coalesce((x.attrs->>'role')::int, 1) "
     "= 1)"),
    ("TEMPORARY_NOT_IMPORTED", True, "right", f"SELECT count(*) FROM {R} WHERE "
     "batch_id = %(b)s AND entity = 'right' AND attrs->>'status' = '0'"),
)

# (entity, SQL counting the staged rows the register already holds)
EXISTING: dict[str, str] = {
    "parcel": f"SELECT count(*) FROM {R} x JOIN cad.parcel c ON c.valid_to IS NULL AND "
              "c.parcel_code = x.code::bpchar WHERE x.batch_id = %(b)s AND x.entity = 'parcel'",
    "building": f"SELECT count(*) FROM {R} x JOIN cad.building c ON c.valid_to IS NULL AND "
                "c.building_code = x.code::bpchar WHERE x.batch_id = %(b)s "
                "AND x.entity = 'building'",
    "floor": f"SELECT count(*) FROM {R} x JOIN cad.floor c ON c.valid_to IS NULL AND "
             "c.building_code = x.code::bpchar AND c.floor_no = (x.attrs->>'floor_no')::int "
             "WHERE x.batch_id = %(b)s AND x.entity = 'floor'",
    "unit": f"SELECT count(*) FROM {R} x JOIN cad.unit c ON c.valid_to IS NULL AND "
            "c.unit_code = x.code::bpchar WHERE x.batch_id = %(b)s AND x.entity = 'unit'",
    "right": f"SELECT count(*) FROM {R} x WHERE x.batch_id = %(b)s AND x.entity = 'right' AND "
             "EXISTS (SELECT 1 FROM cad.right_record c WHERE c.right_id = x.right_id)",
    "party": f"SELECT count(*) FROM (SELECT DISTINCT name_hash, id_number_hash FROM {R} x "
             "WHERE x.batch_id = %(b)s AND x.entity = 'party' AND EXISTS (SELECT 1 FROM "
             "pii.party p WHERE p.id_number_hash = x.id_number_hash AND "
             "p.name_hash = x.name_hash)) d",
}


# (entity, register table, its code column): a staged feature the register already holds is
# not written; when what it says differs from the registered version (an attribute the row
# carries, read as the register column's type, or its geometry) that is a finding, by code
_DIFFERS = """
SELECT x.code FROM xchg.import_row x
JOIN cad.{t} c ON c.valid_to IS NULL AND c.{col} = x.code::bpchar
CROSS JOIN LATERAL jsonb_populate_record(NULL::cad.{t}, x.attrs - 'geom' - 'srid') v
WHERE x.batch_id = %(b)s AND x.entity = '{e}' AND (EXISTS (
        SELECT 1 FROM jsonb_object_keys(x.attrs - 'geom' - 'srid') k
        WHERE to_jsonb(v) -> k IS DISTINCT FROM to_jsonb(c) -> k)
    OR (x.attrs ? 'geom' AND NOT ST_Equals(
        ST_Multi(ST_GeomFromText(x.attrs->>'geom', c.srid)), c.geom)))
ORDER BY x.code
"""
DIFFERS = tuple((e, _DIFFERS.format(e=e, t=t, col=col)) for e, t, col in (
    ("parcel", "parcel", "parcel_code"), ("building", "building", "building_code"),
    ("unit", "unit", "unit_code")))


def _differing(conn: psycopg.Connection, p: dict[str, Any], issues: Issues) -> None:
    for entity, sql in DIFFERS:
        for (code,) in conn.execute(sql, p):
            issues.add("FEATURE_DIFFERS", warning=True, entity=entity, feature=code)


def run(conn: psycopg.Connection, bid: uuid.UUID, srid: int, issues: Issues
        ) -> dict[str, dict[str, int]]:
    """Add the cross-row findings to ``issues``; the counts per entity (rows, new, existing)."""
    p = {"b": bid}
    _differing(conn, p, issues)
    for code, warning, entity, sql in CHECKS:
        n = int(conn.execute(sql, p).fetchone()[0])  # type: ignore[index]
        if n:
            issues.add_many(code, n, warning=warning, entity=entity)
    counts: dict[str, dict[str, int]] = {}
    for entity, rows in conn.execute(
            f"SELECT entity, count(*) FROM {R} WHERE batch_id = %(b)s GROUP BY entity", p):
        counts[entity] = {"rows": int(rows)}
    parties = conn.execute(f"SELECT count(*) FROM (SELECT DISTINCT name_hash, id_number_hash "
                           f"FROM {R} WHERE batch_id = %(b)s AND entity = 'party') d",
                           p).fetchone()
    if "party" in counts and parties:
        counts["party"]["distinct"] = int(parties[0])
    for entity, sql in EXISTING.items():
        if entity in counts:
            existing = int(conn.execute(sql, p).fetchone()[0])  # type: ignore[index]
            total = counts[entity].get("distinct", counts[entity]["rows"])
            counts[entity]["existing"] = existing
            counts[entity]["new"] = total - existing
    return counts


def summary(report: dict[str, Any]) -> int:
    """How many new rows an accept would write (0: the register holds all of it)."""
    return sum(c.get("new", 0) for e, c in report.get("counts", {}).items()
               if e not in ("parcel_point", "application"))
