"""一证一码: the public side of the QR code on certificates, proofs and query results, and the
departments' holder check.

``/verify/c/{token}`` (a page) and ``/api/v1/certificates/{token}`` (JSON) say whether the
document is genuine, current, superseded (by which business, when) or revoked, with the
property's natural attributes and, as images, the parcel map and floor plans it carries
(``/verify/c/{token}/parcel-map.png``, ``floor-plan.png``). Everything shown passes the privacy
policy for the public: never the holder's identity, never the number.

``POST /api/v1/certificates/check``: a department's system (API key) or a registrar asks whether
a certificate number belongs to a holder with a given ID number: yes or no, audited.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from api.auditing import record_sync
from api.auth import require
from api.ratelimit import rate_class
from api.state import app_state
from cadastre.access.principal import PUBLIC, Principal, view
from cadastre.access.privacy import Role
from cadastre.certificates import store, verify
from cadastre.certificates.verify import TokenCheck
from cadastre.documents import floor_plan, parcel_map
from cadastre.documents.render import pdf_to_png
from cadastre.errors import NotFound

router = APIRouter(tags=["certificates"])
AUTH = rate_class("auth")   # tokens and holder checks are what guessing targets: the strict bucket
IMAGE_DPI = 110
_NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def _check(request: Request, token: str) -> TokenCheck:
    state = app_state(request)
    with state.sync_pool.connection() as conn:
        return verify.check_token(conn, state.cipher, token)


# ------------------------------------------------------------------ the public check
_STATUS_TEXT = {
    "valid": ("证书有效：该证照为现势登记。", "Valid: this document is the current registration."),
    "superseded": ("证书已失效：该不动产已办理新的登记（转移、变更或注销）。",
                   "Superseded: a later registration replaced this document."),
    "revoked": ("证书已作废：登记机构已宣布该电子证照作废。",
                "Revoked: the registry has declared this document void."),
    "unknown": ("无法核验：未找到该证书，二维码可能被篡改或伪造。",
                "Unknown: no such certificate; the code may be forged or damaged."),
}
_KIND_TEXT = {"certificate": ("不动产权证书", "real estate title certificate"),
              "proof": ("不动产登记证明", "registration proof"),
              "query_result": ("不动产登记信息查询结果", "register query result")}


def _images(check: TokenCheck) -> list[str]:
    """Which map images the document has (parcel map; floor plans for house units)."""
    if check.status == "unknown" or check.unit_code is None:
        return []
    doc = check.document
    if doc is not None:
        return ([name for name, pages in (("parcel-map", doc.parcel_pages),
                                          ("floor-plan", doc.plan_pages)) if pages])
    return ["parcel-map"] + ([] if check.unit_code[19] == "W" else ["floor-plan"])


def _public_view(check: TokenCheck) -> dict[str, Any]:
    zh, en = _STATUS_TEXT[check.status]
    out: dict[str, Any] = {"status": check.status, "message": f"{zh} / {en}",
                           "certificate": view(PUBLIC, "certificate", check.record) or None,
                           "unit": view(PUBLIC, "unit", check.unit) if check.unit else None,
                           "parcel": view(PUBLIC, "parcel", check.parcel) if check.parcel
                           else None,
                           "images": _images(check)}
    return out


@router.get("/api/v1/certificates/{token}", openapi_extra=AUTH,
            summary="证书核验 / certificate authenticity (public)")
def certificate_json(token: str, request: Request) -> JSONResponse:
    return JSONResponse(jsonable_encoder(_public_view(_check(request, token))),
                        headers=_NO_STORE)


@lru_cache(maxsize=64)
def _document_png(sha256: bytes, pdf: bytes, pages: tuple[int, ...]) -> bytes:
    return pdf_to_png(pdf, IMAGE_DPI, list(pages))


@router.get("/verify/c/{token}/{image}.png", response_class=Response, openapi_extra=AUTH,
            summary="证照附图 / the parcel map or floor plans of a verified document (public)",
            responses={200: {"content": {"image/png": {}}, "description": "PNG"}})
def certificate_image(token: str, image: Literal["parcel-map", "floor-plan"],
                      request: Request) -> Response:
    check = _check(request, token)
    if image not in _images(check):
        raise NotFound("NO_IMAGE", "该证照没有此附图 / this document has no such map")
    state = app_state(request)
    doc, unit_code = check.document, check.unit_code
    assert unit_code is not None
    if doc is not None:      # the pages of the document itself, as issued
        with state.sync_pool.connection() as conn:
            pdf = store.document(conn, doc.certificate_id)
        pages = doc.parcel_pages if image == "parcel-map" else doc.plan_pages
        png = _document_png(doc.pdf_sha256, pdf, pages)
    else:                    # a paper certificate: today's maps, as the public sees them
        render = parcel_map.parcel_map_pdf if image == "parcel-map" else floor_plan.floor_plan_pdf
        with state.sync_pool.connection() as conn:
            png = pdf_to_png(render(conn, unit_code, Role.PUBLIC), IMAGE_DPI)
    return Response(png, media_type="image/png", headers=_NO_STORE)


_PAGE_FIELDS = {
    "unit": (("unit_code", "不动产单元号", "Unit code"), ("seat", "坐落", "Location"),
             ("use", "房屋用途", "Use"), ("building_area", "建筑面积（m²）", "Floor area (m²)"),
             ("inner_area", "套内建筑面积（m²）", "Inner area (m²)"),
             ("floor_no", "所在层", "Floor")),
    "parcel": (("parcel_code", "宗地代码", "Parcel code"), ("seat", "坐落", "Location"),
               ("land_use", "土地用途", "Land use"),
               ("registered_area", "宗地面积（m²）", "Parcel area (m²)")),
}


def _rows(data: dict[str, Any]) -> list[tuple[str, str, object]]:
    from cadastre import labels

    rows: list[tuple[str, str, object]] = []
    for entity in ("unit", "parcel"):
        rec = data.get(entity) or {}
        fields = _PAGE_FIELDS[entity][:1] if entity == "parcel" and data.get("unit") \
            else _PAGE_FIELDS[entity]
        for key, zh, en in fields:
            if rec.get(key) is None:
                continue
            value = rec[key]
            if key == "use":
                value = labels.printed(labels.HOUSE_USE, value)
            elif key == "land_use":
                value = labels.printed(labels.LAND_USE, value)
            rows.append((zh, en, value))
    return rows


def _document_rows(cert: dict[str, Any]) -> list[tuple[str, str, object]]:
    rows: list[tuple[str, str, object]] = []
    if cert.get("kind") in _KIND_TEXT:
        zh, en = _KIND_TEXT[cert["kind"]]
        rows.append(("证照类型", "Document", f"{zh} / {en}"))
    for key, zh, en in (("issued_at", "发证时间", "Issued"),
                        ("superseded_by", "取代它的登记业务号", "Superseded by business"),
                        ("superseded_at", "失效时间", "Superseded at"),
                        ("revoked_at", "作废时间", "Revoked at"),
                        ("as_of", "查询时点", "Register as of"),
                        ("signer", "电子签章", "Sealed by")):
        if cert.get(key):
            value = cert[key]
            rows.append((zh, en, verify.when(value) if hasattr(value, "strftime") else value))
    return rows


@router.get("/verify/c/{token}", response_class=HTMLResponse, openapi_extra=AUTH,
            summary="证书核验页 / certificate verification page (public)")
def certificate_page(token: str, request: Request) -> HTMLResponse:
    from cadastre.documents.render import esc

    check = _check(request, token)
    data = _public_view(check)
    zh, en = _STATUS_TEXT[check.status]
    colour = {"valid": "#1b7a2f", "superseded": "#a86400", "revoked": "#b00020",
              "unknown": "#b00020"}[check.status]
    rows = _document_rows(data["certificate"] or {}) + _rows(data)
    table = "".join(f"<tr><th>{esc(z)}<br><small>{esc(e)}</small></th><td>{esc(v)}</td></tr>"
                    for z, e, v in rows)
    table = f"<table>{table}</table>" if table else ""
    captions = {"parcel-map": "宗地图 / Parcel map", "floor-plan": "分层分户图 / Floor plan"}
    figures = "".join(
        f"<figure><img src=\"{esc(token)}/{name}.png\" alt=\"{esc(captions[name])}\" "
        f"loading=\"lazy\"><figcaption>{esc(captions[name])}</figcaption></figure>"
        for name in data["images"])
    page = f"""<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots"
