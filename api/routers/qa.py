"""Registrar quality checks: rules, runs with progress, findings (JSON/CSV/GeoJSON/MVT),
finding status, 5 % review samples."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from api.auditing import record_sync
from api.auth import require
from api.paging import decode_cursor, keyset_page
from api.state import app_state
from cadastre.access.principal import Principal
from cadastre.access.privacy import Role
from cadastre.errors import NotFound
from cadastre.jobs import create_job, get_job
from cadastre.qa.engine import draw_sample, set_status
from cadastre.qa.report import findings_csv, findings_geojson, findings_rows, scope_from_options
from cadastre.qa.rules import CATEGORIES, RULES
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
    disabled = set(app_state(request).settings.qa.disabled_rules)
    record_sync(request, who, "qa.rules", None, len(RULES))
    return [{"id": r.id, "version": r.version, "category": r.category,
             "category_name": CATEGORIES[r.category], "severity": r.severity,
             "title": {"zh": r.title_zh, "en": r.title_en}, "enabled": r.id not in disabled}
            for r in RULES]


class RunRequest(BaseModel):
    bbox: str | None = Field(None, description="lon1,lat1,lon2,lat2")
    parcels: list[str] | None = None
    rules: list[str] | None = None


@router.post("/runs", status_code=202, summary="开始质检 / start a QA run")
def start_run(request: Request, body: RunRequest, who: Principal = Depends(REGISTRAR)
              ) -> dict[str, Any]:
    state = app_state(request)
    scope_from_options(body.bbox, body.parcels)   # a bad scope is a 400 now, not a failed job
    actor = f"registrar:{who.account_id}"
    with state.sync_pool.connection() as conn, conn.transaction():
        job_id = create_job(conn, "qa_run", actor, {"bbox": body.bbox, "parcels": body.parcels,
                                                    "rules": body.rules, "actor": actor})
        record_sync(request, who, "qa.run", str(job_id), 1, conn=conn)
    return {"job_id": str(job_id), "links": {
        "job": str(request.base_url).rstrip("/") + f"/api/v1/qa/jobs/{job_id}"}}


@router.get("/jobs/{job_id}", summary="质检进度 / QA job progress")
def job(request: Request, job_id: str, who: Principal = Depends(REGISTRAR)) -> dict[str, Any]:
    jid = _uuid(job_id, "JOB_NOT_FOUND")
    with app_state(request).sync_pool.connection() as conn:
        state = get_job(conn, jid).as_dict()
        row = conn.execute("SELECT run_id FROM cad.qa_run WHERE job_id = %s", (jid,)).fetchone()
        record_sync(request, who, "qa.job", str(jid), 1, conn=conn)
    return {**state, "run_id": str(row[0]) if row else None}


@router.get("/runs/{run_id}/findings", summary="质检结果 / findings (JSON)")
def findings(request: Request, run_id: str, who: Principal = Depends(REGISTRAR)
             ) -> list[dict[str, Any]]:
    with app_state(request).sync_pool.connection() as conn:
        rows = findings_rows(conn, _uuid(run_id, "QA_RUN_NOT_FOUND"))
        record_sync(request, who, "qa.findings", run_id, len(rows), conn=conn)
    return rows


@router.get("/runs/{run_id}/findings.geojson", summary="质检结果图层 / findings (GeoJSON)")
def findings_layer(request: Request, run_id: str, who: Principal = Depends(REGISTRAR)
                   ) -> JSONResponse:
    with app_state(request).sync_pool.connection() as conn:
        rows = findings_rows(conn, _uuid(run_id, "QA_RUN_NOT_FOUND"))
        record_sync(request, who, "qa.findings", run_id, len(rows), conn=conn)
    return JSONResponse(findings_geojson(rows), media_type="application/geo+json")


@router.get("/runs/{run_id}/findings.csv", summary="质检结果 / findings (CSV)")
def findings_table(request: Request, run_id: str, who: Principal = Depends(REGISTRAR)
                   ) -> PlainTextResponse:
    with app_state(request).sync_pool.connection() as conn:
        rows = findings_rows(conn, _uuid(run_id, "QA_RUN_NOT_FOUND"))
        record_sync(request, who, "qa.findings.csv", run_id, len(rows), conn=conn)
    return PlainTextResponse("\ufeff" + findings_csv(rows), media_type="text/csv; charset=utf-8")


@router.get("/runs/{run_id}/tiles/{z}/{x}/{y}.mvt", summary="质检结果矢量瓦片 / findings MVT")
def findings_tile(request: Request, run_id: str, z: Annotated[int, Path(ge=0, le=30)],
                  x: Annotated[int, Path(ge=0, le=2**30)], y: Annotated[int, Path(ge=0, le=2**30)],
                  who: Principal = Depends(REGISTRAR)) -> Response:
    TileRequest(z, x, y)
    with app_state(request).sync_pool.connection() as conn:
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
    with app_state(request).sync_pool.connection() as conn, conn.transaction():
        set_status(conn, _uuid(finding_id, "QA_FINDING_NOT_FOUND"), body.status, body.reason,
                   f"registrar:{who.account_id}")
        record_sync(request, who, f"qa.finding.{body.status}", finding_id, 1, conn=conn)
    return {"id": finding_id, "status": body.status}


class SampleRequest(BaseModel):
    since: date
    fraction: float | None = Field(None, gt=0, le=1,
                                   description="default: CADASTRE_QA_SAMPLE_FRACTION (5 %)")
    seed: int | None = Field(None, ge=0, le=2**31 - 1)


@router.post("/samples", summary="抽取样本复核（默认 5%）/ draw a review sample")
def sample(request: Request, body: SampleRequest, who: Principal = Depends(REGISTRAR)
           ) -> dict[str, Any]:
    state = app_state(request)
    fraction = body.fraction or state.settings.qa.sample_fraction
    with state.sync_pool.connection() as conn, conn.transaction():
        run_id, picked = draw_sample(conn, fraction, body.since,
                                     f"registrar:{who.account_id}", body.seed)
        record_sync(request, who, "qa.sample", str(run_id), len(picked), conn=conn)
    return {"sample_id": str(run_id), "count": len(picked), "business_numbers": picked}


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


@router.get("/runs", summary="质检批次列表 / QA runs (newest first)")
def list_runs(
    request: Request,
    who: Annotated[Principal, Depends(REGISTRAR)],
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = Query(None, description="上一页的 next / `next` of the previous page"),
) -> dict[str, Any]:
    """Runs with their finding counts and the WGS84 extent of their findings."""
    after = decode_cursor(cursor)
    base = str(request.base_url).rstrip("/") + "/api/v1/qa/runs/"
    with app_state(request).sync_pool.connection() as conn:
        cur = conn.execute(_RUNS, {"limit": limit + 1, "at": after[0] if after else None,
                                   "id": after[1] if after else None})
        cols = [d.name for d in cur.description or ()]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        page = keyset_page(rows, limit, "started_at", "run_id")
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
