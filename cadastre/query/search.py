"""Search by 坐落, building/project/compound name (pg_trgm) or by a code prefix.

Only current versions are searched. A query is either a code prefix (ASCII letters and digits
starting with a digit, at least the 6-digit county code) matched against parcel, building and
unit codes, or text. Text of 3 or more characters is matched as a substring or fuzzily (trigram
word similarity) against compound names, building and project names and 坐落 of parcels and
units. Text of 2 characters is matched as a prefix of names and parcel 坐落 only: a 2-character
substring has no trigram the index could use, and the unit table is by far the largest.

Ranking: exact match, then prefix, then substring, then near-misses (trigram word similarity
only), each tier ordered by trigram similarity (for codes: by kind, parcel → building → unit, then
code). Near-misses rank below every substring match, so they are looked for only when the
substring matches run out before the end of the requested page: a street name shares trigrams
with tens of thousands of 坐落, and scanning those for a page the substring matches already fill
is wasted (at 10 M units it was most of a search's time). Results are paged with an opaque
cursor and capped at :data:`MAX_RESULTS` per query to hinder bulk harvesting.

Returns plain records keyed by the privacy policy's field names; the caller applies the policy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from cadastre.codes import county_sql
from cadastre.errors import InvalidInput
from cadastre.query.features import generic_plan

KINDS = ("compound", "building", "parcel", "unit")
ENTITY = {"compound": "parcel", "parcel": "parcel", "building": "building", "unit": "unit"}

MIN_TEXT = 2          # characters of a text query
MIN_UNIT_TEXT = 3     # ... that also searches units
MIN_CODE = 6          # characters of a code prefix (the county code)
MAX_QUERY = 100
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
MAX_RESULTS = 500     # per query, over all pages
# candidates per kind that a text query scores and ranks. Over 200 address queries of the
# 1M-parcel district the top 20 with 300 differ from those with 1,000 only among results of
# equal score (166 the same, 34 other ties); with 150, four queries lost a better result.
POOL = 300

_CODE = re.compile(r"^[0-9][0-9A-Z]*$")
_SPACES = re.compile(r"\s+")


class QueryTooShort(InvalidInput):
    code = "QUERY_TOO_SHORT"


class QueryTooLong(InvalidInput):
    code = "QUERY_TOO_LONG"


class KindInvalid(InvalidInput):
    code = "KIND_INVALID"


class LimitInvalid(InvalidInput):
    code = "LIMIT_INVALID"


class CursorInvalid(InvalidInput):
    code = "CURSOR_INVALID"


@dataclass(frozen=True)
class SearchQuery:
    text: str                  # normalised query
    is_code: bool
    kinds: tuple[str, ...]
    limit: int
    offset: int = 0

    @property
    def fingerprint(self) -> str:
        """Binds a cursor to the query it came from (no query text in the cursor itself)."""
        raw = f"{self.text}\x00{','.join(self.kinds)}".encode()
        return hashlib.sha256(raw).hexdigest()[:12]


def normalize(q: str) -> str:
    """NFKC (full-width digits and letters → ASCII), whitespace collapsed and trimmed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", q)).strip()


def parse_kinds(kind: str | None) -> tuple[str, ...]:
    if not kind:
        return KINDS
    wanted = [k.strip() for k in kind.split(",") if k.strip()]
    bad = [k for k in wanted if k not in KINDS]
    if bad or not wanted:
        raise KindInvalid(message="kind 取值应为 " + "|".join(KINDS) + " / kind must be one of "
                          + ", ".join(KINDS))
    return tuple(k for k in KINDS if k in wanted)


