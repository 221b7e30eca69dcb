"""Registration cases (办件): open a case at the window (or online), move it through its stages,
pause and resume its clock, the registrar's worklist and the supervisor's dashboard (JSON or
CSV), the business catalogue and the working-day calendar.

Staff routes are for registrars (county scope applies) and audited; the catalogue and the
calendar are public (what the office publishes). The public progress query is in
``api.routers.progress``.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from api.auditing import record_sync
from api.auth import require
from api.routers.registry import parse_as_of
from api.state import AppState, app_state
from cadastre.access.principal import Principal, view
from cadastre.access.privacy import Role
from cadastre.cases import calendar as cal
from cadastre.cases import catalogue, queries
from cadastre.cases import workflow as wf
from cadastre.cases.application import Application, PartyInput
from cadastre.cases.model import Action, PauseReason
from cadastre.errors import InvalidInput, NotFound

router = APIRouter(prefix="/api/v1", tags=["cases"])
Registrar = Annotated[Principal, Depends(require(Role.REGISTRAR))]
Applicant = Annotated[Principal, Depends(require(Role.REGISTRAR, Role.OWNER))]


class PartyBody(BaseModel):
    name: str = Field(max_length=100)
    id_number: str = Field(max_length=40)
    role: Literal["applicant", "holder", "mortgagee", "obligor", "agent"] = "holder"
    id_type: int = Field(1, ge=1, le=99)
    party_type: int = Field(1, ge=1, le=99)
    phone: str | None = Field(None, max_length=30)
    address: str | None = Field(None, max_length=200)
    share: str | None = Field(None, max_length=20)
    co_ownership: int | None = Field(None, ge=0, le=3)
    part: str | None = Field(None, pattern=r"^[a-z_]{2,40}$",
                             description="合并业务中所属的部分 / the part of a combined "
                                         "business it belongs to (none: the whole case)")


class CaseBody(BaseModel):
    business_type: int = Field(ge=1, le=999, description="登记业务 (GET /api/v1/business-types)")
    unit_codes: list[str] = Field(min_length=1, max_length=50)
    parties: list[PartyBody] = Field(default_factory=list, max_length=20)
    target_right_id: uuid.UUID | None = None
    request: dict[str, Any] = Field(default_factory=dict, description="登记内容 / details")
    channel: Literal["window", "online"] = "window"
    materials: list[str] = Field(default_factory=list, max_length=40)


class ReviewBody(BaseModel):
    step: str = Field(max_length=40)
    opinion: str = Field(max_length=2000)
    passed: bool = True


class ActionBody(BaseModel):
    action: Action
    note: str | None = Field(None, max_length=2000)
    reason: str | None = Field(None, max_length=2000)
    review: ReviewBody | None = None


class PauseBody(BaseModel):
    reason: PauseReason
    note: str | None = Field(None, max_length=2000)
    missing: list[str] = Field(default_factory=list, max_length=40,
                               description="补正: codes of every missing material")


class NoteBody(BaseModel):
    note: str | None = Field(None, max_length=2000)


class LimitBody(BaseModel):
    promised_days: int = Field(ge=0, le=60)


class DayBody(BaseModel):
    day: date
    workday: bool
    note: str | None = Field(None, max_length=100)


def _keys(state: AppState) -> wf.Keys:
    return wf.Keys(state.cipher, state.audit_key, state.issuing)


def case_actor(who: Principal, name: str | None = None) -> wf.Actor:
    return wf.Actor(who.actor, who.role.value, name or "登记员", who.counties, who.account_id)


def staff_name(state: AppState, who: Principal) -> str:
    """登簿人: the staff account's display name (staff are not parties; no PII policy applies)."""
    if who.account_id is None:
        return "登记员"
    with state.sync_pool.connection() as conn:
        row = conn.execute("SELECT coalesce(display_name, username) FROM auth.account "
                           "WHERE account_id = %s", (who.account_id,)).fetchone()
    return row[0] if row else "登记员"


def _case_view(who: Principal, rec: dict[str, Any]) -> dict[str, Any]:
    out = view(who, "case", rec)
    if "parties" in rec:
        out["parties"] = [view(who, "party", p) for p in rec["parties"]]
    return out


