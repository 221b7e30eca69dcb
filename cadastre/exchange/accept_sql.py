"""The set-based statements of an import's accept (``cadastre.exchange.apply``): each one
``INSERT … SELECT`` from the staged rows of batch ``%(b)s`` into the register, tagged with change
set ``%(c)s``. What the register already holds (current codes, right ids) is left out, so the same
data accepted again writes nothing.

Row-valued functions go in ``FROM`` (``CROSS JOIN LATERAL``), never as ``(f(x)).*`` in the
select list: PostgreSQL evaluates the latter once per column.
"""

from __future__ import annotations

from cadastre.exchange.checks import PARTY_OF_RIGHT

_SRID = "coalesce((x.attrs->>'srid')::int, %(srid)s)"
# The staged rows the register does not hold yet, found BEFORE anything is inserted. An
# anti-join against the table being inserted into, in the INSERT itself, is planned as a nested
# loop over a sequential scan when the table looks empty (a first load) and then re-reads every
# row the statement has written so far for each staged row: quadratic.
NEW_ROWS = ("DROP TABLE IF EXISTS pg_temp.import_new", """
CREATE TEMP TABLE import_new ON COMMIT DROP AS
SELECT x.n FROM xchg.import_row x
WHERE x.batch_id = %(b)s AND CASE x.entity
    WHEN 'parcel' THEN NOT EXISTS (SELECT 1 FROM cad.parcel c
        WHERE c.valid_to IS NULL AND c.parcel_code = x.code::bpchar)
    WHEN 'building' THEN NOT EXISTS (SELECT 1 FROM cad.building c
        WHERE c.valid_to IS NULL AND c.building_code = x.code::bpchar)
    WHEN 'floor' THEN NOT EXISTS (SELECT 1 FROM cad.floor c WHERE c.valid_to IS NULL
        AND c.building_code = x.code::bpchar AND c.floor_no = (x.attrs->>'floor_no')::int)
    WHEN 'unit' THEN NOT EXISTS (SELECT 1 FROM cad.unit c
        WHERE c.valid_to IS NULL AND c.unit_code = x.code::bpchar)
    WHEN 'right' THEN NOT EXISTS (SELECT 1 FROM cad.right_record c WHERE c.right_id = x.right_id)
    WHEN 'party' THEN NOT EXISTS (SELECT 1 FROM pii.party p
        WHERE p.id_number_hash = x.id_number_hash AND p.name_hash = x.name_hash)
    ELSE false END
""", "ALTER TABLE import_new ADD PRIMARY KEY (n)", "ANALYZE import_new")
_NEW = "JOIN import_new nw ON nw.n = x.n WHERE x.batch_id = %(b)s AND x.entity = '{e}'"

PARCELS = f"""
WITH pts AS (
    SELECT code, coalesce((attrs->>'ring_no')::int, 1) AS ring, (attrs->>'seq')::int AS seq,
           ST_MakePoint((attrs->>'y_east')::float8, (attrs->>'x_north')::float8) AS pt
    FROM xchg.import_row WHERE batch_id = %(b)s AND entity = 'parcel_point'),
lines AS (
    SELECT code, ring, ST_MakeLine(array_agg(pt ORDER BY seq)) AS line FROM pts
    GROUP BY code, ring),
closed AS (
    SELECT code, ring, CASE WHEN ST_IsClosed(line) THEN line
                            ELSE ST_AddPoint(line, ST_StartPoint(line)) END AS line FROM lines),
polys AS (
    SELECT code, ST_MakePolygon(max(line) FILTER (WHERE ring = 1),
               coalesce(array_agg(line ORDER BY ring) FILTER (WHERE ring > 1), '{{}}')) AS poly
    FROM closed GROUP BY code)
INSERT INTO cad.parcel (feature_id, parcel_code, seat, compound_name, land_use, right_type,
    right_nature, registered_area, neighbour_north, neighbour_east, neighbour_south,
    neighbour_west, map_sheet, srid, geom, valid_from, change_id)
SELECT gen_random_uuid(), x.code, v.seat, v.compound_name, v.land_use, v.right_type,
       v.right_nature, v.registered_area, v.neighbour_north, v.neighbour_east,
       v.neighbour_south, v.neighbour_west, v.map_sheet, {_SRID},
       ST_Multi(ST_SetSRID(g.poly, {_SRID})), %(now)s, %(c)s
FROM xchg.import_row x
CROSS JOIN LATERAL jsonb_populate_record(NULL::cad.parcel, x.attrs) v
JOIN polys g ON g.code = x.code
{_NEW.format(e='parcel')}
"""

