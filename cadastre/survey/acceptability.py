"""What accepting a submission needs, as findings: validation reports them, accept enforces them.

One function, ``acceptance_issues``, finds everything the registrar's accept would refuse (a new
parcel that cannot be coded: no code, no registered parent, no cadastral subdistrict around it;
values the registry's columns cannot hold) and what it would silently leave out (buildings and
units without codes). Validation puts them in the report; ``accept`` runs the same function
and refuses with the first error's code, so a submission that validated clean can be accepted.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg

from cadastre.errors import InvalidInput
from cadastre.survey.diff import NEW_PARCEL_FEATURE_CODE, Diff, compute_diff

__all__ = ["acceptance_issues", "require_acceptable"]

_WHERE = """
SELECT idx, ST_AsGeoJSON(ST_Transform(ST_PointOnSurface(geom), 4326), 7)
FROM cad.survey_feature WHERE submission_id = %(sid)s AND idx = ANY(%(idxs)s)"""

# Staged values the registry's columns (or the accept's defaults) cannot take.
_VALUES = """
SELECT f.idx, f.ref, c.code, c.severity, c.zh, c.en,
       ST_AsGeoJSON(ST_Transform(ST_PointOnSurface(f.geom), 4326), 7)
FROM cad.survey_feature f
CROSS JOIN LATERAL (VALUES
    (f.kind = 'parcel' AND length(f.props->>'land_use') > 6,
     'LAND_USE_TOO_LONG', 'error', '地类编码超过6位', 'the land use code is longer than 6'),
    (f.kind = 'parcel' AND jsonb_typeof(f.props->'declared_area') = 'number'
     AND (f.props->>'declared_area')::float8 NOT BETWEEN 0 AND 1e11,
     'VALUE_OUT_OF_RANGE', 'error', '申报面积超出范围', 'the declared area is out of range'),
    (f.kind = 'building' AND NOT (f.props ? 'building_code'),
     'BUILDING_CODE_MISSING', 'warning', '自然幢没有代码，接受时不会登记',
     'the building has no code and will not be registered on acceptance'),
    (f.kind = 'building' AND f.props ? 'building_code'
     AND (coalesce((f.props->>'floors_above')::int, 1) < 0
          OR coalesce((f.props->>'floors_below')::int, 0) < 0
          OR coalesce((f.props->>'floors_above')::int, 1)
             + coalesce((f.props->>'floors_below')::int, 0) < 1
          OR coalesce((f.props->>'height')::float8, 1) NOT BETWEEN 0 AND 99999),
     'VALUE_OUT_OF_RANGE', 'error', '自然幢的层数或高度超出范围',
     'the building''s floors or height are out of range'),
    (f.kind = 'unit' AND NOT (f.props ? 'unit_code' AND f.props->>'unit_code' <> ''),
     'UNIT_CODE_MISSING', 'warning', '户没有不动产单元代码，接受时不会登记',
     'the unit has no unit code and will not be registered on acceptance'),
    (f.kind = 'unit' AND f.props ? 'unit_code' AND (f.props->>'floor_no')::int = 0,
     'UNIT_FLOOR_INVALID', 'error', '户的层号为0', 'the unit''s floor number is 0'),
    (f.kind = 'unit' AND f.props ? 'unit_code'
     AND (coalesce((f.props->>'height')::float8, 3) NOT BETWEEN 0.01 AND 9999
          OR coalesce((f.props->>'floor_count')::int, 1) < 1
          OR coalesce((f.props->>'building_area')::float8, 0) NOT BETWEEN 0 AND 1e9),
     'VALUE_OUT_OF_RANGE', 'error', '户的高度、层数或面积超出范围',
     'the unit''s height, floor count or area is out of range')
) AS c(hit, code, severity, zh, en)
WHERE f.submission_id = %(sid)s AND c.hit
ORDER BY f.idx"""

_PROBLEMS = {
    "PARCEL_CODE_MISSING": ("宗地没有代码，也不是登记宗地的分割或合并，无法赋码",
                            "the parcel has no code and is no split or merge of a registered "
                            "parcel, so it cannot be coded"),
    "PARCEL_OUTSIDE_SUBDISTRICT": ("新宗地不在任何已知的地籍子区内，无法赋码",
                                   "the new parcel lies outside every known cadastral "
                                   "subdistrict, so it cannot be coded"),
    "PARCEL_SEQUENCE_EXHAUSTED": ("地籍子区的宗地顺序号已用尽",
                                  "the cadastral subdistrict has no parcel sequence left"),
}


def _issue(code: str, severity: str, zh: str, en: str, ref: str, where: str | None
           ) -> dict[str, Any]:
    return {"code": code, "severity": severity, "message": f"{zh}：{ref} / {en}: {ref}",
            "subject": [ref], "measure": None,
            "geometry": json.loads(where) if where else None}


_UNCODED = """
SELECT EXISTS (SELECT 1 FROM cad.survey_feature WHERE submission_id = %(sid)s
               AND kind = 'parcel' AND coalesce(props->>'parcel_code', '') = '')"""


def acceptance_issues(conn: psycopg.Connection, sid: uuid.UUID, new_parcels: bool,
                      diff: Diff | None = None) -> tuple[list[dict[str, Any]], Diff | None]:
    """The findings of everything ``accept`` needs, and the diff they were found on (None when
    every parcel has its code: then the diff cannot find a problem, and is not computed)."""
    if diff is None and conn.execute(_UNCODED, {"sid": sid}).fetchone()[0]:  # type: ignore[index]
        diff = compute_diff(conn, sid, new_parcels)
    parcels = diff.parcels if diff is not None else []
    flagged = [p for p in parcels if p.idx is not None and (p.problem or p.subdistrict)]
    where: dict[int | None, str] = {}
    if flagged:
        where = dict(conn.execute(_WHERE, {"sid": sid, "idxs": [p.idx for p in flagged]})
                     .fetchall())
    issues = []
    for p in flagged:
        if p.problem:
            zh, en = _PROBLEMS[p.problem]
            issues.append(_issue(p.problem, "error", zh, en, p.ref, where.get(p.idx)))
        else:
            issues.append(_issue(
                "NEW_PARCEL_CODED", "warning",
                f"新宗地按所在地籍子区{p.subdistrict}赋码{p.code}（特征码{NEW_PARCEL_FEATURE_CODE}）",
                f"the new parcel is coded {p.code} from its cadastral subdistrict "
                f"{p.subdistrict} (feature code {NEW_PARCEL_FEATURE_CODE})",
                p.ref, where.get(p.idx)))
    for _, ref, code, severity, zh, en, point in conn.execute(_VALUES, {"sid": sid}):
        issues.append(_issue(code, severity, zh, en, ref, point))
    return issues, diff


#: The codes ``accept`` refuses with (its first error finding's), as (code, message) pairs.
REFUSALS = (
    ("PARCEL_CODE_MISSING", "新宗地无代码也无原宗地，无法赋码 / a parcel without code or "
                            "registered parent cannot be coded"),
    ("PARCEL_OUTSIDE_SUBDISTRICT", "新宗地不在任何地籍子区内 / a new parcel lies outside every "
                                   "cadastral subdistrict"),
    ("PARCEL_SEQUENCE_EXHAUSTED", "地籍子区的宗地顺序号已用尽 / the subdistrict has no parcel "
                                  "sequence left"),
    ("LAND_USE_TOO_LONG", "地类编码超过6位 / a land use code is longer than 6"),
    ("UNIT_FLOOR_INVALID", "户的层号为0 / a unit's floor number is 0"),
    ("VALUE_OUT_OF_RANGE", "数值超出登记簿的范围 / a value is out of the register's range"),
)


def require_acceptable(conn: psycopg.Connection, sid: uuid.UUID, new_parcels: bool) -> Diff:
    """The diff to apply; raises the first error finding's code (as validation reported it)."""
    diff = compute_diff(conn, sid, new_parcels)
    issues, _ = acceptance_issues(conn, sid, new_parcels, diff)
    errors = [i for i in issues if i["severity"] == "error"]
    if errors:
        refs = ", ".join(i["subject"][0] for i in errors[:5])
        raise InvalidInput(errors[0]["code"], f"{errors[0]['message']}（共{len(errors)}处）/ "
                           f"({len(errors)} in all: {refs})")
    return diff