# ------------------------------------------------------------------ catalogue and calendar
@router.get("/business-types", summary="登记业务目录与时限 / business catalogue and limits")
def business_types(request: Request) -> list[dict[str, Any]]:
    """The business types with their statutory and promised working-day limits (0 = 即时办理),
    the application materials (一次性告知), the parts of a combined business in 登簿 order and
    the documents it needs from other departments (一码关联)."""
    with app_state(request).sync_pool.connection() as conn:
        return [{**bt.as_dict(), "materials": [
            {"code": m.code, "name": {"zh": m.name_zh, "en": m.name_en}, "required": m.required}
            for m in catalogue.materials(conn, bt.seq)], "parts": _parts(conn, bt.seq),
            "documents": [{"doc_type": n.doc_type, "scope": n.scope, "fills": n.fills}
                          for n in catalogue.document_needs(conn, [bt.seq])]}
            for bt in catalogue.all_types(conn)]


def _parts(conn: Any, seq: int) -> list[dict[str, Any]]:
    parts = catalogue.parts(conn, seq)
    return [p.as_dict(last=i == len(parts) - 1) for i, p in enumerate(parts)]


@router.put("/business-types/{seq}/limits/{county}", summary="县区承诺时限 / county limit")
def set_limit(request: Request, who: Registrar, seq: int, county: str, body: LimitBody
              ) -> dict[str, Any]:
    if not (county.isdigit() and len(county) == 6) or (who.counties and county not in
                                                        who.counties):
        raise NotFound("COUNTY_NOT_FOUND", "无此县区 / no such county in your scope")
    with app_state(request).sync_pool.connection() as conn, conn.transaction():
        catalogue.set_county_limit(conn, county, seq, body.promised_days, who.actor)
        record_sync(request, who, "catalogue.limit", f"{county}:{seq}", 1, conn=conn)
    return {"county_code": county, "business_type": seq, "promised_days": body.promised_days}


@router.get("/calendar/{year}", summary="工作日历 / working-day calendar of a year")
def calendar_year(request: Request, year: int) -> dict[str, Any]:
    if not 2000 <= year <= 2100:
        raise InvalidInput("CALENDAR_YEAR", "年份超出范围 / year out of range")
    state = app_state(request)
    with state.sync_pool.connection() as conn:
        cal.ensure(conn, state.settings.cases)
        v = cal.year_view(conn, year)
    return {"year": v.year, "source": v.source, "workdays": v.workdays, "warning": v.warning,
            "days_off": [{"day": d.day.isoformat(), "note": d.note} for d in v.days_off],
            "extra_workdays": [{"day": d.day.isoformat(), "note": d.note}
                               for d in v.extra_workdays]}


@router.post("/calendar/days", summary="本地节假日或调休 / a local holiday or working day")
def calendar_day(request: Request, who: Registrar, body: DayBody) -> dict[str, Any]:
    state = app_state(request)
    with state.sync_pool.connection() as conn, conn.transaction():
        cal.set_day(conn, state.settings.cases, body.day, body.workday, body.note, who.actor)
        record_sync(request, who, "calendar.day", body.day.isoformat(), 1, conn=conn)
    return {"day": body.day.isoformat(), "workday": body.workday}


# ------------------------------------------------------------------ cases
@router.post("/cases", status_code=201, summary="受理 / open a case")
def open_case(request: Request, who: Applicant, body: CaseBody) -> dict[str, Any]:
    """A registrar accepts at the window (stage 受理) or records an online application (申请);
    a verified owner applies online for their own units. The query code for the public
    progress page is in this answer only."""
    state = app_state(request)
    channel = body.channel
    if who.role is Role.OWNER:
        channel = "online"
        if not set(body.unit_codes) <= set(who.units):
            raise NotFound("UNIT_NOT_FOUND", "无此不动产单元 / no such unit among yours")
    app = Application(body.business_type, tuple(body.unit_codes),
                      tuple(PartyInput(**p.model_dump()) for p in body.parties),
                      body.target_right_id, body.request, channel, tuple(body.materials))
    with state.sync_pool.connection() as conn:
        opened = wf.open_case(conn, state.settings.cases, _keys(state),
                              case_actor(who, staff_name(state, who)), app)
    return {"case_no": opened.case_no, "query_code": opened.query_code,
            "stage": opened.stage.value,
            "links": {"self": f"/api/v1/cases/{opened.case_no}",
                      "progress": f"/api/v1/progress/{opened.case_no}"}}


def _csv(rows: list[dict[str, Any]], fields: tuple[str, ...], name: str) -> Response:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (v["zh"] if isinstance(v, dict) and "zh" in v else
                        ";".join(v) if isinstance(v, list) else v) for k, v in r.items()})
    return Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