def parse_query(q: str | None, kind: str | None = None, limit: int | None = None,
                cursor: str | None = None) -> SearchQuery:
    """Validate and normalise the request; raises the stable 400 errors of the contract."""
    text = normalize(q or "")
    if len(text) > MAX_QUERY:
        raise QueryTooLong(message=f"查询内容过长（最多{MAX_QUERY}字） / query too long "
                           f"(at most {MAX_QUERY} characters)")
    upper = text.upper()
    is_code = bool(_CODE.match(upper)) and " " not in upper
    if is_code:
        if len(upper) < MIN_CODE:
            raise QueryTooShort(message=f"按代码查询至少输入{MIN_CODE}位 / a code prefix needs at "
                                f"least {MIN_CODE} characters")
        text = upper
    elif len(text) < MIN_TEXT:
        raise QueryTooShort(message=f"查询内容至少{MIN_TEXT}个字 / the query needs at least "
                            f"{MIN_TEXT} characters")
    kinds = parse_kinds(kind)
    if is_code:
        kinds = tuple(k for k in kinds if k != "compound")
    elif len(text) < MIN_UNIT_TEXT:
        if kinds == ("unit",):
            raise QueryTooShort(message=f"按坐落查询户至少输入{MIN_UNIT_TEXT}个字 / searching "
                                f"units by address needs at least {MIN_UNIT_TEXT} characters")
        kinds = tuple(k for k in kinds if k != "unit")
    n = DEFAULT_LIMIT if limit is None else limit
    if n < 1:
        raise LimitInvalid(message=f"limit 应为 1-{MAX_LIMIT} / limit must be 1-{MAX_LIMIT}")
    query = SearchQuery(text, is_code, kinds, min(n, MAX_LIMIT))
    if cursor:
        query = SearchQuery(text, is_code, kinds, query.limit, decode_cursor(cursor, query))
    return query


