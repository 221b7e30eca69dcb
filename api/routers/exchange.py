"""Registry exchange over HTTP (registrars): import batches (upload → background validation with
progress → report → accept/reject) and the monthly quality bulletin. Reports and bulletins hold
codes and counts, never a party's identity."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.auditing import record_sync
from api.auth import require
from api.state import app_state
from cadastre.access.principal import Principal
from cadastre.access.privacy import Role
from cadastre.errors import CadastreError, NotFound
from cadastre.exchange import apply
from cadastre.exchange.staging import DEFAULT_SRID, create_batch, get_batch, get_report
from cadastre.jobs import create_job, get_job, set_payload
from cadastre.qa import bulletin as qb
from cadastre.store.uploads import store_upload

router = APIRouter(prefix="/api/v1/exchange", tags=["exchange"])
REGISTRAR = require(Role.REGISTRAR)


def _actor(who: Principal) -> str:
    return f"{who.role.value}:{who.account_id}"


def _id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("IMPORT_NOT_FOUND", "无此导入批次 / no such import batch") from None


@router.post("/imports", status_code=202, summary="导入存量登记数据 / import registrations")
def submit(request: Request, file: UploadFile = File(...),
           srid: int = Form(DEFAULT_SRID, ge=1, le=999_999),
           who: Principal = Depends(REGISTRAR)) -> dict[str, Any]:
    state = app_state(request)
    upload = store_upload(file.file, state.settings.data_dir / "uploads")
    try:
        with state.sync_pool.connection() as conn, conn.transaction():
            job_id = create_job(conn, "exchange_import", _actor(who))
            bid = create_batch(conn, upload, file.filename or "upload", _actor(who), srid,
                               job_id)
            set_payload(conn, job_id, {"batch_id": str(bid)})       # a worker validates it
            record_sync(request, who, "import.submit", str(bid), 1, conn=conn)
    except CadastreError:
        upload.discard()            # uploads are atomic: no row, no file
        raise
    return {"batch_id": str(bid), "job_id": str(job_id), "status": "received",
            "sha256": upload.sha256}


@router.get("/imports/{batch_id}", summary="导入状态与进度 / status and progress")
def status(request: Request, batch_id: str, who: Principal = Depends(REGISTRAR)
           ) -> dict[str, Any]:
    bid = _id(batch_id)
    with app_state(request).sync_pool.connection() as conn:
        batch = get_batch(conn, bid)
        job = get_job(conn, uuid.UUID(batch["job_id"])).as_dict() if batch["job_id"] else None
        record_sync(request, who, "import.status", str(bid), 1, conn=conn)
    return {**{k: v for k, v in batch.items() if k != "stored_path"}, "job": job}


@router.get("/imports/{batch_id}/report", summary="校验报告 / validation report")
def report(request: Request, batch_id: str, who: Principal = Depends(REGISTRAR)
           ) -> dict[str, Any]:
    bid = _id(batch_id)
    with app_state(request).sync_pool.connection() as conn:
        found = get_report(conn, bid)
        record_sync(request, who, "import.report", str(bid), 1, conn=conn)
    if found is None:
        raise NotFound("IMPORT_REPORT_PENDING", "校验尚未完成 / validation has not finished")
    return found


class Decision(BaseModel):
    reason: str | None = Field(None, max_length=2000)


@router.post("/imports/{batch_id}/accept", summary="登记员接受导入 / registrar accepts")
def accept(request: Request, batch_id: str, body: Decision | None = None,
           who: Principal = Depends(REGISTRAR)) -> dict[str, Any]:
    bid = _id(batch_id)
    state = app_state(request)
    with state.sync_pool.connection() as conn:
        # the register change and its audit row: one transaction (cadastre.exchange.apply)
        out = apply.accept(conn, bid, _actor(who), state.audit_key,
                           body.reason if body else None)
    state.data_bounds = None
    return {"batch_id": str(bid), "status": "accepted", **out}


@router.post("/imports/{batch_id}/reject", summary="登记员驳回导入 / registrar rejects")
def reject(request: Request, batch_id: str, body: Decision,
           who: Principal = Depends(REGISTRAR)) -> dict[str, Any]:
    bid = _id(batch_id)
    state = app_state(request)
    with state.sync_pool.connection() as conn:
        apply.reject(conn, bid, _actor(who), body.reason or "", state.audit_key)
    return {"batch_id": str(bid), "status": "rejected"}


@router.get("/bulletins/{county}/{month}", summary="质量月度通报 / monthly quality bulletin")
def bulletin(request: Request, county: str, month: str,
             format: str = Query("json", pattern="^(json|csv|pdf)$"),
             who: Principal = Depends(REGISTRAR)) -> Any:
    if len(county) != 6 or not county.isdigit() or (who.counties and county not in who.counties):
        raise NotFound("COUNTY_NOT_FOUND", "无此县（区）/ no such county")
    state = app_state(request)
    with state.sync_pool.connection() as conn:
        b = qb.bulletin(conn, county, month, tz=state.settings.cases.timezone)
        record_sync(request, who, "qa.bulletin", f"{county}:{b['month']}", 1, conn=conn)
    if format == "csv":
        return Response(qb.to_csv(b), media_type="text/csv; charset=utf-8")
    if format == "pdf":
        return Response(qb.to_pdf(b), media_type="application/pdf")
    return b
