"""交房即交证 batches over HTTP (registrars, county scope, audited): start one for a project (a
parcel code or a project name) — a durable job runs it — and follow its progress per building
and the units that were not handed over."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from api.auditing import record_sync
from api.auth import require
from api.routers.cases import case_actor, staff_name
from api.state import app_state
from cadastre.access.principal import Principal, view
from cadastre.access.privacy import Role
from cadastre.cases import handover
from cadastre.cases.handover_report import batch_status, recent_batches
from cadastre.errors import NotFound

router = APIRouter(prefix="/api/v1/handover-batches", tags=["cases"])
Registrar = Annotated[Principal, Depends(require(Role.REGISTRAR))]


class BatchBody(BaseModel):
    project: str = Field(min_length=1, max_length=100,
                         description="宗地代码或项目名称 / parcel code or project name")


@router.post("", status_code=202, summary="交房即交证：批量办理一个项目 / hand a project over")
def start(request: Request, who: Registrar, body: BatchBody) -> dict[str, Any]:
    state = app_state(request)
    actor = case_actor(who, staff_name(state, who))
    with state.sync_pool.connection() as conn:
        batch_id, job_id = handover.start_batch(conn, body.project, actor)
        record_sync(request, who, "handover.start", str(batch_id), 1, conn=conn)
    return view(who, "handover", {"batch_id": str(batch_id), "status": "queued",
                                  "job": {"job_id": str(job_id)},
                                  "links": {"self": f"/api/v1/handover-batches/{batch_id}"}})


@router.get("", summary="批量办理记录 / recent batches")
def batches(request: Request, who: Registrar,
            limit: int = Query(20, ge=1, le=100)) -> dict[str, Any]:
    with app_state(request).sync_pool.connection() as conn:
        items = recent_batches(conn, who.counties, limit)
        record_sync(request, who, "handover.list", None, len(items), conn=conn)
    return {"items": [view(who, "handover", i) for i in items]}


@router.get("/{batch_id}", summary="进度（按幢）与未办结单元 / progress per building and "
                                   "failed units")
def status(request: Request, who: Registrar, batch_id: str) -> dict[str, Any]:
    try:
        bid = uuid.UUID(batch_id)
    except ValueError:
        raise NotFound("BATCH_NOT_FOUND", "无此批量办理 / no such handover batch") from None
    with app_state(request).sync_pool.connection() as conn:
        out = batch_status(conn, bid, who.counties)
        record_sync(request, who, "handover.read", str(bid), 1, conn=conn)
    return view(who, "handover", out)
