"""一码关联 documents: other departments file documents under a unit, building or project code
with their API key (scoped to counties as every key); registrars file scans at the window, list
a unit's documents, download a file and revoke. Every call is audited.

Checks run before anything is stored, in this order: the code's form (400), the caller's
counties (403), the document's facts and the code's existence (400/404), the file (400: empty,
not PDF/PNG/JPEG, damaged, encrypted, a PDF with JavaScript; 413 beyond the size limit).
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, ValidationError

from api.auditing import record_sync
from api.auth import Forbidden, require
from api.routers.public import may_see
from api.state import app_state
from cadastre.access import privacy
from cadastre.access.principal import Principal, view
from cadastre.access.privacy import Role
from cadastre.errors import InvalidInput, NotFound
from cadastre.linked import documents as docs
from cadastre.linked.filing import Filed, documents_dir, file_upload
from cadastre.linked.reads import for_unit

router = APIRouter(prefix="/api/v1", tags=["documents"])
Filer = Annotated[Principal, Depends(require(Role.DEPARTMENT, Role.REGISTRAR))]
Registrar = Annotated[Principal, Depends(require(Role.REGISTRAR))]


class PartyMeta(BaseModel):
    name: str = Field(max_length=100)
    id_number: str = Field(max_length=40)
    role: Literal["buyer", "seller", "lender", "borrower", "taxpayer"]
    id_type: int = Field(1, ge=1, le=99)
    party_type: int = Field(1, ge=1, le=99)


class DocumentMeta(BaseModel):
    """What the department states about the document (the ``meta`` form field, JSON)."""

    doc_type: Literal["project_approval", "land_grant_contract", "planning_permit",
                      "presale_permit", "sales_contract", "mortgage_contract", "tax_paid",
                      "completion_acceptance", "survey_report"]
    doc_no: str = Field(min_length=1, max_length=64, description="文号 / 备案号")
    issuer: str = Field(min_length=1, max_length=100, description="出具机关")
    issued_on: date
    valid_from: date | None = None
    valid_until: date | None = None
    price: Decimal | None = Field(None, ge=0, lt=Decimal("1e12"), description="成交价（万元）")
    secured_amount: Decimal | None = Field(None, ge=0, lt=Decimal("1e12"))
    debt_start: date | None = None
    debt_end: date | None = None
    amount: Decimal | None = Field(None, ge=0, lt=Decimal("1e12"))
    unit_codes: list[str] = Field(default_factory=list, max_length=docs.MAX_PERMIT_UNITS)
    parties: list[PartyMeta] = Field(default_factory=list, max_length=20)

    def domain(self) -> docs.DocumentInput:
        data = self.model_dump()
        data["unit_codes"] = tuple(self.unit_codes)
        data["parties"] = tuple(docs.DocumentParty(**p.model_dump()) for p in self.parties)
        return docs.DocumentInput(**data)


def _meta(raw: str) -> DocumentMeta:
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidInput("DOCUMENT_META_INVALID", "文件信息（meta）应为 JSON / the document's "
                           "meta must be JSON") from None
    try:
        return DocumentMeta.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]}))
        raise InvalidInput("DOCUMENT_META_INVALID", "文件信息（meta）无效 / the document's meta "
                           f"is invalid: {fields or 'meta'}") from None


def _key_id(who: Principal) -> uuid.UUID | None:
    return uuid.UUID(who.subject) if who.role is Role.DEPARTMENT and who.subject else None


@router.post("/units/{code}/documents", status_code=201,
             summary="一码关联：挂接部门文件 / file a document under a unit, building or "
                     "project code")
def file_document(request: Request, code: str, who: Filer,
                  file: UploadFile = File(..., description="PDF、PNG 或 JPEG"),
                  meta: str = Form(..., max_length=400_000,
                                   description="DocumentMeta as JSON")) -> dict[str, Any]:
    state = app_state(request)
    kind, code = docs.code_kind(code)
    if not who.in_scope(code):
        record_sync(request, who, "document.file", target=code, outcome="out_of_scope")
        raise Forbidden("UNIT_OUT_OF_SCOPE", "该代码不在本密钥授权的县区内 / the code lies "
                        "outside the counties of your key")
    doc = _meta(meta).domain()

    def audited(conn: Any, filed: Filed) -> None:
        record_sync(request, who, "document.file", target=filed.target.code, result_count=1,
                    conn=conn)

    with state.sync_pool.connection() as conn:
        filed = file_upload(conn, state.cipher, state.settings.data_dir, code, doc, file.file,
                            max_bytes=state.settings.api.document_max_bytes,
                            posted_by=who.actor, api_key_id=_key_id(who), on_filed=audited)
    receipt = {"document_id": str(filed.document_id), "doc_type": doc.doc_type,
               "doc_no": doc.doc_no, "code": filed.target.code, "code_kind": kind,
               "status": "valid", "sha256": filed.upload.sha256,
               "size_bytes": filed.upload.size, "media_type": filed.media_type}
    return privacy.apply("document_receipt", who.role, receipt)


def document_views(who: Principal, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Documents as ``who`` may see them (parties by the party policy)."""
    return [{**view(who, "document", d),
             "parties": [view(who, "party", p) for p in d.get("parties", ())]}
            for d in records]


