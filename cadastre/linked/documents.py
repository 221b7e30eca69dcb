"""Documents other departments file under a code (一码关联): what each type is, where it may be
filed (a unit, a building, a project's parcel), which facts and parties it carries, and the
filing itself: checked completely before anything is written, then one row (plus its parties,
encrypted) in the caller's transaction. The file is stored by content hash by the caller
(``cadastre.store.uploads``) after ``cadastre.linked.files.inspect`` accepted it.

Prices, amounts and parties are personal data: the privacy policy (entity ``document`` and
``party``) lets only registry staff see them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import psycopg

from cadastre.access.idnumber import is_valid_id_number
from cadastre.access.pii import PiiCipher
from cadastre.codes import (
    BUILDING_CODE_LENGTH,
    LAND_ONLY_SUFFIX,
    PARCEL_CODE_LENGTH,
    UNIT_CODE_LENGTH,
    county_of,
    parcel_code_of,
    validate_parcel_code,
    validate_unit_code,
)
from cadastre.errors import InvalidInput, NotFound
from cadastre.register.parties import insert_party
from cadastre.store.uploads import StoredUpload


@dataclass(frozen=True)
class DocType:
    name_zh: str
    name_en: str
    scopes: frozenset[str]                 # unit | building | parcel
    parties: dict[str, int] = field(default_factory=dict)   # role → how many at least
    required: tuple[str, ...] = ()         # facts it must carry
    optional: tuple[str, ...] = ()


_ANY = frozenset({"unit", "building", "parcel"})
_PROJECT = frozenset({"building", "parcel"})
DOC_TYPES: dict[str, DocType] = {
    "project_approval": DocType("项目批准（核准、备案）文件", "project approval", _PROJECT),
    "land_grant_contract": DocType("国有建设用地使用权出让合同", "land grant contract",
                                   frozenset({"parcel"})),
    "planning_permit": DocType("建设工程规划许可证", "construction planning permit", _PROJECT),
    "presale_permit": DocType("商品房预售许可证", "pre-sale permit", _PROJECT,
                              optional=("unit_codes",)),
    "sales_contract": DocType("商品房买卖合同（网签备案）", "sales contract filing (网签备案)",
                              frozenset({"unit"}), {"buyer": 1, "seller": 0}, ("price",)),
    "mortgage_contract": DocType("抵押合同", "mortgage contract", frozenset({"unit"}),
                                 {"lender": 1, "borrower": 1},
                                 ("secured_amount", "debt_start", "debt_end")),
    "tax_paid": DocType("完税证明", "tax-paid certificate", frozenset({"unit"}),
                        {"taxpayer": 0}, optional=("amount",)),
    "completion_acceptance": DocType("竣工验收备案", "completion acceptance filing", _PROJECT),
    "survey_report": DocType("房屋测绘报告", "building survey report", _ANY),
}
FACTS = ("price", "secured_amount", "debt_start", "debt_end", "amount", "unit_codes")
MAX_PERMIT_UNITS = 5000
_BUILDING_CODE = re.compile(r"^\d{12}[GJZ][ABSXCDEFGHWY]\d{5}F\d{4}$")
_TEXT = re.compile(r"^[^\x00-\x1f]{1,100}$")


@dataclass(frozen=True)
class DocumentParty:
    name: str
    id_number: str
    role: str                      # buyer | seller | lender | borrower | taxpayer
    id_type: int = 1               # ZJZL 1 居民身份证 … 8 统一社会信用代码
    party_type: int = 1            # QLRLX 1 个人 2 企业 …


@dataclass(frozen=True)
class DocumentInput:
    doc_type: str
    doc_no: str
    issuer: str
    issued_on: date
    valid_from: date | None = None
    valid_until: date | None = None
    price: Decimal | None = None
    secured_amount: Decimal | None = None
    debt_start: date | None = None
    debt_end: date | None = None
    amount: Decimal | None = None
    unit_codes: tuple[str, ...] = ()
    parties: tuple[DocumentParty, ...] = ()


@dataclass(frozen=True)
class Target:
    """Where a document is filed: the code, its kind and its county."""

    code: str
    kind: str                      # unit | building | parcel
    county: str



def code_kind(code: str) -> tuple[str, str]:
    """(kind, code) of a unit (28), building (24) or parcel (19) code; a land-only unit code
    (…W00000000) stands for its parcel. A malformed code is refused (400)."""
    if len(code) == UNIT_CODE_LENGTH:
        errors = validate_unit_code(code)
        if errors:
            raise errors[0]
        if code.endswith("W" + LAND_ONLY_SUFFIX):
            return "parcel", parcel_code_of(code)
        return "unit", code
    if len(code) == BUILDING_CODE_LENGTH:
        if validate_parcel_code(code[:PARCEL_CODE_LENGTH]) or not _BUILDING_CODE.match(code):
            raise InvalidInput("BUILDING_CODE_INVALID", "幢代码应为宗地代码＋F＋4 位幢号 / "
                               "a building code is the parcel code + F + a 4-digit building "
                               "number")
        return "building", code
    if len(code) == PARCEL_CODE_LENGTH:
        errors = validate_parcel_code(code)
        if errors:
            raise errors[0]
        return "parcel", code
    raise InvalidInput("CODE_INVALID", "应为不动产单元代码（28位）、幢代码（24位）或宗地代码"
                       "（19位） / expected a unit code (28), building code (24) or parcel "
                       "code (19)")


_EXISTS = {"unit": "SELECT 1 FROM cad.unit_current WHERE unit_code = %s",
           "building": "SELECT 1 FROM cad.building_current WHERE building_code = %s",
           "parcel": "SELECT 1 FROM cad.parcel_current WHERE parcel_code = %s"}


def target_of(conn: psycopg.Connection, code: str) -> Target:
    """The current unit, building or parcel ``code`` names: 400 when malformed, 404 when the
    register has no current one."""
    kind, code = code_kind(code)
    if conn.execute(_EXISTS[kind], (code,)).fetchone() is None:
        raise NotFound("UNIT_NOT_FOUND", "无此现势不动产单元、幢或宗地 / no current unit, "
                       "building or parcel with this code")
    return Target(code, kind, county_of(code))


def check(conn: psycopg.Connection, target: Target, doc: DocumentInput) -> None:
    """Every rule of the document's type, before anything is written."""
    spec = DOC_TYPES.get(doc.doc_type)
    if spec is None:
        raise InvalidInput("DOCUMENT_TYPE_UNKNOWN", "未知的文件类型 / unknown document type "
                   f"(one of {', '.join(DOC_TYPES)})")
    if target.kind not in spec.scopes:
        raise InvalidInput("DOCUMENT_SCOPE", f"{spec.name_zh}须挂接在{_scope_zh(spec.scopes)}上 / "
                           f"a {spec.name_en} is filed under a {' or '.join(sorted(spec.scopes))} "
                           f"code")
    for name, value in (("doc_no", doc.doc_no), ("issuer", doc.issuer)):
        if not _TEXT.match(value or "") or not value.strip():
            raise InvalidInput("DOCUMENT_FIELD_INVALID", f"{name} 无效 / invalid {name}")
    if doc.valid_from and doc.valid_until and doc.valid_until < doc.valid_from:
        raise InvalidInput("DOCUMENT_VALIDITY", "有效期止早于有效期起 / "
                           "valid_until is before valid_from")
    allowed = set(spec.required) | set(spec.optional)
    for name in FACTS:
        value = getattr(doc, name)
        if name in spec.required and value in (None, ()):
            raise InvalidInput("DOCUMENT_FIELD_REQUIRED", f"{spec.name_zh}须写明 {name} / "
                               f"a {spec.name_en} needs {name}")
        if name not in allowed and value not in (None, ()):
            raise InvalidInput("DOCUMENT_FIELD_UNKNOWN", f"{spec.name_zh}不含 {name} / "
                               f"a {spec.name_en} does not carry {name}")
    for name in ("price", "secured_amount", "amount"):
        value = getattr(doc, name)
        if value is not None and not (Decimal(0) <= value < Decimal("1e12")):
            raise InvalidInput("DOCUMENT_FIELD_INVALID", f"{name} 无效 / invalid {name}")
    if doc.debt_start and doc.debt_end and doc.debt_end < doc.debt_start:
        raise InvalidInput("DOCUMENT_VALIDITY", "债务履行期限止早于起 / "
                           "debt_end is before debt_start")
    _check_parties(spec, doc.parties)
    if doc.unit_codes:
        _check_permit_units(conn, target, doc.unit_codes)


