"""Survey submissions: upload (surveyors, registrars), progress, report, diff, decision."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import psycopg
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auditing import record_sync
from api.auth import require
from api.paging import decode_cursor, keyset_page
from api.state import app_state
from cadastre.access.principal import Principal
from cadastre.access.privacy import Role
from cadastre.errors import CadastreError, InvalidInput
from cadastre.jobs import create_job, get_job, set_payload
from cadastre.survey import apply as decision
from cadastre.survey.diff import compute_diff, diff_geojson
from cadastre.survey.submission import (
    create_submission,
    get_submission,
    report_geojson,
    store_upload,
)

router = APIRouter(prefix="/api/v1/surveys", tags=["surveys"])
SUBMITTERS = (Role.SURVEYOR, Role.REGISTRAR)
GEOJSON = "application/geo+json"


def _actor(who: Principal) -> str:
    return f"{who.role.value}:{who.account_id}"


def _id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        from cadastre.errors import NotFound

        raise NotFound("SUBMISSION_NOT_FOUND", "无此提交 / no such survey submission") from None


def _links(request: Request, sid: uuid.UUID) -> dict[str, str]:
    base = str(request.base_url).rstrip("/") + f"/api/v1/surveys/{sid}"
    return {"self": base, "report": base + "/report", "report_geojson": base + "/report.geojson",
            "diff": base + "/diff", "diff_geojson": base + "/diff.geojson"}


@router.post("", status_code=202, summary="提交测绘成果 / submit a survey")
def submit(request: Request, file: UploadFile = File(...),
           srid: int | None = Form(None, ge=1, le=999_999,
                                   description="EPSG code if the file has none"),
           who: Principal = Depends(require(*SUBMITTERS))) -> dict[str, Any]:
    state = app_state(request)
    upload = store_upload(file.file, state.settings.data_dir / "uploads")
    with state.sync_pool.connection() as conn, conn.transaction():
        job_id = create_job(conn, "survey_validation", _actor(who))
        sid = create_submission(conn, upload, file.filename or "upload", _actor(who), job_id,
                                srid)
        set_payload(conn, job_id, {"submission_id": str(sid)})   # a worker validates it
        record_sync(request, who, "survey.submit", str(sid), 1, conn=conn)
    return {"submission_id": str(sid), "job_id": str(job_id), "status": "received",
            "sha256": upload.sha256, "links": _links(request, sid)}


@router.get("/{submission_id}", summary="提交状态与进度 / status and progress")
def status(request: Request, submission_id: str,
           who: Principal = Depends(require(*SUBMITTERS))) -> dict[str, Any]:
    sid = _id(submission_id)
    with app_state(request).sync_pool.connection() as conn:
        sub = get_submission(conn, sid)
        job = get_job(conn, uuid.UUID(sub["job_id"])).as_dict() if sub["job_id"] else None
        record_sync(request, who, "survey.status", str(sid), 1, conn=conn)
    sub.pop("sha256", None)
    return {**sub, "job": job, "links": _links(request, sid)}


def _report(request: Request, sid: uuid.UUID) -> dict[str, Any]:
    from cadastre.errors import InvalidInput

    with app_state(request).sync_pool.connection() as conn:
        row = conn.execute("SELECT report FROM cad.survey_submission WHERE submission_id = %s",
                           (sid,)).fetchone()
        if row is None:
            get_submission(conn, sid)
    if not row or row[0] is None:
        raise InvalidInput("REPORT_NOT_READY", "校验尚未完成 / validation has not finished")
    return row[0]


@router.get("/{submission_id}/report", summary="校验报告 / validation report")
def report(request: Request, submission_id: str,
           who: Principal = Depends(require(*SUBMITTERS))) -> dict[str, Any]:
    out = _report(request, _id(submission_id))
    record_sync(request, who, "survey.report", submission_id, 1)
    return out


@router.get("/{submission_id}/report.geojson", summary="校验报告图层 / report as GeoJSON")
def report_layer(request: Request, submission_id: str,
                 who: Principal = Depends(require(*SUBMITTERS))) -> JSONResponse:
    layer = report_geojson(_report(request, _id(submission_id)))
    record_sync(request, who, "survey.report", submission_id, len(layer.get("features", ())))
    return JSONResponse(layer, media_type=GEOJSON)


@router.get("/{submission_id}/diff", summary="与现势登记的差异 / effect on the registry")
def diff(request: Request, submission_id: str,
         who: Principal = Depends(require(*SUBMITTERS))) -> dict[str, Any]:
    sid = _id(submission_id)
    with app_state(request).sync_pool.connection() as conn:
        get_submission(conn, sid)
        summary = compute_diff(conn, sid).summary()
        record_sync(request, who, "survey.diff", str(sid), 1, conn=conn)
        return summary


@router.get("/{submission_id}/diff.geojson", summary="差异图层 / diff as GeoJSON")
def diff_layer(request: Request, submission_id: str,
               who: Principal = Depends(require(*SUBMITTERS))) -> JSONResponse:
    sid = _id(submission_id)
    with app_state(request).sync_pool.connection() as conn:
        get_submission(conn, sid)
        layer = diff_geojson(conn, sid, compute_diff(conn, sid))
        record_sync(request, who, "survey.diff", str(sid), len(layer.get("features", ())),
                    conn=conn)
        return JSONResponse(layer, media_type=GEOJSON)


T = TypeVar("T")


class Decision(BaseModel):
    reason: str | None = Field(None, max_length=2000)


def _decide(request: Request, who: Principal, action: str, sid: uuid.UUID,
            apply: Callable[[psycopg.Connection], T]) -> T:
    """A registrar's decision and its audit row in one transaction; a refused decision is
    audited with its error code (and nothing else is written)."""
    with app_state(request).sync_pool.connection() as conn:
        conn.autocommit = False
        try:
            with conn.transaction():   # the change and its audit row commit together
                result = apply(conn)
                record_sync(request, who, action, str(sid), 1, conn=conn)
        except CadastreError as exc:
            conn.rollback()
            record_sync(request, who, action, str(sid), 0, exc.code, conn=conn)
            conn.commit()
            raise
        finally:
            conn.autocommit = True
    return result


@router.post("/{submission_id}/accept", summary="登记员接受 / registrar accepts")
def accept(request: Request, submission_id: str, body: Decision | None = None,
           who: Principal = Depends(require(Role.REGISTRAR))) -> dict[str, Any]:
    sid = _id(submission_id)

    def apply(conn: psycopg.Connection) -> dict[str, Any]:
        out = decision.accept(conn, sid, _actor(who), body.reason if body else None)
        units = out["diff"]["units"]
        if units.get("new") or units.get("changed"):   # 3D unit volumes follow
            create_job(conn, "unit_volumes", _actor(who), max_attempts=2)
        return out

    result = _decide(request, who, "survey.accept", sid, apply)
    app_state(request).data_bounds = None
    return {"submission_id": str(sid), "status": "accepted", **result}


@router.post("/{submission_id}/reject", summary="登记员驳回 / registrar rejects")
def reject(request: Request, submission_id: str, body: Decision,
           who: Principal = Depends(require(Role.REGISTRAR))) -> dict[str, Any]:
    sid = _id(submission_id)
    _decide(request, who, "survey.reject", sid,
            lambda conn: decision.reject(conn, sid, _actor(who), body.reason or ""))
    return {"submission_id": str(sid), "status": "rejected"}


SURVEY_STAFF = require(Role.SURVEYOR, Role.REGISTRAR)
SUBMISSION_STATUSES = ("received", "validating", "validated", "invalid", "failed", "accepted",
                       "rejected")

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


@router.get("", summary="测绘成果提交列表 / survey submissions (newest first)")
def list_submissions(
    request: Request,
    who: Annotated[Principal, Depends(SURVEY_STAFF)],
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = Query(None, description="上一页的 next / `next` of the previous page"),
    status: str | None = Query(None, description=" | ".join(SUBMISSION_STATUSES)),
) -> dict[str, Any]:
    """A surveyor sees their own submissions, a registrar everyone's."""
    if status is not None and status not in SUBMISSION_STATUSES:
        raise InvalidInput("STATUS_INVALID", "未知状态 / unknown status")
    after = decode_cursor(cursor)
    mine = None if who.role is Role.REGISTRAR else f"{who.role.value}:{who.account_id}"
    base = str(request.base_url).rstrip("/") + "/api/v1/surveys/"
    with app_state(request).sync_pool.connection() as conn:
        cur = conn.execute(_SUBMISSIONS, {
            "mine": mine, "status": status, "limit": limit + 1,
            "at": after[0] if after else None, "id": after[1] if after else None})
        cols = [d.name for d in cur.description or ()]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        page = keyset_page(rows, limit, "submitted_at", "submission_id")
        for item in page["items"]:
            item["links"] = {"self": base + item["submission_id"]}
        record_sync(request, who, "survey.list", status, len(page["items"]), conn=conn)
    return page