def unit_documents(request: Request, who: Principal, conn: Any, unit_code: str,
                   at: datetime | None = None) -> list[dict[str, Any]]:
    """A unit's documents for the registry views (decrypting only what the policy shows)."""
    decrypt = [f for f in ("name", "id_number") if may_see(who, "party", f)]
    day = (at or datetime.now().astimezone()).date()
    return document_views(who, for_unit(conn, app_state(request).cipher, unit_code, day,
                                        decrypt, posted_before=at))


@router.get("/units/{code}/documents", summary="单元的部门文件 / a unit's filed documents")
def list_documents(request: Request, code: str, who: Registrar) -> dict[str, Any]:
    kind, code = docs.code_kind(code)
    if kind != "unit" or not who.in_scope(code):
        raise NotFound("UNIT_NOT_FOUND", "未找到该不动产单元 / unit not found")
    with app_state(request).sync_pool.connection() as conn:
        items = unit_documents(request, who, conn, code)
        record_sync(request, who, "document.list", target=code, result_count=len(items),
                    conn=conn)
    return {"unit_code": code, "items": items}


def _document(conn: Any, document_id: str, who: Principal) -> tuple[uuid.UUID, str, str, str]:
    try:
        did = uuid.UUID(document_id)
    except ValueError:
        raise NotFound("DOCUMENT_NOT_FOUND", "无此文件 / no such document") from None
    row = conn.execute("SELECT sha256, media_type, code, county_code FROM reg.linked_document "
                       "WHERE document_id = %s", (did,)).fetchone()
    if row is None or (who.counties and row[3] not in who.counties):
        raise NotFound("DOCUMENT_NOT_FOUND", "无此文件 / no such document")
    return did, row[0], row[1], row[2]


@router.get("/documents/{document_id}/file", summary="下载文件 / the document's file",
            response_class=FileResponse)
def document_file(request: Request, document_id: str, who: Registrar) -> FileResponse:
    state = app_state(request)
    with state.sync_pool.connection() as conn:
        did, sha, media, code = _document(conn, document_id, who)
        record_sync(request, who, "document.file.read", target=code, result_count=1, conn=conn)
    path = documents_dir(state.settings.data_dir) / sha
    if not path.is_file():
        raise NotFound("DOCUMENT_FILE_MISSING", "文件缺失 / the file is missing from the store")
    ext = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}[media]
    return FileResponse(path, media_type=media, filename=f"{did}.{ext}",
                        headers={"Cache-Control": "no-store"})


@router.post("/documents/{document_id}/revoke", summary="撤销 / revoke a document")
def revoke_document(request: Request, document_id: str, who: Filer) -> dict[str, Any]:
    with app_state(request).sync_pool.connection() as conn, conn.transaction():
        try:
            did = uuid.UUID(document_id)
        except ValueError:
            raise NotFound("DOCUMENT_NOT_FOUND", "无此文件 / no such document") from None
        code = docs.revoke(conn, did, who.actor, _key_id(who), who.counties)
        record_sync(request, who, "document.revoke", target=code, result_count=1, conn=conn)
    return privacy.apply("document_receipt", who.role,
                         {"document_id": str(did), "code": code, "status": "revoked"})
