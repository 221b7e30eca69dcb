"""Owners: verification, my units and rights, 宗地图 / 分层分户图 downloads, certificate QR,
the electronic certificate (电子不动产权证书) and a signed query result (不动产登记信息查询结果).

The public side of the QR code (一证一码) is ``api.routers.certificates``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.auditing import record_sync
from api.auth import Unauthorized, issue_token, require
from api.problems import problem_response
from api.ratelimit import rate_class
from api.state import AppState, app_state
from cadastre.access import lockout, owner
from cadastre.access.principal import Principal, view
from cadastre.access.privacy import Role
from cadastre.certificates import electronic_copy, issue_query_result, store
from cadastre.documents import certificate, floor_plan, parcel_map
from cadastre.documents.render import pdf_to_png
from cadastre.errors import Conflict, NotFound

router = APIRouter(tags=["owner"])
AUTH = rate_class("auth")   # guessing targets these: the strict rate-limit bucket

_UNIT_CODE = re.compile(r"^[0-9A-Z]{28}$")
MAX_BODY = 4096


# ------------------------------------------------------------------ models (OpenAPI)
class VerifyRequest(BaseModel):
    name: str = Field(description="权利人姓名或名称 / right holder's name", max_length=200)
    id_number: str = Field(description="证件号码 / ID number", max_length=200)
    certificate_no: str = Field(description="不动产权证书号 / certificate number",
                                max_length=200)


class VerifyQrRequest(BaseModel):
    qr_token: str = Field(description="证书二维码中的令牌 / token from the certificate QR",
                          max_length=200)
    id_number: str = Field(description="证件号码 / ID number", max_length=200)


class OwnerToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    units: list[str]


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


_FAILED_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "OWNER_VERIFY_FAILED (one answer for every kind of failure)"},
    429: {"description": "OWNER_LOCKED: too many failures; see Retry-After"},
}


# ------------------------------------------------------------------ helpers
def _keys(request: Request) -> AppState:
    """The cipher (``.cipher``) and audit key (``.audit_key``) of the app."""
    return app_state(request)


async def _json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or {} for anything else (it fails like a wrong answer)."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _failed() -> Unauthorized:
    return Unauthorized("OWNER_VERIFY_FAILED",
                        "身份核验未通过，请核对姓名、证件号码和不动产权证书号 / "
                        "verification failed: check the name, ID number and certificate number")


def _run_verification(request: Request, claim: owner.Claim) -> Response | dict[str, Any]:
    state = app_state(request)
    settings = state.settings
    keys = _keys(request)
    limits = lockout.Policy.owner_verify(settings)
    host = request.client.host if request.client else None
    with state.sync_pool.connection() as conn, conn.transaction():
        result = owner.verify(conn, keys.cipher, keys.audit_key, claim, host, limits)
        role = Role.OWNER if result.outcome == "ok" else Role.PUBLIC
        record_sync(request, Principal(role, subject=result.subject), "owner.verify", None,
                    len(result.units), result.outcome, conn=conn)
    if result.outcome == "ok":
        token, ttl = issue_token(settings, Role.OWNER, subject=result.subject,
                                 units=result.units,
                                 ttl_minutes=settings.security.owner_token_ttl_minutes)
        return {"access_token": token, "token_type": "bearer", "expires_in": ttl,
                "units": list(result.units)}
    if result.outcome == "locked":
        return problem_response(
            429, "OWNER_LOCKED", "核验失败次数过多，请稍后再试 / too many failed attempts, "
            "try again later", {"Retry-After": str(max(1, result.retry_after))})
    raise _failed()


# ------------------------------------------------------------------ verification
@router.post("/api/v1/owner/verify", summary="权利人身份核验 / verify an owner",
             response_model=OwnerToken, openapi_extra={**_body_doc(VerifyRequest), **AUTH},
             responses=_FAILED_RESPONSES)
async def verify(request: Request) -> Any:
    """Name + ID number + certificate number → a short-lived token for the person's units.
    Every failure (unknown person, wrong name, wrong certificate, malformed body) gets the same
    401 answer; repeated failures lock the identity and the client address (429)."""
    body = await _json_object(request)
    claim = owner.Claim(id_number=owner.clean_input(body.get("id_number")),
                        name=owner.clean_input(body.get("name")),
                        certificate_no=owner.clean_input(body.get("certificate_no")))
    return await run_in_threadpool(_run_verification, request, claim)


@router.post("/api/v1/owner/verify-qr", summary="扫码核验 / verify with the certificate QR",
             response_model=OwnerToken, openapi_extra={**_body_doc(VerifyQrRequest), **AUTH},
             responses=_FAILED_RESPONSES)
async def verify_qr(request: Request) -> Any:
    """Certificate QR token + ID number (the QR alone proves nothing: anyone may scan it)."""
    body = await _json_object(request)
    keys = _keys(request)
    version = certificate.token_version(keys.cipher.lookup_key,
                                        owner.clean_input(body.get("qr_token")))
    claim = owner.Claim(id_number=owner.clean_input(body.get("id_number")),
                        certificate_version=version)
    return await run_in_threadpool(_run_verification, request, claim)


# ------------------------------------------------------------------ my units
OwnerDep = Annotated[Principal, Depends(require(Role.OWNER))]


def _not_found() -> NotFound:
    return NotFound("UNIT_NOT_FOUND", "不动产单元不存在 / unit not found")


def _target(unit_code: str) -> str:
    return unit_code if _UNIT_CODE.match(unit_code) else "invalid"


def _held(request: Request, who: Principal, unit_code: str, action: str) -> None:
    """404 (like an unknown unit) unless the token names the unit and its holder still holds it."""
    keys = _keys(request)
    ok = unit_code in who.units
    if ok:
        with app_state(request).sync_pool.connection() as conn:
            ok = bool(owner.current_holdings(conn, keys.cipher, keys.audit_key, who.subject or "",
                                             [unit_code]))
    if not ok:
        record_sync(request, who, action, _target(unit_code), 0, "not_found")
        raise _not_found()


def _status(who: Principal, status: dict[str, Any]) -> dict[str, Any]:
    return view(who, "unit", {k: status.get(k, False) for k in
                              ("mortgaged", "seized", "pre_noticed", "objected")})


def _summary(who: Principal, rec: owner.UnitRecord) -> dict[str, Any]:
    item = view(who, "unit", rec.unit) if rec.unit else {}
    item.update(view(who, "unit", {"unit_code": rec.unit_code, "seat": rec.seat,
                                   "certificate_no": rec.certificate_no}))
    item["kind"] = "land" if rec.land else "unit"
    if rec.land and rec.parcel:
        item["parcel"] = view(who, "parcel", rec.parcel)
    item["rights"] = [view(who, "right", r.right) for r in rec.rights]
    item["status"] = _status(who, rec.status)
    return item


@router.get("/api/v1/owner/units", summary="我的不动产 / my units and rights")
def my_units(request: Request, who: OwnerDep) -> dict[str, Any]:
    keys = _keys(request)
    with app_state(request).sync_pool.connection() as conn:
        held = owner.current_holdings(conn, keys.cipher, keys.audit_key, who.subject or "",
                                      who.units)
        records = owner.unit_records(conn, keys.cipher, held)
    items = [_summary(who, r) for r in records]
    record_sync(request, who, "owner.units", None, len(items))
    return {"items": items}


@router.get("/api/v1/owner/units/{unit_code}", summary="单元详情 / one of my units")
def my_unit(unit_code: str, request: Request, who: OwnerDep
            ) -> dict[str, Any]:
    _held(request, who, unit_code, "owner.unit.read")
    keys = _keys(request)
    with app_state(request).sync_pool.connection() as conn:
        rec = owner.unit_record(conn, keys.cipher, unit_code)
    if rec is None:
        record_sync(request, who, "owner.unit.read", unit_code, 0, "not_found")
        raise _not_found()
    out = _summary(who, rec)
    out["unit"] = view(who, "unit", rec.unit) if rec.unit else None
    out["parcel"] = view(who, "parcel", rec.parcel) if rec.parcel else None
    out["building"] = view(who, "building", rec.building) if rec.building else None
    out["rights"] = [
        {**view(who, "right", r.right), "detail": view(who, "right_detail", r.detail),
         "parties": [view(who, "party", p) for p in r.parties]}
        for r in rec.rights]
    record_sync(request, who, "owner.unit.read", unit_code, 1)
    return out


# ------------------------------------------------------------------ documents
def _document(request: Request, who: Principal, unit_code: str, kind: str, fmt: str
              ) -> Response:
    action = "owner.document"
    _held(request, who, unit_code, action)
    with app_state(request).sync_pool.connection() as conn:
        if kind == "parcel-map":
            pdf = parcel_map.parcel_map_pdf(conn, unit_code, Role.OWNER)
        else:
            if owner.is_land_unit(unit_code):
                record_sync(request, who, action, f"{unit_code}/{kind}.{fmt}", 0, "not_found")
                raise NotFound("NO_FLOOR_PLAN", "土地单元没有分层分户图 / a land-only unit has no "
                               "floor plan")
            pdf = floor_plan.floor_plan_pdf(conn, unit_code, Role.OWNER)
    content, media = (pdf, "application/pdf") if fmt == "pdf" else (pdf_to_png(pdf),
                                                                     "image/png")
    record_sync(request, who, action, f"{unit_code}/{kind}.{fmt}", 1)
    return Response(content, media_type=media, headers={
        "Content-Disposition": f'inline; filename="{kind}-{unit_code}.{fmt}"',
        "Cache-Control": "private, no-store"})


_DOC_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {
    "application/pdf": {}, "image/png": {}}, "description": "PDF or PNG"}}


@router.get("/api/v1/owner/units/{unit_code}/parcel-map.{fmt}", summary="宗地图 / parcel map",
            response_class=Response, responses=_DOC_RESPONSES)
def parcel_map_document(unit_code: str, fmt: Literal["pdf", "png"], request: Request,
                        who: OwnerDep) -> Response:
    return _document(request, who, unit_code, "parcel-map", fmt)


@router.get("/api/v1/owner/units/{unit_code}/floor-plan.{fmt}",
            summary="分层分户图 / floor plan", response_class=Response,
            responses=_DOC_RESPONSES)
def floor_plan_document(unit_code: str, fmt: Literal["pdf", "png"], request: Request,
                        who: OwnerDep) -> Response:
    return _document(request, who, unit_code, "floor-plan", fmt)


@router.get("/api/v1/owner/units/{unit_code}/certificate-qr.png",
            summary="证书二维码 / certificate QR (一证一码)", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "QR code"}})
def certificate_qr(unit_code: str, request: Request, who: OwnerDep
                   ) -> Response:
    _held(request, who, unit_code, "owner.certificate_qr")
    keys = _keys(request)
    with app_state(request).sync_pool.connection() as conn:
        version = owner.certificate_version(conn, unit_code)
    if version is None:
        record_sync(request, who, "owner.certificate_qr", unit_code, 0, "not_found")
        raise NotFound("NO_CERTIFICATE", "该单元没有现势证书 / no current certificate")
    url = certificate.verification_url(str(request.base_url),
                                       certificate.certificate_token(keys.cipher.lookup_key,
                                                                     version))
    record_sync(request, who, "owner.certificate_qr", unit_code, 1)
    return Response(certificate.qr_png(url), media_type="image/png", headers={
        "Cache-Control": "private, no-store", "X-Verification-URL": url})


# ------------------------------------------------------------------ electronic documents
def _pdf(content: bytes, name: str) -> Response:
    return Response(content, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "private, no-store"})


@router.get("/api/v1/owner/units/{unit_code}/certificate.pdf",
            summary="电子不动产权证书 / the electronic certificate", response_class=Response,
            responses={200: {"content": {"application/pdf": {}},
                             "description": "signed PDF/A"}})
def electronic_certificate(unit_code: str, request: Request, who: OwnerDep) -> Response:
    """The current electronic certificate of the unit's ownership (or land-use) right, sealed
    with the office's signature. A registration certified on paper before gets its electronic
    version on the first request (same number)."""
    action = "owner.certificate"
    _held(request, who, unit_code, action)
    state = app_state(request)
    with state.sync_pool.connection() as conn:
        version = owner.certificate_version(conn, unit_code)
        rec = store.live_for_version(conn, version) if version is not None else None
        if version is not None and rec is None:
            try:
                rec = electronic_copy(conn, state.issuing, version, actor=who.actor)
            except Conflict:          # made by a request of the other holder just now
                rec = store.live_for_version(conn, version)
        if rec is None or rec.status != "current":
            record_sync(request, who, action, unit_code, 0, "not_found")
            raise NotFound("NO_CERTIFICATE", "该单元没有已发证的电子证书 / no issued electronic "
                           "certificate for this unit")
        pdf = store.document(conn, rec.certificate_id)
    record_sync(request, who, action, f"{unit_code}#{rec.serial}", 1)
    return _pdf(pdf, f"certificate-{unit_code}.pdf")


@router.get("/api/v1/owner/units/{unit_code}/query-result.pdf",
            summary="不动产登记信息查询结果 / a signed register query result",
            response_class=Response, responses={200: {"content": {"application/pdf": {}},
                                                       "description": "signed PDF/A"}})
def query_result(unit_code: str, request: Request, who: OwnerDep) -> Response:
    """What the register says about the unit now (natural state, rights, mortgages,
    restrictions), signed, numbered and verifiable by its QR code."""
    _held(request, who, unit_code, "owner.query_result")
    state = app_state(request)
    with state.sync_pool.connection() as conn:
        rec = issue_query_result(conn, state.issuing, unit_code, actor=who.actor)
        pdf = store.document(conn, rec.certificate_id)
    record_sync(request, who, "owner.query_result", f"{unit_code}#{rec.serial}", 1)
    return _pdf(pdf, f"query-result-{unit_code}.pdf")
