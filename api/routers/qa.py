"""Registrar quality checks: rules, runs with progress, findings (JSON/CSV/GeoJSON/MVT),
finding status, 5 % review samples."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from api.auditing import record_sync
from api.auth import Principal, require
from cadastre.errors import NotFound
from cadastre.jobs import JobTracker, create_job, get_job
from cadastre.privacy import Role
from cadastre.qa.engine import draw_sample, run_qa, set_status
from cadastre.qa.report import findings_csv, findings_geojson, findings_rows, scope_from_options
from cadastre.qa.rules import CATEGORIES, RULES
from cadastre.store.db import connect
from tiles.mvt import TileRequest

router = APIRouter(prefix="/api/v1/qa", tags=["quality"])
REGISTRAR = require(Role.REGISTRAR)


def _uuid(v: str, code: str) -> uuid.UUID:
    try:
        return uuid.UUID(v)
    except ValueError:
        raise NotFound(code, "未找到 / not found") from None


@router.get("/rules", summary="质检规则 / rules")
def rules(request: Request, who: Principal = Depends(REGISTRAR)) -> list[dict[str, Any]]:
    disabled = set(request.app.state.settings.qa.disabled_rules)
    record_sync(request, who, "qa.rules", None, len(RULES))
    return [{"id": r.id, "version": r.version, "category": r.category,
             "category_name": CATEGORIES[r.category], "severity": r.severity,
             "title": {"zh": r.title_zh, "en": r.title_en}, "enabled": r.id not in disabled}
            for r in RULES]


class RunRequest(BaseModel):
    bbox: str | None = Field(None, description="lon1,lat1,lon2,lat2")
    parcels: list[str] | None = None
    rules: list[str] | None = None


def _run_job(url: str, job_id: uuid.UUID, run_id_holder: dict, scope: Any, qa: Any,
             actor: str, only: list[str] | None) -> None:
    with JobTracker(url, job_id) as job, connect(url) as conn:
        run_id_holder["run"] = run_qa(
            conn, scope, qa, actor, only=only, job_id=job_id,
            progress=lambda i, n, r: job.update(i / max(n, 1), r))
        conn.commit()


@router.post("/runs", status_code=202, summary="开始质检 / start a QA run")
def start_run(request: Request, body: RunRequest, who: Principal = Depends(REGISTRAR)
              ) -> dict[str, Any]:
    state = request.app.state
    scope = scope_from_options(body.bbox, body.parcels)
    actor = f"registrar:{who.account_id}"
    with state.sync_pool.connection() as conn, conn.transaction():
        job_id = create_job(conn, "qa_run", actor)
        record_sync(request, who, "qa.run", str(job_id), 1, conn=conn)
    state.job_pool.submit(_run_job, state.database_url, job_id, {}, scope, state.settings.qa,
                          actor, body.rules)
    return {"job_id": str(job_id), "links": {
        "job": str(request.base_url).rstrip("/") + f"/api/v1/qa/jobs/{job_id}"}}


@router.get("/jobs/{job_id}", summary="质检进度 / QA job progress")
def job(request: Request, job_id: str, who: Principal = Depends(REGISTRAR)) -> dict[str, Any]:
    jid = _uuid(job_id, "JOB_NOT_FOUND")
    with request.app.state.sync_pool.connection() as conn:
        state = get_job(conn, jid).as_dict()
        row = conn.execute("SELECT run_id FROM cad.qa_run WHERE job_id = %s", (jid,)).fetchone()
        record_sync(request, who, "qa.job", str(jid), 1, conn=conn)
    return {**state, "run_id": str(row[0]) if row else None}


@router.get("/runs/{run_id}/findings", summary="质检结果 / findings (JSON)")
def findings(request: Request, run_id: str, who: Principal = Depends(REGISTRAR)
             ) -> list[dict[str, Any]]:
    with request.app.state.sync_pool.connection() as conn:
        rows = findings_rows(conn, _uuid(run_id, "QA_RUN_NOT_FOUND"))
        record_sync(request, who, "qa.findings", run_id, len(rows), conn=conn)
    return rows


@router.get("/runs/{run_id}/findings.geojson", summary="质检结果图层 / findings (GeoJSON)")
def findings_layer(request: Request, run_id: str, who: Principal = Depends(REGISTRAR)
                   ) -> JSONResponse:
    with request.app.state.sync_pool.connection() as conn:
        rows = findings_rows(conn, _uuid(run_id, "QA_RUN_NOT_FOUND"))
        record_sync(request, who, "qa.findings", run_id, len(rows), conn=conn)
    return JSONResponse(findings_geojson(rows), media_type="application/geo+json")


@router.get("/runs/{run_id}/findings.csv", summary="质检结果 / findings (CSV)")
def findings_table(request: Request, run_id: str, who: Principal = Depends(REGISTRAR)
                   ) -> PlainTextResponse:
    with request.app.state.sync_pool.connection() as conn:
        rows = findings_rows(conn, _uuid(run_id, "QA_RUN_NOT_FOUND"))
        record_sync(request, who, "qa.findings.csv", run_id, len(rows), conn=conn)
    return PlainTextResponse("\ufeff" + findings_csv(rows), media_type="text/csv; charset=utf-8")


@router.get("/runs/{run_id}/tiles/{z}/{x}/{y}.mvt", summary="质检结果矢量瓦片 / findings MVT")
def findings_tile(request: Request, run_id: str, z: int, x: int, y: int,
                  who: Principal = Depends(REGISTRAR)) -> Response:
    TileRequest(z, x, y)
    with request.app.state.sync_pool.connection() as conn:
        row = conn.execute(
            """WITH b AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env)
               SELECT ST_AsMVT(t.*, 'qa_findings', 4096, 'geom') FROM (
                 SELECT ST_AsMVTGeom(f.geom_3857, b.env, 4096, 64, true) AS geom,
                        f.finding_id::text AS id, f.rule_id AS rule, f.severity,
                        f.status, f.measure, array_to_string(f.subject, ',') AS subject
                 FROM cad.qa_finding f, b
                 WHERE f.run_id = %(run)s AND f.geom_3857 && b.env) t
               WHERE t.geom IS NOT NULL""",
            {"z": z, "x": x, "y": y, "run": _uuid(run_id, "QA_RUN_NOT_FOUND")}).fetchone()
        data = bytes(row[0]) if row and row[0] else b""
        record_sync(request, who, "qa.findings.tile", f"{run_id}/{z}/{x}/{y}", int(bool(data)),
                    conn=conn)
    if not data:
        return Response(status_code=204)
    return Response(data, media_type="application/vnd.mapbox-vector-tile",
                    headers={"Cache-Control": "private, no-store"})


class StatusChange(BaseModel):
    status: str = Field(..., pattern="^(open|resolved|accepted)$")
    reason: str | None = Field(None, max_length=2000)


@router.post("/findings/{finding_id}", summary="标记问题 / resolve or accept a finding")
def mark(request: Request, finding_id: str, body: StatusChange,
         who: Principal = Depends(REGISTRAR)) -> dict[str, str]:
    with request.app.state.sync_pool.connection() as conn, conn.transaction():
        set_status(conn, _uuid(finding_id, "QA_FINDING_NOT_FOUND"), body.status, body.reason,
                   f"registrar:{who.account_id}")
        record_sync(request, who, f"qa.finding.{body.status}", finding_id, 1, conn=conn)
    return {"id": finding_id, "status": body.status}


class SampleRequest(BaseModel):
    since: date
    fraction: float = Field(0.05, gt=0, le=1)
    seed: int | None = None


@router.post("/samples", summary="抽取 5% 样本复核 / draw a review sample")
def sample(request: Request, body: SampleRequest, who: Principal = Depends(REGISTRAR)
           ) -> dict[str, Any]:
    with request.app.state.sync_pool.connection() as conn, conn.transaction():
        run_id, picked = draw_sample(conn, body.fraction, body.since,
                                     f"registrar:{who.account_id}", body.seed)
        record_sync(request, who, "qa.sample", str(run_id), len(picked), conn=conn)
    return {"sample_id": str(run_id), "count": len(picked), "business_numbers": picked}
