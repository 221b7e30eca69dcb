"""Registry staff: 一码关联 — every record linked to one unit code, current and history, and the
documents other departments filed under it (its building, its project).

A plain ``def`` route (decryption and the reused synchronous ``cadastre.query.records`` queries
run in FastAPI's thread pool, on the synchronous pool). Registrars only; county scope applies;
every read is audited, found or not.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.auditing import record_sync
from api.auth import require
from api.routers.documents import unit_documents
from api.routers.public import VARY, may_see
from api.state import app_state
from cadastre.access.pii import PiiCipher
from cadastre.access.principal import Principal, view
from cadastre.access.privacy import Role
from cadastre.codes import validate_unit_code
from cadastre.errors import InvalidInput, NotFound
from cadastre.query.registry import Registration, UnitRegistry, unit_registry

router = APIRouter(prefix="/api/v1/registry", tags=["registry"])

CHINA = timezone(timedelta(hours=8), "CST")   # a date or time without offset is Beijing time
_PARTY_PII = ("name", "id_number", "phone", "address")
Registrar = Annotated[Principal, Depends(require(Role.REGISTRAR))]


class AsOfInvalid(InvalidInput):
    code = "AS_OF_INVALID"


def parse_as_of(value: str | None) -> datetime | None:
    """ISO 8601 date or date-time; without an offset it is Beijing time (UTC+8)."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, tzinfo=CHINA)
        at = datetime.fromisoformat(value)
    except ValueError:
        raise AsOfInvalid(message="as_of 应为 ISO 8601 日期或时间，如 2024-05-01 或 "
                          "2024-05-01T12:00:00+08:00 / as_of must be an ISO 8601 date or "
                          "date-time") from None
    return at if at.tzinfo else at.replace(tzinfo=CHINA)


def _cipher(request: Request) -> PiiCipher:
    return app_state(request).cipher


def _registration(who: Principal, r: Registration) -> dict[str, Any]:
    return {**view(who, "right", r.record), "detail": view(who, "right_detail", r.detail),
            "parties": [view(who, "party", p) for p in r.parties]}


def _body(who: Principal, found: UnitRegistry) -> dict[str, Any]:
    lineage = {
        entity: {side: [view(who, entity, item) for item in items]
                 for side, items in sides.items()}
        for entity, sides in found.lineage.items()
    }
    return {
        "unit_code": found.unit_code,
        "land_code": found.land_code,
        "as_of": found.as_of,
        "unit": view(who, "unit", found.unit) if found.unit else None,
        "building": view(who, "building", found.building) if found.building else None,
        "parcel": view(who, "parcel", found.parcel) if found.parcel else None,
        "records": [_registration(who, r) for r in found.records],
        "land_records": [_registration(who, r) for r in found.land_records],
        "lineage": lineage,
    }


@router.get("/units/{unit_code}",
            summary="一码关联：单元代码下的全部登记记录（现势与历史） / all records linked to a "
                    "unit code, current and history")
def unit_records(
    unit_code: str, request: Request, response: Response, who: Registrar,
    as_of: str | None = Query(None, description="某一时刻的状态（ISO 8601；无时区按北京时间） / "
                              "state at this instant (ISO 8601; no offset = Beijing time)"),
) -> dict[str, Any]:
    errors = validate_unit_code(unit_code)
    if errors:
        raise errors[0]
    at = parse_as_of(as_of)
    if not who.in_scope(unit_code):
        record_sync(request, who, "registry.unit", target=unit_code, outcome="out_of_scope")
        raise NotFound("UNIT_NOT_FOUND", "未找到该不动产单元 / unit not found")
    decrypt = [f for f in _PARTY_PII if may_see(who, "party", f)]
    with app_state(request).sync_pool.connection() as conn:
        found = unit_registry(conn, _cipher(request), unit_code, at, decrypt)
        documents = unit_documents(request, who, conn, unit_code, at) if found else []
        n = len(found.records) + len(found.land_records) if found else 0
        record_sync(request, who, "registry.unit", target=unit_code, result_count=n,
                    outcome="ok" if found else "not_found", conn=conn)
    if found is None:
        raise NotFound("UNIT_NOT_FOUND", "未找到该不动产单元 / unit not found")
    response.headers["Vary"] = VARY
    response.headers["Cache-Control"] = "no-store"
    return {**_body(who, found), "documents": documents}
