"""Survey submissions: upload (surveyors, registrars), progress, report, diff, decision."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auditing import record_sync
from api.auth import Principal, require
from cadastre.errors import CadastreError
from cadastre.jobs import create_job, get_job
from cadastre.privacy import Role
from cadastre.survey import apply as decision
from cadastre.survey.diff import compute_diff, diff_geojson
from cadastre.survey.submission import (
    create_submission,
    get_submission,
    report_geojson,
    store_upload,
    validate_submission,
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
           srid: int | None = Form(None, description="EPSG code if the file has none"),
           who: Principal = Depends(require(*SUBMITTERS))) -> dict[str, Any]:
    state = request.app.state
    upload = store_upload(file.file, state.settings.data_dir / "uploads")
    with state.sync_pool.connection() as conn, conn.transaction():
        job_id = create_job(conn, "survey_validation", _actor(who))
        sid = create_submission(conn, upload, file.filename or "upload", _actor(who), job_id,
                                srid)
        record_sync(request, who, "survey.submit", str(sid), 1, conn=conn)
    state.job_pool.submit(validate_submission, state.database_url, sid,
                          state.settings.qa, job_id)
    return {"submission_id": str(sid), "job_id": str(job_id), "status": "received",
            "sha256": upload.sha256, "links": _links(request, sid)}


@router.get("/{submission_id}", summary="提交状态与进度 / status and progress")
def status(request: Request, submission_id: str,
           who: Principal = Depends(require(*SUBMITTERS))) -> dict[str, Any]:
    sid = _id(submission_id)
    with request.app.state.sync_pool.connection() as conn:
        sub = get_submission(conn, sid)
        job = get_job(conn, uuid.UUID(sub["job_id"])).as_dict() if sub["job_id"] else None
        record_sync(request, who, "survey.status", str(sid), 1, conn=conn)
    sub.pop("sha256", None)
    return {**sub, "job": job, "links": _links(request, sid)}


def _report(request: Request, sid: uuid.UUID) -> dict[str, Any]:
    from cadastre.errors import InvalidInput

    with request.app.state.sync_pool.connection() as conn:
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
    with request.app.state.sync_pool.connection() as conn:
        get_submission(conn, sid)
        summary = compute_diff(conn, sid).summary()
        record_sync(request, who, "survey.diff", str(sid), 1, conn=conn)
        return summary


@router.get("/{submission_id}/diff.geojson", summary="差异图层 / diff as GeoJSON")
def diff_layer(request: Request, submission_id: str,
               who: Principal = Depends(require(*SUBMITTERS))) -> JSONResponse:
    sid = _id(submission_id)
    with request.app.state.sync_pool.connection() as conn:
        get_submission(conn, sid)
        layer = diff_geojson(conn, sid, compute_diff(conn, sid))
        record_sync(request, who, "survey.diff", str(sid), len(layer.get("features", ())),
                    conn=conn)
        return JSONResponse(layer, media_type=GEOJSON)


class Decision(BaseModel):
    reason: str | None = Field(None, max_length=2000)


@router.post("/{submission_id}/accept", summary="登记员接受 / registrar accepts")
def accept(request: Request, submission_id: str, body: Decision | None = None,
           who: Principal = Depends(require(Role.REGISTRAR))) -> dict[str, Any]:
    sid = _id(submission_id)
    with request.app.state.sync_pool.connection() as conn:
        conn.autocommit = False
        try:
            with conn.transaction():   # the change and its audit row commit together
                result = decision.accept(conn, sid, _actor(who), body.reason if body else None)
                record_sync(request, who, "survey.accept", str(sid), 1, conn=conn)
        except CadastreError as exc:
            conn.rollback()
            record_sync(request, who, "survey.accept", str(sid), 0, exc.code, conn=conn)
            conn.commit()
            raise
        finally:
            conn.autocommit = True
    state = request.app.state
    state.data_bounds = None
    if result["diff"]["units"].get("new") or result["diff"]["units"].get("changed"):
        state.job_pool.submit(_refresh_unit_volumes, state)
    return {"submission_id": str(sid), "status": "accepted", **result}


def _refresh_unit_volumes(state: Any) -> None:
    """Rebuild the 3D unit volumes of buildings whose units the accepted survey changed."""
    import logging

    from tiles.threed.registry import list_datasets
    from tiles.threed.units import publish_unit_volumes

    try:
        with state.sync_pool.connection() as conn:
            for ds in list_datasets(state.settings.data_dir):
                if ds.kind == "units":
                    publish_unit_volumes(conn, state.settings.data_dir, ds.name)
    except Exception:
        logging.getLogger(__name__).exception("unit volume refresh failed")


@router.post("/{submission_id}/reject", summary="登记员驳回 / registrar rejects")
def reject(request: Request, submission_id: str, body: Decision,
           who: Principal = Depends(require(Role.REGISTRAR))) -> dict[str, Any]:
    sid = _id(submission_id)
    with request.app.state.sync_pool.connection() as conn:
        conn.autocommit = False
        try:
            with conn.transaction():   # the change and its audit row commit together
                decision.reject(conn, sid, _actor(who), body.reason or "")
                record_sync(request, who, "survey.reject", str(sid), 1, conn=conn)
        except CadastreError as exc:
            conn.rollback()
            record_sync(request, who, "survey.reject", str(sid), 0, exc.code, conn=conn)
            conn.commit()
            raise
        finally:
            conn.autocommit = True
    return {"submission_id": str(sid), "status": "rejected"}
