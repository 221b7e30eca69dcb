"""Quality rules: id, category, severity, bilingual description and the SQL that finds problems.

Each rule's SQL reads the scope's relations (``cadastre/qa/scope.py``: the temp tables
``subject`` and ``context``, and ``subject_buildings`` / ``subject_units`` from a WITH-clause the
engine puts in front of rules that name them) and returns rows
``(subject text[], measure float8, message text, geom geometry)`` with geom in EPSG:3857.
Tolerances are bound parameters (``%(name)s``) taken from settings (``QaSettings``), next to the
scope's parameters (``%(bbox)s``, ``%(subject_extent)s`` ...).

Every rule runs over the whole scope in one set-based statement; the expensive geometry
functions (relate, overlay, distance) only see candidates that cheap tests (bounding-box
arithmetic, segment lengths, grid cells) could not rule out, and every such pre-filter is a
necessary condition of the rule's own test, so findings are exactly those of the plain query.
Categories follow the registration quality programmes: principle (原则性), content (内容),
certificate (证书), period (期限), time_limit (时限), reporting (汇交).
"""

from __future__ import annotations

from cadastre.qa.registration_rules import REGISTRATION_RULES, SCOPE_FILTER
from cadastre.qa.rule import CATEGORIES as CATEGORIES
from cadastre.qa.rule import Rule as Rule
from cadastre.qa.rule import _r

# Vertices with their neighbours along each ring, for vertex-level checks. The scope's
# ``subject`` has an index on ``ref``, so the window only sorts the vertices of one parcel at a
# time (incremental sort), not all of them.
_VERTICES = """
    SELECT s.ref, d.path[1] AS poly, d.path[2] AS ring, d.path[3] AS k, d.geom AS pt,
           lag(d.geom) OVER w AS prev_pt,
           lead(d.geom) OVER w AS next_pt
    FROM subject s, ST_DumpPoints(ST_Multi(s.geom)) d
    WHERE s.sid > %(sid_lo)s AND s.sid <= %(sid_hi)s
    WINDOW w AS (PARTITION BY s.ref, d.path[1], d.path[2] ORDER BY d.path[3])"""

# Rules hashing or grouping every unit of the scope in one step: with the QA session's
# work_mem (256MB) a 10 M-unit district's hash table went to disk in batches; 1GB keeps it in
# memory (1M parcels, each rule alone: unit overlap 36 -> 30 s, outside building 30 -> 25 s,
# code/parcel mismatch 25 -> 23 s). Only as much is used as the scope needs.
_ALL_UNITS_IN_MEMORY = ("work_mem", "1GB")

# An anti-join of two code indexes (the codes of records that no unit has): both read in code
# order and merged by one process, with nothing hashed. A parallel hash join over the same
# indexes took as long on three processes (1M parcels: 7.3 s on three vs 7.4 s on one). (Units
# without records need the units' rows anyway: their hash anti-join stays.)
_MERGED_CODES = (("max_parallel_workers_per_gather", "0"), ("enable_hashjoin", "off"))