def _scope_zh(scopes: frozenset[str]) -> str:
    names = {"unit": "不动产单元", "building": "幢", "parcel": "宗地（项目）"}
    return "或".join(names[s] for s in sorted(scopes))


def _check_parties(spec: DocType, parties: Sequence[DocumentParty]) -> None:
    if len(parties) > 20:
        raise InvalidInput("PARTIES_TOO_MANY", "当事人过多 / too many parties")
    for i, p in enumerate(parties, start=1):
        if p.role not in spec.parties:
            roles = ", ".join(spec.parties) or "(none)"
            raise InvalidInput("PARTY_ROLE", f"第 {i} 个当事人的角色不属于该文件 / "
                               f"party {i}: role must be one of {roles}")
        if not p.name.strip() or len(p.name) > 100 or not p.id_number.strip() \
                or len(p.id_number) > 40:
            raise InvalidInput("PARTY_INVALID", f"第 {i} 个当事人的姓名或证件号无效 / "
                               f"party {i}: name or ID number missing or too long")
        if p.id_type == 1 and not is_valid_id_number(p.id_number.strip().upper()):
            raise InvalidInput("PARTY_ID_NUMBER", f"第 {i} 个当事人的身份证号码校验不通过 / "
                               f"party {i}: the ID number fails its check digit")
    for role, least in spec.parties.items():
        if sum(p.role == role for p in parties) < least:
            raise InvalidInput("PARTY_REQUIRED", f"{spec.name_zh}须列明当事人（{role}） / "
                               f"a {spec.name_en} must name its {role}(s)")