# J1 is the north-west-most vertex, points clockwise (as cadastre.register.boundary numbers them)
_RING_POINTS = """
WITH ring AS (
    SELECT parcel_code, srid, ST_ExteriorRing(ST_ForcePolygonCW(ST_GeometryN(geom, 1))) AS r
    FROM cad.parcel WHERE change_id = %(c)s),
pts AS (
    SELECT parcel_code, srid, (d).path[1] AS k, (d).geom AS g, ST_NPoints(r) - 1 AS n
    FROM ring, ST_DumpPoints(r) d),
start AS (
    SELECT DISTINCT ON (parcel_code) parcel_code, k AS k0 FROM pts WHERE k <= n
    ORDER BY parcel_code, ST_Y(g) DESC, ST_X(g) ASC),
num AS (
    SELECT pts.*, ((k - k0 + n) %% n) + 1 AS seq FROM pts JOIN start USING (parcel_code)
    WHERE k <= n)
"""
BOUNDARY_POINTS = _RING_POINTS + """
INSERT INTO cad.boundary_point (feature_id, parcel_code, county_code, point_no, seq, ring_no,
    point_type, x_north, y_east, srid, geom, valid_from, change_id)
SELECT gen_random_uuid(), parcel_code, left(parcel_code, 6), 'J' || seq, seq, 1, 1,
       round(ST_Y(g)::numeric, 3),
       round(ST_X(g)::numeric, 3), srid, ST_SetSRID(g, srid), %(now)s, %(c)s FROM num
"""
BOUNDARY_LINES = _RING_POINTS + """
INSERT INTO cad.boundary_line (feature_id, parcel_code, start_point_no, end_point_no, length,
    line_nature, srid, geom, valid_from, change_id)
SELECT gen_random_uuid(), a.parcel_code, 'J' || a.seq, 'J' || b.seq,
       round(ST_Distance(a.g, b.g)::numeric, 3), 1, a.srid,
       ST_SetSRID(ST_MakeLine(a.g, b.g), a.srid), %(now)s, %(c)s
FROM num a JOIN num b ON b.parcel_code = a.parcel_code AND b.seq = a.seq %% a.n + 1
"""

BUILDINGS = f"""
INSERT INTO cad.building (feature_id, building_code, name, project_name, floors_total,
    floors_above, floors_below, height, ground_elevation, structure, planned_use,
    completion_date, floor_area, footprint_area, srid, geom, valid_from, change_id)
SELECT gen_random_uuid(), x.code, v.name, v.project_name,
       coalesce(v.floors_above, v.floors_total - coalesce(v.floors_below, 0))
         + coalesce(v.floors_below, 0),
       coalesce(v.floors_above, v.floors_total - coalesce(v.floors_below, 0)),
       coalesce(v.floors_below, 0), v.height, coalesce(v.ground_elevation, 0), v.structure,
       v.planned_use, v.completion_date, v.floor_area, v.footprint_area, {_SRID},
       coalesce(ST_Multi(ST_GeomFromText(x.attrs->>'geom', {_SRID})), par.geom), %(now)s, %(c)s
FROM xchg.import_row x
CROSS JOIN LATERAL jsonb_populate_record(NULL::cad.building, x.attrs - 'geom') v
LEFT JOIN cad.parcel par ON par.valid_to IS NULL
    AND par.parcel_code = substr(x.code, 1, 19)::bpchar
{_NEW.format(e='building')}
"""