RULES: tuple[Rule, ...] = (
    _r("GEOM_INVALID", "content", "error", "宗地几何无效（自相交等）",
       "parcel geometry is invalid (self-intersection, ...)", """
        SELECT ARRAY[s.ref], NULL::float8,
               format('几何无效：%s / invalid geometry: %s', ST_IsValidReason(s.geom),
                      ST_IsValidReason(s.geom)),
               ST_Transform(coalesce(ST_SetSRID((ST_IsValidDetail(s.geom)).location, s.srid),
                                     ST_PointOnSurface(ST_MakeValid(s.geom))), 3857)
        FROM subject s WHERE NOT s.valid""", cost=4),
    _r("GEOM_TOO_FEW_POINTS", "content", "error", "界址点少于 3 个",
       "a ring has fewer than 3 distinct points", """
        SELECT ARRAY[s.ref], r.n::float8,
               format('环只有 %s 个点 / ring has only %s points', r.n - 1, r.n - 1),
               ST_Transform(ST_StartPoint(r.ring), 3857)
        FROM (SELECT * FROM subject s        -- one ring: its points are the geometry's
              WHERE ST_NPoints(s.geom) < 4 OR ST_NRings(s.geom) > 1
                 OR ST_NumGeometries(s.geom) > 1) s,
             LATERAL (SELECT (ST_DumpRings(g.geom)).geom AS ring
                      FROM ST_Dump(ST_Multi(s.geom)) g) rr,
             LATERAL (SELECT ST_ExteriorRing(rr.ring) AS ring,
                             ST_NPoints(ST_ExteriorRing(rr.ring)) AS n) r
        WHERE r.n < 4""", cost=5),
    _r("GEOM_DUPLICATE_VERTEX", "content", "warning", "重复界址点（相邻点距离小于容差）",
       "consecutive duplicate vertices", """
        SELECT ARRAY[v.ref], ST_Distance(v.pt, v.prev_pt),
               format('相邻点重复（%s m）/ duplicate vertex (%s m apart)',
                      round(ST_Distance(v.pt, v.prev_pt)::numeric, 4),
                      round(ST_Distance(v.pt, v.prev_pt)::numeric, 4)),
               ST_Transform(v.pt, 3857)
        FROM (SELECT s.ref, ST_StartPoint(d.geom) AS prev_pt, ST_EndPoint(d.geom) AS pt
              FROM subject s, ST_DumpSegments(s.geom) d
              -- a segment joins each vertex to the one before it along its ring
              WHERE ST_Length(d.geom) <= %(duplicate_vertex_m)s * 1.000001) v
        WHERE ST_Distance(v.pt, v.prev_pt) < %(duplicate_vertex_m)s""", cost=6),
    _r("GEOM_SPIKE", "content", "error", "尖刺（夹角过小的界址点）",
       "spike: a vertex with a very sharp angle", f"""
        SELECT ARRAY[v.ref], a.angle,
               format('尖角 %s° / spike of %s°', round(a.angle::numeric, 2),
                      round(a.angle::numeric, 2)),
               ST_Transform(v.pt, 3857)
        FROM ({_VERTICES}) v,
             LATERAL (SELECT degrees(abs(ST_Azimuth(v.pt, v.prev_pt)
                                         - ST_Azimuth(v.pt, v.next_pt))) AS d) r,
             LATERAL (SELECT least(r.d, 360 - r.d) AS angle) a
        WHERE v.prev_pt IS NOT NULL AND v.next_pt IS NOT NULL
          AND NOT ST_Equals(v.pt, v.prev_pt) AND NOT ST_Equals(v.pt, v.next_pt)
          AND a.angle < %(spike_degrees)s""", cost=20, parts=2),
    _r("AREA_MISMATCH", "content", "warning", "计算面积与登记面积不符",
       "computed area differs from the registered/declared area", """
        SELECT ARRAY[s.ref], (ST_Area(s.geom) - s.declared)::float8,
               format('计算面积 %s m²，登记面积 %s m² / computed %s m², registered %s m²',
                      round(ST_Area(s.geom)::numeric, 2), s.declared,
                      round(ST_Area(s.geom)::numeric, 2), s.declared),
               ST_Transform(ST_PointOnSurface(s.geom), 3857)
        FROM subject s
        WHERE s.declared IS NOT NULL AND s.valid
          AND abs(ST_Area(s.geom) - s.declared) >
              greatest(%(area_abs_m2)s, %(area_rel)s * s.declared)"""),
    _r("OVERLAP", "principle", "error", "宗地重叠", "parcels overlap", """
        SELECT ARRAY[a.ref, b.ref], ST_Area(x.g)::float8,
               format('重叠 %s m² / overlap of %s m²', round(ST_Area(x.g)::numeric, 2),
                      round(ST_Area(x.g)::numeric, 2)),
               ST_Transform(x.g, 3857)
        FROM subject a
        JOIN (SELECT ref, geom, g3857, srid, valid, bx0, by0, bx1, by1, true AS own FROM subject
              UNION ALL
              SELECT ref, geom, g3857, srid, valid, bx0, by0, bx1, by1, false FROM context) b
          ON a.g3857 && b.g3857 AND (NOT b.own OR a.ref < b.ref) AND a.srid = b.srid
             AND a.valid AND b.valid
             -- the overlap lies inside both bounding boxes: neighbours whose boxes only touch
             -- (or overlap by less than the tolerance) cannot overlap by more
             AND greatest(0, least(a.bx1, b.bx1) - greatest(a.bx0, b.bx0))
                 * greatest(0, least(a.by1, b.by1) - greatest(a.by0, b.by0))
                 > %(overlap_m2)s * 0.999999
             AND ST_Relate(a.geom, b.geom, '2********'),
             LATERAL (SELECT ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS g) x
        WHERE a.sid > %(sid_lo)s AND a.sid <= %(sid_hi)s AND ST_Area(x.g) > %(overlap_m2)s""",
       cost=40, parts=2),
    _r("GAP_SLIVER", "principle", "warning", "相邻宗地间的缝隙（狭长空隙）",
       "sliver gap between neighbouring parcels", """
        WITH pieces AS (                  -- blocks: parcels less than 2 gap widths apart
            -- (in ref order, so that every connection numbers the blocks the same way)
            SELECT geom, srid, ST_ClusterDBSCAN(geom, eps := %(gap_width_m)s * 2, minpoints := 1)
                       OVER (PARTITION BY srid ORDER BY ref, own) AS cid
            FROM (SELECT ref, true AS own, geom, srid FROM subject WHERE valid
                  UNION ALL SELECT ref, false, geom, srid FROM context WHERE valid) a),
          blocks AS (SELECT srid, cid, ST_Union(geom) AS u FROM pieces
                     WHERE cid % %(parts)s = %(part)s GROUP BY srid, cid),
          gaps AS (
            SELECT (ST_Dump(ST_Difference(
                        ST_Buffer(ST_Buffer(b.u, %(gap_width_m)s, 'join=mitre mitre_limit=5'),
                                  -%(gap_width_m)s, 'join=mitre mitre_limit=5'),
                        b.u))).geom AS g
            FROM blocks b)
        SELECT coalesce((SELECT array_agg(s.ref ORDER BY s.ref) FROM subject s
                         WHERE ST_DWithin(s.geom, g.g, %(gap_width_m)s)), '{}'),
               ST_Area(g.g)::float8,
               format('缝隙 %s m² / gap of %s m²', round(ST_Area(g.g)::numeric, 2),
                      round(ST_Area(g.g)::numeric, 2)),
               ST_Transform(g.g, 3857)
        FROM gaps g
        WHERE ST_Area(g.g) > %(gap_min_m2)s
          AND EXISTS (SELECT 1 FROM subject s WHERE ST_DWithin(s.geom, g.g, %(gap_width_m)s))""",
       cost=70, parts=2),
    _r("BUILDING_OUTSIDE_PARCEL", "content", "error", "自然幢越出所在宗地",
       "building crosses its parcel boundary", """
        SELECT ARRAY[x.ref, x.p_ref], ST_Area(ST_Difference(x.geom, x.p_geom))::float8,
               format('越界 %s m² / %s m² outside the parcel',
                      round(ST_Area(ST_Difference(x.geom, x.p_geom))::numeric, 2),
                      round(ST_Area(ST_Difference(x.geom, x.p_geom))::numeric, 2)),
               ST_Transform(ST_Difference(x.geom, x.p_geom), 3857)
        FROM (SELECT b.ref, b.geom, p.ref AS p_ref, p.geom AS p_geom
              FROM subject_buildings b JOIN subject p ON p.code = b.parcel_code
              WHERE p.sid > %(sid_lo)s AND p.sid <= %(sid_hi)s AND p.valid
                -- inside the parcel's bounding box, a building can only stick out where the
                -- box is not the parcel: if that is within the tolerance, so is the rest
                AND NOT (ST_XMin(b.geom) >= p.bx0 AND ST_XMax(b.geom) <= p.bx1
                         AND ST_YMin(b.geom) >= p.by0 AND ST_YMax(b.geom) <= p.by1
                         AND p.box_gap <= %(overlap_m2)s * 0.999999)
              OFFSET 0) x                 -- (the cheap test first, for every building)
        WHERE ST_IsValid(x.geom)
          -- a building its parcel covers has nothing outside it
          AND NOT ST_CoveredBy(x.geom, x.p_geom)
          AND ST_Area(ST_Difference(x.geom, x.p_geom)) > %(overlap_m2)s""", cost=15, parts=2),
    _r("UNIT_OUTSIDE_BUILDING", "content", "error", "户超出自然幢轮廓",
       "unit plan outside its building footprint", """
        WITH buildings AS MATERIALIZED (  -- each building's bounding box, once
            SELECT b.ref, b.code, b.geom, ST_XMin(e.box) AS x0, ST_YMin(e.box) AS y0,
                   ST_XMax(e.box) AS x1, ST_YMax(e.box) AS y1,
                   ST_Area(e.box) - ST_Area(b.geom) AS box_gap
            FROM subject_buildings b, LATERAL (SELECT ST_Envelope(b.geom) AS box) e),
          -- inside the building's bounding box, a unit can only stick out where the box is
          -- not the building: if that is within the tolerance, so is the rest (the cheap test
          -- first, for every unit: a hash join on the code, nothing sorted)
          candidates AS (
            SELECT u.ref, u.geom, b.code
            FROM (SELECT ref, geom, building_code, geom::box3d AS box FROM subject_units
                  OFFSET 0) u     -- (each unit's box computed once)
            JOIN buildings b ON b.code = u.building_code
            WHERE NOT (ST_XMin(u.box) >= b.x0 AND ST_XMax(u.box) <= b.x1
                       AND ST_YMin(u.box) >= b.y0 AND ST_YMax(u.box) <= b.y1
                       AND b.box_gap <= %(overlap_m2)s * 0.999999)),
          -- flats stacked floor above floor share their outline: each outline once
          stacks AS MATERIALIZED (
            SELECT code, geom, array_agg(ref) AS refs FROM candidates GROUP BY code, geom)
        SELECT ARRAY[r.ref, x.b_ref], ST_Area(ST_Difference(x.geom, x.b_geom))::float8,
               format('超出 %s m² / %s m² outside the building',
                      round(ST_Area(ST_Difference(x.geom, x.b_geom))::numeric, 2),
                      round(ST_Area(ST_Difference(x.geom, x.b_geom))::numeric, 2)),
               ST_Transform(ST_Difference(x.geom, x.b_geom), 3857)
        FROM (SELECT s.refs, s.geom, b.ref AS b_ref, b.geom AS b_geom
              FROM stacks s JOIN buildings b ON b.code = s.code ORDER BY s.code OFFSET 0) x
        CROSS JOIN LATERAL unnest(x.refs) AS r(ref)
        WHERE ST_IsValid(x.geom) AND ST_IsValid(x.b_geom)
          -- a unit its building covers has nothing outside it (the outlines of a building
          -- come one after another, so the building is prepared once for all of them)
          AND NOT ST_Covers(x.b_geom, x.geom)
          AND ST_Area(ST_Difference(x.geom, x.b_geom)) > %(overlap_m2)s""", cost=8,
       settings=(("enable_mergejoin", "off"), _ALL_UNITS_IN_MEMORY)),
    _r("UNIT_OVERLAP", "content", "error", "同层户重叠", "units overlap on the same floor", """
        WITH units AS MATERIALIZED (
            -- narrow rows: a district has millions of units, and the pairs are found from
            -- their bounding boxes alone; geometries are fetched for the few candidates
            SELECT ref, building_code, floor_no, floor_count, ST_XMin(geom) AS bx0,
                   ST_YMin(geom) AS by0, ST_XMax(geom) AS bx1, ST_YMax(geom) AS by1
            FROM subject_units WHERE building_code IS NOT NULL),
          -- the upper floors of units spanning several (duplexes: few), as (unit, floor)
          upper AS MATERIALIZED (
            SELECT u.*, f FROM units u,
                   generate_series(u.floor_no + 1, u.floor_no + u.floor_count - 1) f
            WHERE u.floor_count > 1),
          -- two units of a building share a floor when they start on the same floor, or when
          -- one starts on an upper floor of the other; both hashed by building and floor
          touching AS (
            SELECT a.ref AS a_ref, b.ref AS b_ref, b.floor_no, a.bx0, a.by0, a.bx1, a.by1,
                   b.bx0 AS cx0, b.by0 AS cy0, b.bx1 AS cx1, b.by1 AS cy1
            FROM units a JOIN units b ON b.building_code = a.building_code
                                     AND b.floor_no = a.floor_no
                                     AND a.ref COLLATE "C" < b.ref COLLATE "C"   -- (bytes)
            UNION ALL
            SELECT a.ref, b.ref, b.floor_no, a.bx0, a.by0, a.bx1, a.by1,
                   b.bx0, b.by0, b.bx1, b.by1
            FROM upper a JOIN units b ON b.building_code = a.building_code AND b.floor_no = a.f),
          -- whose boxes overlap by more than the tolerance (the boxes of neighbouring flats
          -- only touch, and cannot hold an overlap), once each (on the highest shared floor)
          pairs AS MATERIALIZED (
            SELECT DISTINCT ON (1, 2) least(a_ref, b_ref) AS a_ref,
                   greatest(a_ref, b_ref) AS b_ref, floor_no
            FROM touching
            WHERE greatest(0, least(bx1, cx1) - greatest(bx0, cx0))
                  * greatest(0, least(by1, cy1) - greatest(by0, cy0))
                  > %(overlap_m2)s * 0.999999
            ORDER BY 1, 2, floor_no DESC),
          -- the candidates' geometries, looked up by code (an index probe each: however many
          -- pairs the planner expects, they are few)
          candidates AS MATERIALIZED (
            SELECT p.a_ref, p.b_ref, p.floor_no,
                   (SELECT u.geom FROM subject_units u WHERE u.ref = p.a_ref LIMIT 1) AS a_geom,
                   (SELECT u.geom FROM subject_units u WHERE u.ref = p.b_ref LIMIT 1) AS b_geom
            FROM pairs p)
        SELECT ARRAY[p.a_ref, p.b_ref], ST_Area(ST_Intersection(p.a_geom, p.b_geom))::float8,
               format('第 %s 层重叠 %s m² / overlap of %s m² on floor %s', p.floor_no,
                      round(ST_Area(ST_Intersection(p.a_geom, p.b_geom))::numeric, 2),
                      round(ST_Area(ST_Intersection(p.a_geom, p.b_geom))::numeric, 2),
                      p.floor_no),
               ST_Transform(ST_Intersection(p.a_geom, p.b_geom), 3857)
        FROM candidates p
        WHERE ST_IsValid(p.a_geom) AND ST_IsValid(p.b_geom)
          AND ST_Area(ST_Intersection(p.a_geom, p.b_geom)) > %(overlap_m2)s""", cost=10,
       # the self-joins hashed: a merge join would sort millions of units twice
       settings=(("enable_mergejoin", "off"), _ALL_UNITS_IN_MEMORY)),
    _r("UNIT_CODE_PARCEL_MISMATCH", "content", "error", "不动产单元号前 19 位与所在宗地代码不符",
       "the unit code's first 19 characters are not its parcel's code", """
        WITH stacks AS MATERIALIZED (
            -- flats stacked floor above floor share their outline: each outline once (a
            -- tenth of a district's units). Without the units' codes: an array per group
            -- made the planner budget 8 kB a group and spill the 1.4 M groups of a 10 M-unit
            -- district to disk (22 -> 15 s)
            SELECT left(code, 19) AS prefix, geom
            FROM subject_units WHERE code IS NOT NULL
            GROUP BY 1, 2),
          -- the outlines not inside the parcel their code names (a hash join on the code:
          -- nearly all are inside it, and need no spatial search)
          strays AS MATERIALIZED (
            SELECT s.prefix, s.geom, pt, ST_Transform(pt, 3857) AS pt3857
            FROM stacks s CROSS JOIN LATERAL ST_PointOnSurface(s.geom) AS pt
            WHERE NOT EXISTS (SELECT 1 FROM subject o WHERE o.code = s.prefix AND o.valid
                                AND ST_Contains(o.geom, pt)))
        -- ... the parcels they are in, and the few units of each stray outline again, by code
        -- (an index range in the county's partition)
        SELECT ARRAY[u.ref, p.ref], NULL::float8,
               format('单元号属于 %s，但位于宗地 %s / unit code belongs to %s but lies in %s',
                      s.prefix, p.code, s.prefix, p.code),
               s.pt3857
        FROM strays s
        JOIN subject p ON p.g3857 && s.pt3857 AND p.valid AND ST_Contains(p.geom, s.pt)
        CROSS JOIN LATERAL (SELECT u.ref FROM subject_units u
                            WHERE u.county_code = left(s.prefix, 6)::bpchar
                              AND u.unit_code >= s.prefix::bpchar
                              AND u.unit_code < (s.prefix || '~')::bpchar
                              AND left(u.code, 19) = s.prefix AND u.geom = s.geom) u
        WHERE p.code IS NOT NULL AND s.prefix <> p.code""", cost=8,
       settings=(_ALL_UNITS_IN_MEMORY,)),
    _r("UNIT_CODE_DUPLICATE", "content", "error", "不动产单元号重复",
       "the same unit code is used twice", """
        WITH dups AS MATERIALIZED (       -- the codes first, counted in code order (the
            -- register's code index: nothing hashed) ...
            SELECT unit_code FROM subject_units WHERE unit_code IS NOT NULL
            GROUP BY unit_code HAVING count(*) > 1)
        SELECT array_agg(u.ref ORDER BY u.ref), count(*)::float8,
               format('单元号 %s 出现 %s 次 / unit code %s used %s times', u.code, count(*),
                      u.code, count(*)),
               ST_Transform(ST_PointOnSurface(ST_Collect(u.geom ORDER BY u.ref)), 3857)
        -- ... then the few units with those codes, looked up by code
        FROM dups d, LATERAL (SELECT * FROM subject_units u WHERE u.unit_code = d.unit_code
                              OFFSET 0) u
        GROUP BY u.code""", settings=(("enable_hashagg", "off"),)),
    _r("FLOOR_AREA_SUM", "content", "warning", "各层面积之和与幢建筑面积不符",
       "sum of floor areas differs from the building's floor area", """
        SELECT ARRAY[b.ref], (f.total - b.floor_area)::float8,
               format('各层合计 %s m²，幢面积 %s m² / floors sum to %s m², building %s m²',
                      f.total, b.floor_area, f.total, b.floor_area),
               ST_Transform(ST_PointOnSurface(b.geom), 3857)
        FROM subject_buildings b
        JOIN (SELECT building_code, sum(floor_area) AS total FROM cad.floor
              WHERE valid_to IS NULL GROUP BY building_code) f ON f.building_code = b.code
        WHERE b.floor_area IS NOT NULL
          AND abs(f.total - b.floor_area) > greatest(1, %(area_rel)s * b.floor_area)""",
       # one process: in a parallel plan each of the three summed all 5.5 M current floors
       # of the 1M-parcel district by itself (the grouping is not parallel-aware there)
       registry_only=True, settings=(("max_parallel_workers_per_gather", "0"),)),
    _r("BOUNDARY_POINT_MISMATCH", "principle", "warning", "相邻宗地共用界址点坐标不一致",
       "neighbours' shared boundary points nearly but not exactly coincide", """
        WITH a AS MATERIALIZED (          -- the scope's points, with their cell ranges
            SELECT q.*, floor((q.x - t) / c - o) AS x0, floor((q.x + t) / c - o) AS x1,
                   floor((q.y - t) / c - o) AS y0, floor((q.y + t) / c - o) AS y1
            FROM (SELECT bp.version_id, bp.srid, ST_X(bp.geom) AS x, ST_Y(bp.geom) AS y
                  FROM cad.boundary_point bp
                  WHERE bp.valid_to IS NULL AND bp.parcel_code IN (   -- (char(19) = code)
                        SELECT code::bpchar FROM subject
                        WHERE sid > %(sid_lo)s AND sid <= %(sid_hi)s)) q,
                 (SELECT %(point_match_m)s * 1.001 AS t, %(point_match_m)s * 10 AS c,
                         0.4142 AS o) tc),
          -- Cells of 10 × the tolerance: a point within the tolerance of a lies in one of the
          -- (at most four, distinct) cells that a's tolerance square touches, so one hash
          -- join on the cell finds every candidate pair, and identical points drop out
          -- before any geometry function runs. (The grid is shifted by 0.4142 cell: surveyed
          -- coordinates are round numbers, and points on cell edges would touch two cells.)
          cells AS (
            SELECT version_id, srid, x, y, x0 AS kx, y0 AS ky FROM a
            UNION ALL
            SELECT version_id, srid, x, y, x1, y0 FROM a WHERE x1 <> x0
            UNION ALL
            SELECT version_id, srid, x, y, x0, y1 FROM a WHERE y1 <> y0
            UNION ALL
            SELECT version_id, srid, x, y, x1, y1 FROM a WHERE x1 <> x0 AND y1 <> y0),
          b AS MATERIALIZED (             -- every current point in its cell
            SELECT q.*, floor(q.x / (%(point_match_m)s * 10) - 0.4142) AS kx,
                   floor(q.y / (%(point_match_m)s * 10) - 0.4142) AS ky
            FROM (SELECT bp.version_id, bp.srid, ST_X(bp.geom) AS x, ST_Y(bp.geom) AS y
                  FROM cad.boundary_point bp WHERE bp.valid_to IS NULL) q),
          near AS MATERIALIZED (          -- distinct points closer than the tolerance
            SELECT c.version_id AS a_id, b.version_id AS b_id
            FROM cells c JOIN b ON b.kx = c.kx AND b.ky = c.ky AND b.srid = c.srid
            WHERE (c.x <> b.x OR c.y <> b.y)
              AND abs(c.x - b.x) <= %(point_match_m)s * 1.000001
              AND abs(c.y - b.y) <= %(point_match_m)s * 1.000001)
        SELECT ARRAY[a.parcel_code::text, b.parcel_code::text],
               ST_Distance(a.geom, b.geom)::float8,
               format('%s 与 %s 相距 %s mm / %s and %s are %s mm apart', a.point_no, b.point_no,
                      round((ST_Distance(a.geom, b.geom) * 1000)::numeric, 1), a.point_no,
                      b.point_no, round((ST_Distance(a.geom, b.geom) * 1000)::numeric, 1)),
               a.geom_3857
        FROM near n,
             -- the few pairs' points by key (OFFSET 0: looked up, not joined by hashing
             -- the whole table)
             LATERAL (SELECT * FROM cad.boundary_point p WHERE p.version_id = n.a_id
                      OFFSET 0) a,
             LATERAL (SELECT * FROM cad.boundary_point p WHERE p.version_id = n.b_id
                      OFFSET 0) b
        WHERE a.parcel_code < b.parcel_code
          AND ST_DWithin(a.geom_3857, b.geom_3857, %(point_match_m)s * 1.5)
          AND ST_Distance(a.geom, b.geom) > 0
          AND ST_Distance(a.geom, b.geom) < %(point_match_m)s""",
       registry_only=True, cost=30, settings=(("enable_mergejoin", "off"),)),
    _r("BOUNDARY_POINT_NUMBERING", "content", "warning", "界址点编号不连续",
       "boundary point numbers are not consecutive", """
        WITH nums AS (
            SELECT bp.parcel_code, substring(bp.point_no FROM '[0-9]+$') AS num
            FROM cad.boundary_point bp
            WHERE bp.valid_to IS NULL AND bp.parcel_code IN (          -- (char(19) = code)
                SELECT code::bpchar FROM subject WHERE sid > %(sid_lo)s AND sid <= %(sid_hi)s)),
          per_num AS (                    -- how often each number occurs in its parcel
            SELECT parcel_code, num, count(*)::int AS n FROM nums GROUP BY parcel_code, num),
          bad AS (                        -- numbers first; texts and places for the few bad
            SELECT parcel_code FROM per_num
            GROUP BY parcel_code          -- sum(n): points; count(num): distinct numbers
            HAVING sum(n) FILTER (WHERE num IS NOT NULL) < sum(n) OR count(num) < sum(n)
                OR max(num::int) - min(num::int) + 1 <> sum(n))
        SELECT ARRAY[bp.parcel_code::text], count(*)::float8,
               format('界址点号 %s 不连续 / point numbers %s not consecutive',
                      string_agg(bp.point_no, ',' ORDER BY bp.seq),
                      string_agg(bp.point_no, ',' ORDER BY bp.seq)),
               ST_Transform(ST_Centroid(ST_Collect(bp.geom ORDER BY bp.seq)), 3857)
        FROM cad.boundary_point bp JOIN bad ON bad.parcel_code = bp.parcel_code
        WHERE bp.valid_to IS NULL
        GROUP BY bp.parcel_code""",
       registry_only=True, cost=15, parts=2),
    _r("RECORD_ORPHAN", "principle", "error", "登记记录找不到对应的不动产单元",
       "a current registration record whose unit has no spatial unit", """
        SELECT ARRAY[r.unit_code::text], count(*)::float8,
               format('单元 %s 有 %s 条现势记录但无空间单元 / %s current records, no spatial unit',
                      r.unit_code, count(*), count(*)),
               NULL::geometry
        -- the codes of current record versions that no current unit has: the two tables'
        -- code indexes compared (no rows read; equal codes are in the same county; a record
        -- in force, status 1, is a current version) ...
        FROM (SELECT DISTINCT c.unit_code FROM cad.right_record c
              WHERE c.valid_to IS NULL
                AND """ + SCOPE_FILTER.format(col="c.unit_code") + """
                AND NOT EXISTS (SELECT 1 FROM cad.unit u WHERE u.unit_code = c.unit_code
                                AND u.valid_to IS NULL)) o
        -- ... then the few records with those codes, in their county's partition
        JOIN cad.right_record r ON r.unit_code = o.unit_code
                               AND r.county_code = left(o.unit_code, 6)::bpchar
        WHERE r.valid_to IS NULL AND r.status = 1
          AND NOT (substr(r.unit_code, 20, 1) = 'W' AND EXISTS (
                   SELECT 1 FROM cad.parcel p WHERE p.parcel_code = left(r.unit_code, 19)::bpchar
                   AND p.valid_to IS NULL))
        GROUP BY r.unit_code""", registry_only=True, settings=_MERGED_CODES),
    _r("UNIT_WITHOUT_RECORD", "reporting", "info", "空间单元无登记记录",
       "a spatial unit with no registration record", """
        SELECT ARRAY[u.ref], NULL::float8,
               '未登记的空间单元 / spatial unit never registered',
               ST_Transform(ST_PointOnSurface(u.geom), 3857)
        FROM subject_units u
        -- (records are partitioned by the unit code's county: joined county by county)
        WHERE NOT EXISTS (SELECT 1 FROM cad.right_record r WHERE r.unit_code = u.code
                          AND r.county_code = u.county_code)""",
       registry_only=True),
)

# registration rules (原则/内容/证书/年限/时效/上报) live in their own module
RULES = RULES + REGISTRATION_RULES
RULES_BY_ID = {r.id: r for r in RULES}