def encode_cursor(query: SearchQuery, offset: int) -> str:
    raw = json.dumps({"o": offset, "f": query.fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, query: SearchQuery) -> int:
    """The offset in ``cursor``; it must come from the same query and stay under the cap."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        offset, fingerprint = data["o"], data["f"]
    except (ValueError, TypeError, KeyError):
        raise CursorInvalid(message="分页游标无效 / invalid cursor") from None
    if (not isinstance(offset, int) or isinstance(offset, bool) or not 0 < offset < MAX_RESULTS
            or fingerprint != query.fingerprint):
        raise CursorInvalid(message="分页游标无效或与查询不符 / invalid cursor, or it belongs to "
                            "another query")
    return offset


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ------------------------------------------------------------------ SQL
# Each branch yields (kind, kind_rank, version id, code, score), best first, at most the cap.
def _score(col: str) -> str:
    return (f"(CASE WHEN lower({col}) = lower(%(q)s) THEN 3 WHEN {col} ILIKE %(prefix)s THEN 2 "
            f"WHEN {col} ILIKE %(pat)s THEN 1 ELSE 0 END + similarity({col}, %(q)s))")


def _match(col: str, full: bool) -> str:
    """Full (3+ characters): a substring. Two characters: a prefix only — a 2-character
    substring has no trigram the index could use, a prefix has (the start of a string is a word
    boundary)."""
    return f"{col} ILIKE %(pat)s" if full else f"{col} ILIKE %(prefix)s"


def _near(cols: tuple[str, ...]) -> str:
    """A near-miss: trigram word similarity (<%) with some column, a substring of none."""
    similar = " OR ".join(f"%(q)s <%% {c}" for c in cols)
    not_sub = " AND ".join(f"NOT coalesce({c} ILIKE %(pat)s, false)" for c in cols)
    return f"({similar}) AND {not_sub}"


_SCOPE = ("AND (cardinality(%(counties)s::text[]) = 0 OR "
          + county_sql("{code}") + " = ANY(%(counties)s))")
# units are partitioned by county (0024): their scope names the partition key, so a
# county-scoped caller's search reads only its counties' partitions
_UNIT_SCOPE = ("AND (cardinality(%(counties)s::text[]) = 0 OR "
               "t.county_code = ANY(%(counties)s::bpchar[]))")


def _scope(kind: str, code: str) -> str:
    return _UNIT_SCOPE if kind == "unit" else _SCOPE.format(code=code)


# kind: (table, code column, searched columns)
_TEXT = {
    "compound": ("cad.parcel_current", "parcel_code", ("compound_name",)),
    "building": ("cad.building_current", "building_code", ("name", "project_name")),
    "parcel": ("cad.parcel_current", "parcel_code", ("seat",)),
    "unit": ("cad.unit_current", "unit_code", ("seat",)),
}


def _text_branch(kind: str, full: bool, with_compound: bool, near: bool = False) -> str:
    """At most POOL candidates from the trigram indexes, then scored and ranked: a broad query
    (a road name matches thousands of units) costs POOL similarity computations, not one per
    match. ``near``: the near-misses (similar, not a substring) instead of the matches."""
    table, code, cols = _TEXT[kind]
    match = (_near(tuple(f"t.{c}" for c in cols)) if near
             else " OR ".join(_match(f"t.{c}", full) for c in cols))
    # a compound's parcel already listed as the compound is not listed again by its 坐落
    skip = ("AND NOT coalesce(t.compound_name ILIKE %(pat)s, false)"
            if kind == "parcel" and with_compound and full else "")
    scores = [_score(f"c.{c}") for c in cols]
    score = scores[0] if len(scores) == 1 else f"greatest({', '.join(scores)})"
    return f"""
        SELECT '{kind}'::text AS kind, {KINDS.index(kind) + 1} AS kind_rank,
               c.version_id AS vid, c.code, {score} AS score
        FROM (SELECT t.version_id, t.{code}::text AS code, {", ".join(f"t.{c}" for c in cols)}
              FROM {table} t
              WHERE ({match}) {skip}
                    {_scope(kind, "t." + code)}
              LIMIT %(pool)s) c
        ORDER BY score DESC, code"""


_CODE_TABLES = {"parcel": ("cad.parcel_current", "parcel_code", 1, 19),
                "building": ("cad.building_current", "building_code", 2, 24),
                "unit": ("cad.unit_current", "unit_code", 3, 28)}


def _code_branch(kind: str) -> str:
    table, col, rank, _ = _CODE_TABLES[kind]
    # units are partitioned by county (0024): a prefix names its county (MIN_CODE characters)
    county = "AND t.county_code = left(%(q)s, 6)::bpchar" if kind == "unit" else ""
    # (col COLLATE "C") matches the prefix indexes of migration 0005: range scan in code order
    return f"""
        SELECT '{kind}'::text AS kind, {rank} AS kind_rank, t.version_id AS vid,
               t.{col}::text AS code, CASE WHEN t.{col} = %(q)s THEN 3 ELSE 1 END AS score
        FROM {table} t
        WHERE (t.{col} COLLATE "C") LIKE %(prefix)s {county}
              {_scope(kind, "t." + col)}
        ORDER BY (t.{col} COLLATE "C")"""


_PAGE = """
WITH hit AS ({branches}),
page AS (
    SELECT * FROM hit ORDER BY score DESC, kind_rank, code COLLATE "C"
    OFFSET %(offset)s LIMIT %(n)s
)
SELECT h.kind, coalesce(p.feature_id, b.feature_id, u.feature_id) AS id, h.code,
       p.seat AS parcel_seat, p.compound_name, b.name, b.project_name, bp.seat AS building_seat,
       u.seat AS unit_seat, u.room_no, u.floor_no::int,
       round(ST_X(c.c)::numeric, 7)::float8, round(ST_Y(c.c)::numeric, 7)::float8,
       round(ST_XMin(g.g)::numeric, 7)::float8, round(ST_YMin(g.g)::numeric, 7)::float8,
       round(ST_XMax(g.g)::numeric, 7)::float8, round(ST_YMax(g.g)::numeric, 7)::float8
FROM page h
LEFT JOIN cad.parcel p ON h.kind IN ('compound', 'parcel') AND p.version_id = h.vid
LEFT JOIN cad.building b ON h.kind = 'building' AND b.version_id = h.vid
LEFT JOIN cad.parcel_current bp ON bp.parcel_code = b.parcel_code
LEFT JOIN cad.unit u ON h.kind = 'unit' AND u.version_id = h.vid
    AND u.county_code = left(h.code, 6)::bpchar
CROSS JOIN LATERAL (SELECT ST_Transform(coalesce(p.geom, b.geom, u.geom), 4326) AS g) g
CROSS JOIN LATERAL (SELECT ST_PointOnSurface(g.g) AS c) c
ORDER BY h.score DESC, h.kind_rank, h.code COLLATE "C"
"""


def has_near_misses(query: SearchQuery) -> bool:
    """Whether the query can have near-misses: text of 3 or more characters."""
    return not query.is_code and len(query.text) >= MIN_UNIT_TEXT


def build_sql(query: SearchQuery, near: bool = False) -> tuple[str, dict[str, Any]]:
    """The statement of a search page and its bound parameters: the matches only, or with
    ``near`` the matches and then the near-misses (:func:`has_near_misses`)."""
    if query.is_code:
        kinds = [k for k in query.kinds if len(query.text) <= _CODE_TABLES[k][3]]
        branches = [_code_branch(k) for k in kinds]
        params: dict[str, Any] = {"q": query.text, "prefix": query.text + "%"}
    else:
        full = len(query.text) >= MIN_UNIT_TEXT
        with_compound = "compound" in query.kinds
        branches = [_text_branch(k, full, with_compound) for k in query.kinds]
        if near and has_near_misses(query):
            branches += [_text_branch(k, full, with_compound, near=True) for k in query.kinds]
        esc = _like_escape(query.text)
        params = {"q": query.text, "pat": f"%{esc}%", "prefix": f"{esc}%"}
    if not branches:
        return "", params
    # each branch is in the page's order within its kind: no kind has more on the page (or the
    # pages before it) than offset + n rows of its branch
    body = " UNION ALL ".join(f"({b} LIMIT %(offset)s + %(n)s)" for b in branches)
    params.update(pool=POOL, offset=query.offset,
                  n=min(query.limit, MAX_RESULTS - query.offset) + 1)
    return _PAGE.format(branches=body), params


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class SearchHit:
    kind: str
    entity: str                 # privacy-policy entity of ``record``
    record: dict[str, Any]      # policy field names
    lon: float | None
    lat: float | None
    bbox: list[float] | None


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit]
    next_offset: int | None


async def _page_rows(conn: AsyncConnection, query: SearchQuery, counties: tuple[str, ...],
                     near: bool) -> list[tuple[Any, ...]]:
    sql, params = build_sql(query, near)
    if not sql:
        return []
    params["counties"] = list(counties)
    if query.is_code or counties:
        # never a prepared (generic) plan: LIKE 'prefix%' can use the code index only when the
        # planner sees the pattern (at 10 M units a code search's generic plan took 90 ms, its
        # custom plans 3 ms with the planning), and a county-scoped caller's units are pruned
        # to their counties at planning
        cur = await conn.execute(sql, params, prepare=False)  # type: ignore[arg-type]
        return await cur.fetchall()
    # text: the trigram indexes take the pattern at run time, and the statement is one of a
    # few (by kinds and length): a prepared generic plan saves the planning, 2-3 ms of a 10 ms
    # search at 10 M units (not prepared where the connection must not: a transaction pooler)
    async with generic_plan(conn):
        cur = await conn.execute(sql, params,  # type: ignore[arg-type]
                                 prepare=conn.prepare_threshold is not None)
        return await cur.fetchall()


def _hit(row: tuple[Any, ...]) -> SearchHit:
    (kind, fid, code, parcel_seat, compound, name, project, building_seat, unit_seat, room_no,
     floor_no, lon, lat, w, s, e, n) = row
    fid = str(fid) if isinstance(fid, UUID) else fid
    record: dict[str, Any]
    if kind in ("compound", "parcel"):
        record = {"id": fid, "parcel_code": code, "seat": parcel_seat, "compound_name": compound}
    elif kind == "building":
        record = {"id": fid, "building_code": code, "name": name, "project_name": project,
                  "seat": building_seat}
    else:
        record = {"id": fid, "unit_code": code, "seat": unit_seat, "room_no": room_no,
                  "floor_no": floor_no}
    bbox = [w, s, e, n] if w is not None else None
    return SearchHit(kind, ENTITY[kind], record, lon, lat, bbox)


async def search(conn: AsyncConnection, query: SearchQuery,
                 counties: tuple[str, ...] = ()) -> SearchPage:
    """One page of results; ``counties`` limits staff accounts and keys to their scope."""
    rows = await _page_rows(conn, query, counties, near=False)
    if len(rows) < min(query.limit, MAX_RESULTS - query.offset) + 1 and has_near_misses(query):
        # the matches end on this page: the near-misses come after them
        rows = await _page_rows(conn, query, counties, near=True)
    more = len(rows) > query.limit and query.offset + query.limit < MAX_RESULTS
    hits = [_hit(r) for r in rows[:query.limit]]
    return SearchPage(hits, query.offset + query.limit if more else None)


def item_label(kind: str, record: dict[str, Any]) -> str | None:
    """The display text of a result, from the fields the caller may see (Chinese)."""
    if kind == "compound":
        return record.get("compound_name") or record.get("seat")
    if kind == "parcel":
        code = record.get("parcel_code")
        return record.get("seat") or (f"宗地 {code}" if code else None)
    if kind == "building":
        return record.get("name") or record.get("project_name") or record.get("building_code")
    seat, room = record.get("seat"), record.get("room_no")
    return seat or (f"{room}室" if room else record.get("unit_code"))