FLOORS = f"""
INSERT INTO cad.floor (feature_id, building_code, floor_no, floor_label, base_elevation,
    storey_height, floor_area, srid, geom, valid_from, change_id)
SELECT gen_random_uuid(), x.code, v.floor_no, v.floor_label,
       coalesce(v.base_elevation, b.ground_elevation
                + (v.floor_no - CASE WHEN v.floor_no > 0 THEN 1 ELSE 0 END)
                  * coalesce(v.storey_height, 3)),
       coalesce(v.storey_height, 3), v.floor_area, {_SRID},
       coalesce(ST_Multi(ST_GeomFromText(x.attrs->>'geom', {_SRID})), b.geom), %(now)s, %(c)s
FROM xchg.import_row x
CROSS JOIN LATERAL jsonb_populate_record(NULL::cad.floor, x.attrs - 'geom') v
JOIN cad.building b ON b.valid_to IS NULL AND b.building_code = x.code::bpchar
{_NEW.format(e='floor')}
"""

UNITS = f"""
INSERT INTO cad.unit (feature_id, unit_code, county_code, floor_no, floor_count, room_no, seat,
    use, house_type, house_nature, layout, building_area, inner_area, shared_area,
    shared_coefficient, land_share_area, base_elevation, height, srid, geom, valid_from,
    change_id)
SELECT gen_random_uuid(), x.code, left(x.code, 6), v.floor_no, coalesce(v.floor_count, 1),
       v.room_no, v.seat,
       v.use, v.house_type, v.house_nature, v.layout, v.building_area, v.inner_area,
       v.shared_area, v.shared_coefficient, v.land_share_area,
       coalesce(v.base_elevation, f.base_elevation, 0),
       coalesce(v.height, f.storey_height, 3), {_SRID},
       coalesce(ST_Multi(ST_GeomFromText(x.attrs->>'geom', {_SRID})), f.geom, b.geom),
       %(now)s, %(c)s
FROM xchg.import_row x
CROSS JOIN LATERAL jsonb_populate_record(NULL::cad.unit, x.attrs - 'geom') v
JOIN cad.building b ON b.valid_to IS NULL
    AND b.building_code = substr(x.code, 1, 24)::bpchar
LEFT JOIN cad.floor f ON f.valid_to IS NULL AND f.building_code = b.building_code
    AND f.floor_no = v.floor_no
{_NEW.format(e='unit')}
"""

PARTIES = f"""
INSERT INTO pii.party (party_id, party_type, id_type, name_enc, name_hash, id_number_enc,
    id_number_hash, phone_enc, phone_hash, address_enc)
SELECT DISTINCT ON (x.name_hash, x.id_number_hash) gen_random_uuid(),
       coalesce((x.attrs->>'party_type')::smallint, 1),
       coalesce((x.attrs->>'id_type')::smallint, 1),
       x.name_enc, x.name_hash, x.id_number_enc, x.id_number_hash, x.phone_enc, x.phone_hash,
       x.address_enc
FROM xchg.import_row x
{_NEW.format(e='party')}
ORDER BY x.name_hash, x.id_number_hash, x.n
"""