content="noindex"><title>不动产权证书核验 / Certificate check</title><style>
body {{ font-family: 'Noto Sans CJK SC', sans-serif; max-width: 40rem; margin: 2rem auto;
       padding: 0 1rem; color: #111; }}
.status {{ border-left: 6px solid {colour}; padding: .6rem 1rem; background: #f7f7f7; }}
.status b {{ color: {colour}; font-size: 1.2rem; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 1rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .4rem; text-align: left; vertical-align: top; }}
th {{ width: 40%; font-weight: 600; }} small {{ color: #666; font-weight: 400; }}
figure {{ margin: 1rem 0; }} figure img {{ width: 100%; border: 1px solid #ccc; }}
figcaption {{ color: #444; font-size: .9rem; }}
p.note {{ color: #666; font-size: .85rem; }}
</style></head><body><h1>不动产权证书核验</h1><p>Certificate verification</p>
<div class="status" data-status="{esc(check.status)}"><b>{esc(zh)}</b><br>{esc(en)}</div>
{table}{figures}
<p class="note">本页仅显示不动产的自然状况，不显示权利人信息。/ This page shows the property's
natural attributes only, never who holds it.</p></body></html>"""
    return HTMLResponse(page, headers=_NO_STORE)


# ------------------------------------------------------------------ departments
class HolderCheck(BaseModel):
    certificate_no: str = Field(description="不动产权证书号或证明号 / certificate or proof number",
                                min_length=1, max_length=200)
    id_number: str = Field(description="权利人证件号码 / the holder's ID number", min_length=1,
                           max_length=200)


class HolderAnswer(BaseModel):
    match: bool = Field(description="证号在现势登记中且该证件号码为其权利人 / the number is in "
                        "force and that ID belongs to its holder")


StaffDep = Annotated[Principal, Depends(require(Role.DEPARTMENT, Role.REGISTRAR))]


@router.post("/api/v1/certificates/check", response_model=HolderAnswer, openapi_extra=AUTH,
             summary="证书持有人核验 / does this certificate belong to this ID? (departments)")
def check_holder(body: HolderCheck, request: Request, who: StaffDep) -> dict[str, bool]:
    """Yes or no, nothing more; within the key's counties; every question is audited (the
    unit code when it matches, never the ID number)."""
    state = app_state(request)
    with state.sync_pool.connection() as conn:
        ok, unit_code = verify.holder_matches(conn, state.cipher, body.certificate_no,
                                              body.id_number, who.counties)
    record_sync(request, who, "certificate.check", unit_code, int(ok),
                "match" if ok else "no_match")
    return {"match": ok}
