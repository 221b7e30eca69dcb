"""Manual quality sampling of registration cases (registration.md §5): each month, per county, a
random share (5 % by default) of the cases completed that month is drawn, each sampled case is
assigned to a checker, who records pass or fail with the categories of the problems found.
"""

from __future__ import annotations

import random
import uuid
from datetime import date
from typing import Any

import psycopg

from cadastre.errors import Conflict, InvalidInput, NotFound
from cadastre.qa.rule import CATEGORIES

# cases of a month: those entered (登簿) or concluded in it, not refused or withdrawn
MONTH_CASES = """
SELECT c.case_no FROM reg.case c
WHERE c.county_code = %(county)s AND c.registered_at IS NOT NULL
  AND c.registered_at >= (%(month)s::date::timestamp AT TIME ZONE %(tz)s)
  AND c.registered_at < ((%(month)s::date + interval '1 month')::timestamp AT TIME ZONE %(tz)s)
  AND c.stage NOT IN ('refused', 'rejected', 'withdrawn')
ORDER BY c.case_no
"""


def first_of_month(value: str | date) -> date:
    try:
        d = value if isinstance(value, date) else date.fromisoformat(f"{value}-01"[:10])
    except ValueError:
        raise InvalidInput("MONTH_INVALID", "月份应为 YYYY-MM / the month must be YYYY-MM"
                           ) from None
    return d.replace(day=1)


def draw(conn: psycopg.Connection, county: str, month: date, by: str, *,
         fraction: float = 0.05, seed: int | None = None, tz: str = "Asia/Shanghai"
         ) -> dict[str, Any]:
    """Draw and record the month's sample of a county (once per county and month)."""
    if not 0 < fraction <= 1:
        raise InvalidInput("SAMPLE_FRACTION", "抽样比例应在 0 与 1 之间 / fraction in (0, 1]")
    month = first_of_month(month)
    cases = [r[0] for r in conn.execute(MONTH_CASES, {"county": county, "month": month,
                                                      "tz": tz})]
    if not cases:
        raise InvalidInput("QA_SAMPLE_EMPTY", "该月没有办结的登记业务 / no completed cases "
                           "in that month")
    seed = seed if seed is not None else random.SystemRandom().randrange(2**62)
    k = max(1, round(len(cases) * fraction))
    picked = sorted(random.Random(seed).sample(cases, k))
    sid = uuid.uuid4()
    with conn.transaction():
        if conn.execute("SELECT 1 FROM reg.quality_sample WHERE county_code = %s AND month = %s",
                        (county, month)).fetchone():
            raise Conflict("QA_SAMPLE_EXISTS", "该县（区）该月已抽样 / this county and month "
                           "were sampled already")
        conn.execute("INSERT INTO reg.quality_sample (sample_id, county_code, month, fraction, "
                     "population, seed, drawn_by) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                     (sid, county, month, fraction, len(cases), seed, by))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO reg.quality_check (sample_id, case_no) VALUES (%s, %s)",
                            [(sid, c) for c in picked])
    return {"sample_id": str(sid), "county": county, "month": month.isoformat(),
            "population": len(cases), "sampled": picked}


def _check_row(conn: psycopg.Connection, sid: uuid.UUID, case_no: str) -> tuple[Any, ...]:
    row = conn.execute("SELECT checker, outcome FROM reg.quality_check WHERE sample_id = %s "
                       "AND case_no = %s FOR UPDATE", (sid, case_no)).fetchone()
    if row is None:
        raise NotFound("SAMPLE_CASE_NOT_FOUND", "该案件不在此抽样中 / the case is not in the "
                       "sample")
    return row


def assign(conn: psycopg.Connection, sid: uuid.UUID, case_no: str, checker: str) -> None:
    with conn.transaction():
        _check_row(conn, sid, case_no)
        conn.execute("UPDATE reg.quality_check SET checker = %s, assigned_at = now() "
                     "WHERE sample_id = %s AND case_no = %s", (checker, sid, case_no))


def record(conn: psycopg.Connection, sid: uuid.UUID, case_no: str, checker: str, passed: bool,
           categories: list[str] | None = None, note: str | None = None) -> None:
    """The checker's outcome: pass, or fail with the categories of the problems found."""
    cats = sorted(set(categories or ()))
    unknown = [c for c in cats if c not in CATEGORIES]
    if unknown:
        raise InvalidInput("QA_CATEGORY_UNKNOWN", "未知的问题类别 / unknown problem category")
    if passed == bool(cats):
        raise InvalidInput("SAMPLE_OUTCOME_INVALID", "不合格须注明问题类别，合格不得有问题类别 / a "
                           "fail needs its problem categories, a pass has none")
    with conn.transaction():
        assigned, _ = _check_row(conn, sid, case_no)
        if assigned is not None and assigned != checker:
            raise Conflict("SAMPLE_OTHER_CHECKER", "该案件已分配给其他检查人 / the case is "
                           "assigned to another checker")
        conn.execute("UPDATE reg.quality_check SET checker = %s, outcome = %s, categories = %s, "
                     "note = %s, checked_at = now(), assigned_at = coalesce(assigned_at, now()) "
                     "WHERE sample_id = %s AND case_no = %s",
                     (checker, "pass" if passed else "fail", cats, (note or "")[:2000] or None,
                      sid, case_no))