# Current rights (QSZT 1) and closed ones (QSZT 2, history: a closed version, so the as-of
# queries see them). A closed right ends when a cancellation of the batch names it, else when
# the next right of its kind on its unit was registered, else at its end date, else (at the
# latest) now; always after it began.
RIGHTS = """
WITH staged AS (
    SELECT x.n, x.right_id, k.kind, x.code, v.business_no, v.registration_type, v.right_type,
           v.registration_reason, v.certificate_no, v.registry_office, v.registrar_name,
           v.registered_at, v.right_start, v.right_end, v.status, v.remark,
           least(v.registered_at, %(now)s) AS valid_from,
           lead(v.registered_at) OVER (PARTITION BY x.code, k.kind
                                       ORDER BY v.registered_at, x.n) AS next_at
    FROM xchg.import_row x
    JOIN (VALUES ('QLT_FW_FDCQ_YZ', 'ownership'), ('QLF_QL_JSYDSYQ', 'land_use'),
                 ('QLF_QL_DYAQ', 'mortgage'), ('QLF_QL_YGDJ', 'pre_notice'),
                 ('QLF_QL_CFDJ', 'seizure'), ('QLF_QL_YYDJ', 'objection'),
                 ('QLF_QL_DYIQ', 'easement'), ('QLF_QL_ZXDJ', 'cancellation')) k(tbl, kind)
        ON k.tbl = x.tbl
    CROSS JOIN LATERAL jsonb_populate_record(NULL::cad.right_record, x.attrs - 'right_id') v
    WHERE x.batch_id = %(b)s AND x.entity = 'right' AND v.status IN (1, 2)),
ended AS (
    SELECT (attrs->>'cancelled_right_id')::uuid AS right_id,
           min((attrs->>'cancelled_at')::timestamptz) AS at
    FROM xchg.import_row
    WHERE batch_id = %(b)s AND entity = 'right' AND tbl = 'QLF_QL_ZXDJ'
      AND attrs ? 'cancelled_right_id'
    GROUP BY 1)
INSERT INTO cad.right_record (right_id, kind, unit_code, business_no, registration_type,
    right_type, registration_reason, certificate_no, registry_office, registrar_name,
    registered_at, right_start, right_end, status, remark, valid_from, valid_to, change_id,
    county_code)
SELECT s.right_id, s.kind, s.code, s.business_no, s.registration_type, s.right_type,
       s.registration_reason, s.certificate_no, s.registry_office, s.registrar_name,
       s.registered_at, s.right_start, s.right_end, s.status, s.remark, s.valid_from,
       CASE WHEN s.status = 2 THEN greatest(
           least(coalesce(e.at, s.next_at, s.right_end::timestamptz, %(now)s), %(now)s),
           s.valid_from + interval '1 second') END,
       %(c)s, left(s.code, 6)
FROM staged s
JOIN import_new nw ON nw.n = s.n
LEFT JOIN ended e ON e.right_id = s.right_id
"""

# who holds which new right: a temporary table with statistics (estimated from the join of
# staged rows by message and code alone, the link count comes out as a handful, and a nested loop
# over the parties would follow); then the earliest registered party of each identity (as parties
# are matched elsewhere), for all links at once
RIGHT_PARTIES = ("DROP TABLE IF EXISTS pg_temp.import_links", f"""
CREATE TEMP TABLE import_links ON COMMIT DROP AS
SELECT rec.version_id, rec.county_code, x.name_hash, x.id_number_hash,
       coalesce((x.attrs->>'role')::smallint, 1) AS role,
       coalesce((x.attrs->>'seq')::smallint, 1) AS seq, x.attrs->>'share' AS share,
       (x.attrs->>'co_ownership')::smallint AS co_ownership
FROM xchg.import_row x
JOIN xchg.import_row r ON r.batch_id = x.batch_id AND r.entity = 'right' AND {PARTY_OF_RIGHT}
JOIN cad.right_record rec ON rec.right_id = r.right_id AND rec.change_id = %(c)s
WHERE x.batch_id = %(b)s AND x.entity = 'party'
""", "ANALYZE import_links", """
INSERT INTO cad.right_party (right_version_id, county_code, party_id, role, seq, share,
    co_ownership)
SELECT l.version_id, l.county_code, p.party_id, l.role, l.seq, l.share, l.co_ownership
FROM import_links l
JOIN (SELECT DISTINCT ON (q.name_hash, q.id_number_hash) q.name_hash, q.id_number_hash,
             q.party_id
      FROM pii.party q
      WHERE (q.name_hash, q.id_number_hash) IN (SELECT name_hash, id_number_hash
                                                 FROM import_links)
      ORDER BY q.name_hash, q.id_number_hash, q.created_at, q.party_id) p
    USING (name_hash, id_number_hash)
ON CONFLICT DO NOTHING
""")


def detail_sql(table: str) -> str:
    """The detail rows (``table``, one of ``DETAIL_TABLE``'s) of the rights of kinds ``%(k)s``
    written by this change; a cancellation names the right it ends (itself when not given)."""
    return f"""
INSERT INTO {table}
SELECT v.*
FROM xchg.import_row x
JOIN cad.right_record r ON r.right_id = x.right_id AND r.change_id = %(c)s
CROSS JOIN LATERAL jsonb_populate_record(NULL::{table}, x.attrs || jsonb_build_object(
    'right_version_id', r.version_id, 'county_code', r.county_code,
    'cancelled_right_id', coalesce(x.attrs->>'cancelled_right_id', x.right_id::text))) v
WHERE x.batch_id = %(b)s AND x.entity = 'right' AND r.kind = ANY(%(k)s)
"""
