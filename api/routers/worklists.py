"""Work lists for staff: survey submissions (a surveyor's own, all for registrars) and QA runs.

Both are newest first with keyset paging: ``?limit=`` (1–100) and the opaque ``next`` cursor of
the previous page. Every read is appended to the audit chain (no PII: ids and counts only).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.auditing import record_sync
from api.auth import Principal, require
from cadastre.errors import InvalidInput
from cadastre.privacy import Role

router = APIRouter(prefix="/api/v1", tags=["work lists"])

STAFF = require(Role.SURVEYOR, Role.REGISTRAR)
REGISTRAR = require(Role.REGISTRAR)
SUBMISSION_STATUSES = ("received", "validating", "validated", "invalid", "failed", "accepted",
                       "rejected")


def _encode(at: datetime, key: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{key}".encode()).decode().rstrip("=")


def _decode(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, key = raw.split("|", 1)
        return datetime.fromisoformat(at), uuid.UUID(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("CURSOR_INVALID", "分页游标无效 / invalid paging cursor") from None


def _page(rows: list[dict[str, Any]], limit: int, at_key: str, id_key: str
          ) -> dict[str, Any]:
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = _encode(rows[-1][at_key], uuid.UUID(rows[-1][id_key])) if more and rows else None
    for r in rows:
        for k, v in r.items():
            if isinstance(v, datetime):
                r[k] = v.isoformat()
            elif isinstance(v, uuid.UUID):
                r[k] = str(v)
    return {"items": rows, "next": nxt}


_SUBMISSIONS = """
SELECT s.submission_id::text, s.filename, s.format, s.srid, s.status, s.size_bytes,
       s.submitted_by, s.submitted_at, s.error_count, s.warning_count, s.decided_by,
       s.decided_at, s.decision_reason, s.job_id::text,
       j.status AS job_status, j.progress AS job_progress, j.step AS job_step
FROM cad.survey_submission s LEFT JOIN cad.job j ON j.job_id = s.job_id
WHERE (%(mine)s::text IS NULL OR s.submitted_by = %(mine)s)
  AND (%(status)s::text IS NULL OR s.status = %(status)s)
  AND (%(at)s::timestamptz IS NULL OR (s.submitted_at, s.submission_id) < (%(at)s, %(id)s))
ORDER BY s.submitted_at DESC, s.submission_id DESC
LIMIT %(limit)s
"""


@router.get("/surveys", summary="测绘成果提交列表 / survey submissions (newest first)")
def list_submissions(
    request: Request,
    who: Annotated[Principal, Depends(STAFF)],
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = Query(None, description="上一页的 next / `next` of the previous page"),
    status: str | None = Query(None, description=" | ".join(SUBMISSION_STATUSES)),
) -> dict[str, Any]:
    """A surveyor sees their own submissions, a registrar everyone's."""
    if status is not None and status not in SUBMISSION_STATUSES:
        raise InvalidInput("STATUS_INVALID", f"未知状态 / unknown status {status!r}")
    after = _decode(cursor)
    mine = None if who.role is Role.REGISTRAR else f"{who.role.value}:{who.account_id}"
    base = str(request.base_url).rstrip("/") + "/api/v1/surveys/"
    with request.app.state.sync_pool.connection() as conn:
        cur = conn.execute(_SUBMISSIONS, {
            "mine": mine, "status": status, "limit": limit + 1,
            "at": after[0] if after else None, "id": after[1] if after else None})
        cols = [d.name for d in cur.description or ()]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        page = _page(rows, limit, "submitted_at", "submission_id")
        for item in page["items"]:
            item["links"] = {"self": base + item["submission_id"]}
        record_sync(request, who, "survey.list", status, len(page["items"]), conn=conn)
    return page


_RUNS = """
SELECT r.run_id::text, r.scope, r.started_by, r.started_at, r.finished_at, r.job_id::text,
       j.status AS job_status, j.progress AS job_progress,
       f.total, f.errors, f.warnings, f.open,
       CASE WHEN f.e IS NULL THEN NULL ELSE ARRAY[
           round(ST_XMin(f.e)::numeric, 6), round(ST_YMin(f.e)::numeric, 6),
           round(ST_XMax(f.e)::numeric, 6), round(ST_YMax(f.e)::numeric, 6)]::float8[] END AS bbox
FROM cad.qa_run r
LEFT JOIN cad.job j ON j.job_id = r.job_id
LEFT JOIN LATERAL (
    SELECT count(*) AS total, count(*) FILTER (WHERE q.severity = 'error') AS errors,
           count(*) FILTER (WHERE q.severity = 'warning') AS warnings,
           count(*) FILTER (WHERE q.status = 'open') AS open,
           ST_Transform(ST_SetSRID(ST_Extent(q.geom_3857)::geometry, 3857), 4326) AS e
    FROM cad.qa_finding q WHERE q.run_id = r.run_id
) f ON true
WHERE r.sample_of IS NULL
  AND (%(at)s::timestamptz IS NULL OR (r.started_at, r.run_id) < (%(at)s, %(id)s))
ORDER BY r.started_at DESC, r.run_id DESC
LIMIT %(limit)s
"""


@router.get("/qa/runs", summary="质检批次列表 / QA runs (newest first)")
def list_runs(
    request: Request,
    who: Annotated[Principal, Depends(REGISTRAR)],
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = Query(None, description="上一页的 next / `next` of the previous page"),
) -> dict[str, Any]:
    """Runs with their finding counts and the WGS84 extent of their findings."""
    after = _decode(cursor)
    base = str(request.base_url).rstrip("/") + "/api/v1/qa/runs/"
    with request.app.state.sync_pool.connection() as conn:
        cur = conn.execute(_RUNS, {"limit": limit + 1, "at": after[0] if after else None,
                                   "id": after[1] if after else None})
        cols = [d.name for d in cur.description or ()]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        page = _page(rows, limit, "started_at", "run_id")
        for item in page["items"]:
            for k in ("total", "errors", "warnings", "open"):
                item[k] = int(item[k] or 0)
            rid = item["run_id"]
            item["links"] = {"findings": base + rid + "/findings",
                             "geojson": base + rid + "/findings.geojson",
                             "csv": base + rid + "/findings.csv",
                             "tiles": base + rid + "/tiles/{z}/{x}/{y}.mvt"}
        record_sync(request, who, "qa.run.list", None, len(page["items"]), conn=conn)
    return page