def _check_permit_units(conn: psycopg.Connection, target: Target, units: Sequence[str]) -> None:
    if len(units) > MAX_PERMIT_UNITS:
        raise InvalidInput("UNITS_TOO_MANY", "单元清单过长 / too many units in the list")
    for i, code in enumerate(units, start=1):
        if not isinstance(code, str) or validate_unit_code(code) or \
                not code.startswith(target.code):
            raise InvalidInput("UNIT_CODE_INVALID", f"第 {i} 个单元代码无效或不在该幢（宗地）内 / "
                               f"unit code number {i} is invalid or not in this building or "
                               f"parcel")
    known = conn.execute("SELECT count(*) FROM cad.unit_current WHERE unit_code = "
                         "ANY(%s::char(28)[])", (list(set(units)),)).fetchone()
    if known is None or known[0] != len(set(units)):
        raise NotFound("UNIT_NOT_FOUND", "单元清单中有不存在的不动产单元 / the list names a unit "
                       "that is not current")


class DuplicateDocument(InvalidInput):
    code = "DOCUMENT_EXISTS"


def file_document(conn: psycopg.Connection, cipher: PiiCipher, target: Target,
                  doc: DocumentInput, upload: StoredUpload, media_type: str, posted_by: str,
                  api_key_id: uuid.UUID | None = None) -> uuid.UUID:
    """Write the checked document and its parties (in the caller's transaction)."""
    taken = conn.execute(
        "SELECT 1 FROM reg.linked_document WHERE county_code = %s AND doc_type = %s AND "
        "doc_no = %s AND status = 'valid'", (target.county, doc.doc_type, doc.doc_no.strip())
    ).fetchone()
    if taken:
        raise DuplicateDocument(message="该文号的有效文件已存在（请先撤销） / a valid document "
                                "with this number exists (revoke it first)")
    document_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO reg.linked_document (document_id, doc_type, doc_no, issuer, issued_on, "
        "valid_from, valid_until, code, code_kind, county_code, unit_codes, price, "
        "secured_amount, debt_start, debt_end, amount, sha256, size_bytes, media_type, "
        "posted_by, api_key_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "%s::char(28)[], %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (document_id, doc.doc_type, doc.doc_no.strip(), doc.issuer.strip(), doc.issued_on,
         doc.valid_from, doc.valid_until, target.code, target.kind, target.county,
         list(dict.fromkeys(doc.unit_codes)), doc.price, doc.secured_amount, doc.debt_start,
         doc.debt_end, doc.amount, upload.sha256, upload.size, media_type, posted_by,
         api_key_id))
    seq: dict[str, int] = {}
    for p in doc.parties:
        pid = insert_party(conn, cipher, name=p.name, id_number=p.id_number, id_type=p.id_type,
                           party_type=p.party_type)
        seq[p.role] = seq.get(p.role, 0) + 1
        conn.execute("INSERT INTO reg.linked_document_party (document_id, party_id, role, seq) "
                     "VALUES (%s, %s, %s, %s)", (document_id, pid, p.role, seq[p.role]))
    return document_id


def revoke(conn: psycopg.Connection, document_id: uuid.UUID, actor: str,
           api_key_id: uuid.UUID | None, counties: Sequence[str]) -> str:
    """撤销: a document stops counting (a contract filing cancelled by the housing department).
    A key revokes only what it filed; staff within their counties. Returns the code it was
    filed under."""
    row = conn.execute("SELECT code, county_code, api_key_id, status FROM reg.linked_document "
                       "WHERE document_id = %s FOR UPDATE", (document_id,)).fetchone()
    if row is None or (counties and row[1] not in counties) or \
            (api_key_id is not None and row[2] != api_key_id):
        raise NotFound("DOCUMENT_NOT_FOUND", "无此文件 / no such document")
    if row[3] == "revoked":
        raise InvalidInput("DOCUMENT_REVOKED", "文件已撤销 / the document is already revoked")
    conn.execute("UPDATE reg.linked_document SET status = 'revoked', revoked_at = now(), "
                 "revoked_by = %s WHERE document_id = %s", (actor, document_id))
    return str(row[0])