WORKLIST_CSV = ("case_no", "business_type", "business_type_label", "stage_label", "light",
                "statutory_overdue", "paused", "remaining_workdays", "promised_due_date",
                "accepted_at", "due_at", "statutory_due_at", "unit_codes")


@router.get("/cases", summary="办件工作台 / worklist (most urgent first)")
def worklist(
    request: Request, who: Registrar,
    mine: bool = Query(False, description="只看分配给我的 / only cases assigned to me"),
    stage: str | None = Query(None, max_length=30),
    light: Literal["green", "yellow", "red"] | None = None,
    business_type: int | None = Query(None, ge=1, le=999),
    statutory_overdue: bool = False,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=400),
    format: Literal["json", "csv"] = "json",
) -> Any:
    state = app_state(request)
    f = queries.WorklistFilter(who.counties, who.account_id if mine else None, stage, light,
                               business_type, statutory_overdue, limit, cursor)
    with state.sync_pool.connection() as conn:
        page = queries.worklist(conn, state.settings.cases, f)
        items = [_case_view(who, r) for r in page["items"]]
        record_sync(request, who, "case.list", light or stage, len(items), conn=conn)
    if format == "csv":
        return _csv(items, WORKLIST_CSV, "cases.csv")
    return {"items": items, "next": page["next"]}


@router.get("/cases/stats", summary="督办统计 / supervision dashboard")
def case_stats(
    request: Request, who: Registrar,
    since: str | None = Query(None, max_length=40, description="默认 30 天前 / default: 30 days"),
    until: str | None = Query(None, max_length=40),
    format: Literal["json", "csv"] = "json",
) -> Any:
    state = app_state(request)
    end = parse_as_of(until) or datetime.now().astimezone()
    start = parse_as_of(since) or end - timedelta(days=30)
    if start >= end:
        raise InvalidInput("PERIOD_INVALID", "起始时间须早于结束时间 / since must be before until")
    with state.sync_pool.connection() as conn:
        out = queries.stats(conn, state.settings.cases, who.counties, start, end)
        out["overdue"] = [_case_view(who, r) for r in out["overdue"]]
        record_sync(request, who, "case.stats", None, len(out["rows"]), conn=conn)
    if format == "csv":
        return _csv(out["rows"], queries.STATS_FIELDS, "case-stats.csv")
    return out


@router.get("/cases/{case_no}", summary="案件详情 / one case")
def case_detail(request: Request, who: Registrar, case_no: str) -> dict[str, Any]:
    state = app_state(request)
    with state.sync_pool.connection() as conn:
        try:
            rec = queries.case_detail(conn, state.settings.cases, state.cipher, case_no[:40],
                                      who.counties)
        finally:
            record_sync(request, who, "case.read", case_no[:40] if case_no.isdigit() else None,
                        1, conn=conn)
    return _case_view(who, rec)


@router.post("/cases/{case_no}/actions", summary="流转 / move the case (审核, 登簿, 缮证 …)")
def case_action(request: Request, who: Registrar, case_no: str,
                body: ActionBody) -> dict[str, Any]:
    state = app_state(request)
    review = wf.Review(**body.review.model_dump()) if body.review else None
    with state.sync_pool.connection() as conn:
        return wf.advance(conn, state.settings.cases, _keys(state),
                          case_actor(who, staff_name(state, who)), case_no[:40], body.action,
                          note=body.note, reason=body.reason, review=review)


@router.post("/cases/{case_no}/pauses", status_code=201, summary="暂停计时 / pause (补正 …)")
def case_pause(request: Request, who: Registrar, case_no: str, body: PauseBody
               ) -> dict[str, Any]:
    state = app_state(request)
    with state.sync_pool.connection() as conn:
        pid = wf.pause(conn, state.settings.cases, _keys(state), case_actor(who), case_no[:40],
                       body.reason, body.note, body.missing)
    return {"case_no": case_no, "pause_id": pid, "reason": body.reason.value}


@router.post("/cases/{case_no}/resume", summary="恢复计时 / resume the clock")
def case_resume(request: Request, who: Registrar, case_no: str, body: NoteBody
                ) -> dict[str, Any]:
    state = app_state(request)
    with state.sync_pool.connection() as conn:
        days = wf.resume(conn, state.settings.cases, _keys(state), case_actor(who), case_no[:40],
                         body.note)
    return {"case_no": case_no, "paused_workdays": days}
