"""一号查询: the public progress of a case, by case number and the query code given at
acceptance. Stage, dates, promised completion date and light only — never a party, a unit or an
amount. An unknown case number and a wrong code get the same answer; repeated failures lock the
case number and the client address for a while (like owner verification)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.problems import problem_response
from api.ratelimit import rate_class
from api.state import app_state
from cadastre.access import lockout
from cadastre.access.principal import PUBLIC, view
from cadastre.cases import queries

router = APIRouter(prefix="/api/v1", tags=["cases"])
_KIND = "progress"


def _not_found() -> JSONResponse:   # (a problem+json response)
    return problem_response(404, "PROGRESS_NOT_FOUND", "未查询到该办件，请核对受理编号和查询码 / "
                            "no case with that number and query code")


def _lookup(request: Request, case_no: str, code: str) -> Any:
    state = app_state(request)
    s = state.settings.cases
    policy = lockout.Policy.progress(state.settings)
    host = request.client.host if request.client else None
    attempt = lockout.attempt(state.lockout_key, _KIND, case_no, host)
    with state.sync_pool.connection() as conn, conn.transaction():
        if lockout.locked(conn, attempt, policy):
            return problem_response(429, "PROGRESS_LOCKED", "查询失败次数过多，请稍后再试 / "
                                    "too many failed queries, try again later",
                                    {"Retry-After": str(policy.window_minutes * 60)})
        found = queries.progress(conn, s, state.cipher, case_no, code)
        if found is None:
            lockout.record_failure(conn, attempt)
            return _not_found()
    return view(PUBLIC, "case", found)


@router.get("/progress/{case_no}", summary="办件进度查询（一号查询）/ public case progress",
            openapi_extra=rate_class("auth"))   # guessing case numbers and codes: strict bucket
async def progress(request: Request, case_no: str,
                   code: str = Query(..., min_length=1, max_length=40,
                                     description="受理回执上的查询码 / query code")) -> Any:
    return await run_in_threadpool(_lookup, request, case_no[:40], code)
