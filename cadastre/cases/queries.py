"""Reading cases: one case for staff, the registrar's worklist, the supervisor's dashboard, and the
public progress query (一号查询). Lights come from the stored deadlines (``cadastre.cases.clock``),
so lists sort and filter by urgency in SQL.

Records returned here carry the case fields by their policy names (entity ``case`` in
``cadastre.access.privacy``); the caller filters them for the reader's role.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cadastre.access.pii import PiiCipher
from cadastre.cases.clock import light_filter_sql, light_sql, statutory_overdue_sql
from cadastre.cases.model import LIGHT_LABELS, PAUSE_LABELS, STAGE_LABELS, PauseReason, Stage
from cadastre.cases.workflow import query_code_hash
from cadastre.errors import InvalidInput, NotFound
from cadastre.settings import CasesSettings

_CLOCK = (
    "CASE WHEN c.registered_at IS NULL AND c.closed_at IS NULL THEN "
    + light_sql() + " END AS light, "
    "CASE WHEN c.registered_at IS NULL AND c.closed_at IS NULL THEN "
    + statutory_overdue_sql() + " END AS statutory_overdue, "
    "CASE WHEN c.due_at IS NOT NULL AND c.registered_at IS NULL AND c.closed_at IS NULL THEN "
    "reg.wd_idx((c.due_at AT TIME ZONE %(tz)s)::date) "
    "- reg.wd_idx((coalesce(c.paused_since, %(now)s) AT TIME ZONE %(tz)s)::date) "
    "END AS remaining_workdays, (c.due_at AT TIME ZONE %(tz)s)::date AS promised_due_date"
)

_LIST_COLS = (
    "c.case_no, c.county_code, c.business_type, b.name_zh AS business_zh, "
    "b.name_en AS business_en, c.stage, c.channel, c.unit_codes, c.applied_at, "
    "c.accepted_at, c.yellow_at, c.due_at, c.statutory_due_at, c.paused_since, "
    "c.registered_at, c.closed_at, c.calendar_incomplete, c.assignee, c.certificate_no, "
    "c.working_days_used, " + _CLOCK
)


def _labels(rec: dict[str, Any]) -> dict[str, Any]:
    stage = Stage(rec["stage"])
    rec["stage_label"] = {"zh": STAGE_LABELS[stage][0], "en": STAGE_LABELS[stage][1]}
    rec["business_type_label"] = {"zh": rec.pop("business_zh"), "en": rec.pop("business_en")}
    light = rec.get("light")
    rec["light_label"] = ({"zh": LIGHT_LABELS[light][0], "en": LIGHT_LABELS[light][1]}
                          if light else None)
    rec["paused"] = rec.get("paused_since") is not None
    if "unit_codes" in rec:
        rec["unit_codes"] = [c.strip() for c in rec["unit_codes"]]
    if rec.get("calendar_incomplete"):
        rec["calendar_warning"] = ("期限所跨年份尚无法定节假日数据，暂按星期一至星期五计算 / "
                                   "a year on the way has no holiday data yet: "
                                   "Monday to Friday counted")
    for k, v in list(rec.items()):
        if isinstance(v, datetime):
            rec[k] = v.isoformat()
        elif isinstance(v, uuid.UUID):
            rec[k] = str(v)
        elif hasattr(v, "isoformat"):
            rec[k] = v.isoformat()
    return rec


# ------------------------------------------------------------------ worklist
@dataclass(frozen=True)
class WorklistFilter:
    counties: tuple[str, ...] = ()           # the reader's scope (empty = all)
    assignee: uuid.UUID | None = None        # "my cases"
    stage: str | None = None
    light: str | None = None                 # green | yellow | red
    business_type: int | None = None
    overdue_statutory: bool = False
    limit: int = 50
    cursor: str | None = None


def _encode(key: tuple[Any, ...]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in key])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[bool, datetime | None, str]:
    try:
        stopped, due, no = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return bool(stopped), datetime.fromisoformat(due) if due else None, str(no)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("CURSOR_INVALID", "分页游标无效 / invalid paging cursor") from None


def worklist(conn: psycopg.Connection, settings: CasesSettings, f: WorklistFilter,
             now: datetime | None = None) -> dict[str, Any]:
    """Open cases, the running ones first by deadline (so the overdue come first), then those
    past 登簿 (缮证/发证/归档 work)."""
    if f.stage is not None and f.stage not in {s.value for s in Stage}:
        raise InvalidInput("STAGE_INVALID", "未知阶段 / unknown stage")
    if f.light is not None and f.light not in LIGHT_LABELS:
        raise InvalidInput("LIGHT_INVALID", "灯色须为 green、yellow 或 red / light must be "
                           "green, yellow or red")
    where: list[str] = []
    params: dict[str, Any] = {"tz": settings.timezone, "now": now or datetime.now().astimezone(),
                              "limit": f.limit + 1, "counties": list(f.counties)}
    if f.counties:
        where.append("c.county_code = ANY(%(counties)s::char(6)[])")
    if f.assignee is not None:
        where.append("c.assignee = %(assignee)s")
        params["assignee"] = f.assignee
    if f.stage:
        where.append("c.stage = %(stage)s")
        params["stage"] = f.stage
    if f.business_type is not None:
        where.append("c.business_type = %(bt)s")
        params["bt"] = f.business_type
    clock_only = bool(f.light or f.overdue_statutory)
    if f.light:
        where.append(light_filter_sql(f.light))
    if f.overdue_statutory:
        where.append(statutory_overdue_sql())
    after = ["true", "true"]
    if f.cursor:
        stopped, due, no = _decode(f.cursor)
        params.update(c_due=due, c_no=no)
        key = "(c.due_at, c.case_no) > (%(c_due)s::timestamptz, %(c_no)s)"
        after = ["false", key] if stopped else [key, "true"]
    # running cases by deadline, then those past 登簿: two ordered index scans, each stopping
    # after a page, merged (the deferred join fetches the page's rows only)
    parts = [("false", "c.registered_at IS NULL AND c.closed_at IS NULL", after[0])]
    if not clock_only:
        parts.append(("true", "c.registered_at IS NOT NULL AND c.closed_at IS NULL", after[1]))
    keys = " UNION ALL ".join(
        f"(SELECT c.case_id, {flag} AS stopped, c.due_at, c.case_no FROM reg.case c "
        f"WHERE {cond} AND {cur} {''.join(' AND ' + w for w in where)} "
        "ORDER BY c.due_at, c.case_no LIMIT %(limit)s)" for flag, cond, cur in parts)
    sql = (f"SELECT {_LIST_COLS} FROM ({keys}) k JOIN reg.case c ON c.case_id = k.case_id "
           "JOIN reg.business_type b ON b.seq = c.business_type "
           "ORDER BY k.stopped, k.due_at, k.case_no LIMIT %(limit)s")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql, params).fetchall()
    more = len(rows) > f.limit
    rows = rows[:f.limit]
    nxt = (_encode((rows[-1]["registered_at"] is not None, rows[-1]["due_at"],
                    rows[-1]["case_no"])) if more and rows else None)
    return {"items": [_labels(dict(r)) for r in rows], "next": nxt}


# ------------------------------------------------------------------ supervision
_STATS = f"""
WITH running AS (
    SELECT c.county_code, c.business_type,
           count(*) FILTER (WHERE {light_filter_sql('green')}) AS green,
           count(*) FILTER (WHERE {light_filter_sql('yellow')}) AS yellow,
           count(*) FILTER (WHERE {light_filter_sql('red')}) AS red,
           count(*) FILTER (WHERE {statutory_overdue_sql()}) AS statutory_overdue,
           count(*) FILTER (WHERE c.paused_since IS NOT NULL) AS paused
    FROM reg.case c
    WHERE c.registered_at IS NULL AND c.closed_at IS NULL AND c.clock_from IS NOT NULL
      AND (%(counties)s::char(6)[] = '{{}}' OR c.county_code = ANY(%(counties)s::char(6)[]))
    GROUP BY 1, 2
), hist AS (       -- entered cases per working days used (a few dozen values): p90 from counts
    SELECT c.county_code, c.business_type, c.working_days_used AS wd, count(*) AS n,
           count(*) FILTER (WHERE c.registered_at <= c.due_at) AS on_time
    FROM reg.case c
    WHERE c.registered_at >= %(since)s AND c.registered_at < %(until)s
      AND (%(counties)s::char(6)[] = '{{}}' OR c.county_code = ANY(%(counties)s::char(6)[]))
    GROUP BY 1, 2, 3
), cum AS (
    SELECT h.*, sum(n) FILTER (WHERE wd IS NOT NULL) OVER w AS upto,
           sum(n) FILTER (WHERE wd IS NOT NULL) OVER (PARTITION BY county_code, business_type)
               AS valued
    FROM hist h
    WINDOW w AS (PARTITION BY county_code, business_type ORDER BY wd
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), done AS (       -- percentile_cont(0.9): interpolated between the values at floor/ceil of
    SELECT county_code, business_type, sum(n) AS completed,   -- 0.9 × (count − 1)
           sum(on_time) AS on_time,
           (sum(wd * n) / nullif(sum(n) FILTER (WHERE wd IS NOT NULL), 0))::float8
               AS avg_workdays,
           (min(wd) FILTER (WHERE upto > floor(0.9 * (valued - 1)))
            + (min(wd) FILTER (WHERE upto > ceil(0.9 * (valued - 1)))
               - min(wd) FILTER (WHERE upto > floor(0.9 * (valued - 1))))
              * (0.9 * (max(valued) - 1) - floor(0.9 * (max(valued) - 1))))::float8
               AS p90_workdays
    FROM cum GROUP BY 1, 2
)
SELECT coalesce(r.county_code, d.county_code) AS county_code,
       coalesce(r.business_type, d.business_type) AS business_type,
       b.name_zh, b.name_en,
       coalesce(r.green, 0) AS green, coalesce(r.yellow, 0) AS yellow,
       coalesce(r.red, 0) AS red, coalesce(r.statutory_overdue, 0) AS statutory_overdue,
       coalesce(r.paused, 0) AS paused, coalesce(d.completed, 0) AS completed,
       coalesce(d.on_time, 0) AS on_time, d.avg_workdays, d.p90_workdays
FROM running r FULL JOIN done d
  ON d.county_code = r.county_code AND d.business_type = r.business_type
JOIN reg.business_type b ON b.seq = coalesce(r.business_type, d.business_type)
ORDER BY 1, 2
"""

STATS_FIELDS = ("county_code", "business_type", "business_type_zh", "business_type_en",
                "green", "yellow", "red", "statutory_overdue", "paused", "completed", "on_time",
                "on_time_rate", "avg_workdays", "p90_workdays")


def stats(conn: psycopg.Connection, settings: CasesSettings, counties: Sequence[str],
          since: datetime, until: datetime, now: datetime | None = None) -> dict[str, Any]:
    """Per county and business type: running cases by light, and for cases entered
    (登簿/办结) in [since, until): count, on-time rate, average and p90 working days."""
    params = {"counties": list(counties), "since": since, "until": until,
              "now": now or datetime.now().astimezone()}
    with conn.transaction():
        conn.execute("SET LOCAL jit = off")     # compiling costs more than this query runs
        fetched = conn.execute(_STATS, params).fetchall()
    rows = []
    for r in fetched:
        rec = dict(zip(("county_code", "business_type", "business_type_zh", "business_type_en",
                        "green", "yellow", "red", "statutory_overdue", "paused", "completed",
                        "on_time", "avg_workdays", "p90_workdays"), r, strict=True))
        rec["county_code"] = rec["county_code"].strip()
        rec["on_time_rate"] = (round(rec["on_time"] / rec["completed"], 4)
                               if rec["completed"] else None)
        for k in ("avg_workdays", "p90_workdays"):
            rec[k] = round(rec[k], 2) if rec[k] is not None else None
        rows.append({k: rec[k] for k in STATS_FIELDS})
    totals = {k: sum(r[k] for r in rows) for k in
              ("green", "yellow", "red", "statutory_overdue", "paused", "completed", "on_time")}
    totals["on_time_rate"] = (round(totals["on_time"] / totals["completed"], 4)
                              if totals["completed"] else None)
    overdue = worklist(conn, settings, WorklistFilter(counties=tuple(counties), light="red",
                                                      limit=20), now)["items"]
    return {"since": since.isoformat(), "until": until.isoformat(), "rows": rows,
            "totals": totals, "overdue": overdue}


# ------------------------------------------------------------------ one case
def case_detail(conn: psycopg.Connection, settings: CasesSettings, cipher: PiiCipher,
                case_no: str, counties: Sequence[str] = (),
                now: datetime | None = None) -> dict[str, Any]:
    params = {"tz": settings.timezone, "now": now or datetime.now().astimezone(), "no": case_no}
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_LIST_COLS}, c.case_id, c.target_right_id, c.request, "
                          "c.reason, c.promised_days, c.statutory_days, c.start_day, "
                          "c.paused_days, c.change_id, c.created_by FROM reg.case c "
                          "JOIN reg.business_type b ON b.seq = c.business_type "
                          "WHERE c.case_no = %(no)s", params).fetchone()
        if row is None or (counties and row["county_code"].strip() not in counties):
            raise NotFound("CASE_NOT_FOUND", "无此案件 / no such case")
        case_id = row.pop("case_id")
        rec = _labels(dict(row))
        rec["county_code"] = rec["county_code"].strip()
        rec["transitions"] = [_labels_plain(t) for t in cur.execute(
            "SELECT from_stage, to_stage, action, actor, at, note FROM reg.case_transition "
            "WHERE case_id = %s ORDER BY at, id", (case_id,)).fetchall()]
        rec["reviews"] = [_labels_plain(t) for t in cur.execute(
            "SELECT step, reviewer, opinion, passed, at FROM reg.case_review WHERE case_id = %s "
            "ORDER BY at, id", (case_id,)).fetchall()]
        rec["pauses"] = [_pause(t) for t in cur.execute(
            "SELECT id, reason, note, started_at, started_by, ended_at, ended_by, days "
            "FROM reg.case_pause WHERE case_id = %s ORDER BY started_at", (case_id,)).fetchall()]
        rec["materials"] = [_labels_plain(t) for t in cur.execute(
            "SELECT code, name_zh, name_en, status, at FROM reg.case_material "
            "WHERE case_id = %s ORDER BY at, code", (case_id,)).fetchall()]
        rec["parts"] = [_part(t) for t in cur.execute(_PARTS, (case_id, rec["business_type"]))]
        parties = cur.execute(
            "SELECT cp.role AS case_role, cp.part, cp.seq, cp.share, cp.co_ownership, p.party_id, "
            "p.party_type, p.id_type, p.name_enc, p.id_number_enc, p.phone_enc, p.address_enc "
            "FROM reg.case_party cp JOIN pii.party p ON p.party_id = cp.party_id "
            "WHERE cp.case_id = %s ORDER BY cp.role, cp.seq", (case_id,)).fetchall()
    rec["parties"] = [{"id": str(p["party_id"]), "case_role": p["case_role"],
                       "case_part": p["part"], "seq": p["seq"],
                       "share": p["share"], "co_ownership": p["co_ownership"],
                       "party_type": p["party_type"], "id_type": p["id_type"],
                       "name": cipher.decrypt(p["name_enc"]),
                       "id_number": cipher.decrypt(p["id_number_enc"]),
                       "phone": cipher.decrypt(p["phone_enc"]),
                       "address": cipher.decrypt(p["address_enc"])} for p in parties]
    return rec


# a combined case's parts in 登簿 order, with what each wrote once entered
_PARTS = """
SELECT p.seq, p.part_key AS key, p.part_type AS business_type, p.name_zh, p.name_en,
       b.registration_type, cp.version_ids, cp.certificate_nos,
       p.seq = max(p.seq) OVER () AS last
FROM reg.business_part p
JOIN reg.business_type b ON b.seq = p.part_type
LEFT JOIN reg.case_part cp ON cp.case_id = %s AND cp.seq = p.seq
WHERE p.business_type = %s
ORDER BY p.seq
"""


def _part(rec: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in rec.items() if k not in ("name_zh", "name_en")}
    out["name"] = {"zh": rec["name_zh"], "en": rec["name_en"]}
    out["entered"] = rec["version_ids"] is not None
    return out


def _labels_plain(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in rec.items()}


def _pause(rec: dict[str, Any]) -> dict[str, Any]:
    out = _labels_plain(rec)
    zh, en = PAUSE_LABELS[PauseReason(rec["reason"])]
    out["reason_label"] = {"zh": zh, "en": en}
    return out


# ------------------------------------------------------------------ 一号查询
_DUMMY = b"\x00" * 32
PROGRESS_FIELDS = ("case_no", "business_type_label", "stage", "stage_label", "applied_at",
                   "accepted_at", "promised_due_date", "light", "light_label", "paused",
                   "registered_at", "closed_at", "calendar_warning")


def progress(conn: psycopg.Connection, settings: CasesSettings, cipher: PiiCipher,
             case_no: str, code: str, now: datetime | None = None) -> dict[str, Any] | None:
    """The public answer for ``case_no`` and its query code, or None — the same None for an
    unknown number and a wrong code, after the same work (one look-up, one HMAC compare)."""
    params = {"tz": settings.timezone, "now": now or datetime.now().astimezone(),
              "no": case_no[:40]}
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_LIST_COLS}, c.query_code_hash FROM reg.case c "
                          "JOIN reg.business_type b ON b.seq = c.business_type "
                          "WHERE c.case_no = %(no)s", params).fetchone()
    stored = bytes(row["query_code_hash"]) if row else _DUMMY
    ok = hmac.compare_digest(query_code_hash(cipher, case_no[:40], code[:40]), stored)
    if row is None or not ok:
        return None
    rec = _labels(dict(row))
    return {k: rec.get(k) for k in PROGRESS_FIELDS}
