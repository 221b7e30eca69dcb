"""What an applicant asks for: the units, the parties (identities encrypted at once into
``pii.party``), the right a change or cancellation acts on, and the registration details
(``request``), checked per registration type before anything is stored.

``request`` holds no identities (those are parties); amounts and prices in it are personal data
under the privacy policy like the right details they become.

A combined business (a recipe of parts, ``catalogue.parts``) takes top-level request keys that
apply to every part accepting them, and per-part objects keyed by the part (``{"buyer_mortgage":
{"secured_amount": …}}``); a party may be assigned to one part (``part``), else it takes the role
the recipe gives its case role in each part.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg

from cadastre.access.idnumber import is_valid_id_number
from cadastre.access.pii import PiiCipher
from cadastre.cases.catalogue import BusinessType, Part
from cadastre.codes import UnitCode, validate_unit_code
from cadastre.errors import InvalidInput
from cadastre.register.parties import insert_party

PARTY_ROLES = ("applicant", "holder", "mortgagee", "obligor", "agent")
# case_party role → cad.right_party role (1 权利人, 2 义务人, 4 申请人)
RIGHT_ROLE = {"holder": 1, "mortgagee": 1, "obligor": 2, "applicant": 4}


@dataclass(frozen=True)
class PartyInput:
    name: str
    id_number: str
    role: str = "holder"
    id_type: int = 1              # ZJZL 1 居民身份证 … 8 统一社会信用代码
    party_type: int = 1           # QLRLX 1 个人 2 企业 …
    phone: str | None = None
    address: str | None = None
    share: str | None = None
    co_ownership: int | None = None   # GYFS 0 单独 1 共同 2 按份
    part: str | None = None           # the part of a combined case it belongs to (None: all)


@dataclass(frozen=True)
class PartyLink:
    """A party already in ``pii.party`` (named by a filed document) joining a case."""

    party_id: uuid.UUID
    role: str
    part: str | None = None


@dataclass(frozen=True)
class Application:
    business_type: int
    unit_codes: tuple[str, ...]
    parties: tuple[PartyInput, ...] = ()
    target_right_id: uuid.UUID | None = None
    request: Mapping[str, Any] = field(default_factory=dict)
    channel: str = "window"
    materials: tuple[str, ...] = ()      # codes of the materials received
    linked: tuple[PartyLink, ...] = ()   # parties taken from filed documents


# request keys per registration type: name → parser
def _date(v: Any) -> str:
    try:
        return date.fromisoformat(str(v)).isoformat()
    except ValueError:
        raise ValueError("date") from None


def _amount(v: Any) -> str:
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        raise ValueError("amount") from None
    if not d.is_finite() or d < 0 or d >= Decimal("1e12"):
        raise ValueError("amount")
    return str(round(d, 2))


def _small(lo: int, hi: int):  # type: ignore[no-untyped-def]
    def parse(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int | str) or not str(v).isdigit():
            raise ValueError("integer")
        n = int(v)
        if not lo <= n <= hi:
            raise ValueError("range")
        return n
    return parse


def _text(limit: int):  # type: ignore[no-untyped-def]
    def parse(v: Any) -> str:
        if not isinstance(v, str) or not v.strip() or len(v) > limit or "\x00" in v:
            raise ValueError("text")
        return v.strip()
    return parse


def _unit(v: Any) -> str:
    if not isinstance(v, str) or validate_unit_code(v):
        raise ValueError("unit code")
    return v


_COMMON = {"reason": _text(200), "note": _text(500)}
_OWNERSHIP = {"transaction_price": _amount, "right_start": _date, "right_end": _date,
              "land_use_start": _date, "land_use_end": _date, "land_area": _amount}
_MORTGAGE = {"mortgage_type": _small(1, 2), "property_kind": _small(1, 7),
             "secured_amount": _amount, "max_amount": _amount, "debt_start": _date,
             "debt_end": _date, "scope": _text(200)}
_PRE_NOTICE = {"price": _amount, "secured_amount": _amount}
_SEIZURE = {"action": lambda v: _choice(v, ("seize", "release")), "authority": _text(100),
            "seizure_type": _small(1, 5), "document": _text(100), "document_no": _text(100),
            "seizure_start": _date, "seizure_end": _date, "scope": _text(200),
            "release_document_no": _text(100)}
_OBJECTION = {"action": lambda v: _choice(v, ("register", "cancel")), "matter": _text(500),
              "cancelled_reason": _text(200)}
_EASEMENT = {"dominant_unit_code": _unit, "content": _text(500), "easement_start": _date,
             "easement_end": _date}


def _choice(v: Any, options: tuple[str, ...]) -> str:
    if v not in options:
        raise ValueError("choice")
    return str(v)


def _changes(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict) or not v or len(v) > 20:
        raise ValueError("changes")
    return {str(k)[:40]: v[k] for k in v}


def request_fields(bt: BusinessType) -> dict[str, Any]:
    """The request keys ``bt`` accepts, with their parsers."""
    kinds = set(bt.right_kinds)
    fields: dict[str, Any] = dict(_COMMON)
    if bt.registration_type in ("change", "correction"):
        fields["changes"] = _changes
    if kinds & {"ownership", "land_use"}:
        fields.update(_OWNERSHIP)
    if "mortgage" in kinds:
        fields.update(_MORTGAGE)
    if bt.registration_type == "pre_notice":
        fields.update(_PRE_NOTICE)
        fields.update(_MORTGAGE)
    if "seizure" in kinds:
        fields.update(_SEIZURE)
    if "objection" in kinds:
        fields.update(_OBJECTION)
    if "easement" in kinds:
        fields.update(_EASEMENT)
    if bt.registration_type == "certificate_replacement":
        fields["replacement"] = lambda v: _choice(v, ("lost", "damaged", "renewal"))
    return fields


def _clean(fields: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in request.items():
        parse = fields.get(key)
        if parse is None:
            raise _unknown(key)
        try:
            out[key] = parse(value)
        except ValueError:
            raise InvalidInput("REQUEST_FIELD_INVALID", f"申请字段 {key} 的值无效 / invalid "
                               f"value for {key}") from None
    return out


def _unknown(key: str) -> InvalidInput:
    return InvalidInput("REQUEST_FIELD_UNKNOWN", "该业务不接受此申请字段 / this business does "
                        f"not take the field {key if key.isidentifier() else '?'}")


def _target(v: Any) -> str:
    try:
        return str(uuid.UUID(str(v)))
    except ValueError:
        raise ValueError("uuid") from None


def clean_request(bt: BusinessType, request: Mapping[str, Any], parts: Sequence[Part] = ()
                  ) -> dict[str, Any]:
    """The request with every value parsed; unknown keys and bad values refused by name. For a
    combined business: a top-level key must be taken by some part, a part's own object only
    holds what that part takes (and ``target_right_id``, the right it acts on)."""
    if len(request) > 40:
        raise InvalidInput("REQUEST_INVALID", "申请内容过多 / too many request fields")
    if not parts:
        return _clean(request_fields(bt), request)
    by_key = {p.key: p for p in parts}
    out: dict[str, Any] = {}
    for key, value in request.items():
        if key in by_key:
            if not isinstance(value, Mapping) or len(value) > 40:
                raise InvalidInput("REQUEST_FIELD_INVALID", f"申请字段 {key} 应为对象 / {key} "
                                   "must be an object")
            fields = {**request_fields(by_key[key].business), "target_right_id": _target}
            out[key] = _clean(fields, value)
            continue
        takers = [p for p in parts if key in request_fields(p.business)]
        if not takers:
            raise _unknown(key)
        out.update(_clean(request_fields(takers[0].business), {key: value}))
    return out


def part_request(request: Mapping[str, Any], part: Part) -> dict[str, Any]:
    """What ``part`` of a combined case is asked: the top-level keys it takes, then its own."""
    fields = request_fields(part.business)
    own = request.get(part.key)
    return {**{k: v for k, v in request.items() if k in fields},
            **(dict(own) if isinstance(own, Mapping) else {})}


def check_units(unit_codes: Sequence[str], limit: int = 50) -> tuple[str, ...]:
    if not unit_codes or len(unit_codes) > limit:
        raise InvalidInput("UNITS_REQUIRED", f"须指定 1 至 {limit} 个不动产单元 / one to {limit} "
                           "units")
    bad = [i for i, c in enumerate(unit_codes)
           if not isinstance(c, str) or validate_unit_code(c)]
    if bad:
        raise InvalidInput("UNIT_CODE_INVALID", f"第 {bad[0] + 1} 个不动产单元代码无效 / unit "
                           f"code number {bad[0] + 1} is not a valid unit code")
    counties = {UnitCode.parse(c).parcel.county for c in unit_codes}
    if len(counties) > 1:
        raise InvalidInput("UNITS_ONE_COUNTY", "一件申请的单元须属同一县区 / the units of one "
                           "application must lie in one county")
    return tuple(dict.fromkeys(unit_codes))


def check_parties(parties: Sequence[PartyInput], part_keys: Sequence[str] = ()) -> None:
    if len(parties) > 20:
        raise InvalidInput("PARTIES_TOO_MANY", "申请人过多 / too many parties")
    for i, p in enumerate(parties, start=1):
        if p.part is not None and p.part not in part_keys:
            parts = ", ".join(part_keys) or "—"
            raise InvalidInput("PARTY_PART", f"第 {i} 个当事人所属的部分不在该业务中 / party {i}: "
                               f"not a part of this business ({parts})")
        if p.role not in PARTY_ROLES:
            raise InvalidInput("PARTY_ROLE", f"第 {i} 个当事人的角色无效 / party {i}: role "
                               f"must be one of {', '.join(PARTY_ROLES)}")
        if not p.name.strip() or len(p.name) > 100 or not p.id_number.strip() \
                or len(p.id_number) > 40:
            raise InvalidInput("PARTY_INVALID", f"第 {i} 个当事人的姓名或证件号无效 / party "
                               f"{i}: name or ID number missing or too long")
        if p.id_type == 1 and not is_valid_id_number(p.id_number.strip().upper()):
            raise InvalidInput("PARTY_ID_NUMBER", f"第 {i} 个当事人的身份证号码校验不通过 / "
                               f"party {i}: the ID number fails its check digit")


def store_parties(conn: psycopg.Connection, cipher: PiiCipher, case_id: uuid.UUID,
                  parties: Sequence[PartyInput], linked: Sequence[PartyLink] = ()) -> None:
    """Encrypt each party into ``pii.party`` and link it, and the already stored ``linked``
    parties, to the case."""
    rows = [(insert_party(conn, cipher, name=p.name, id_number=p.id_number, id_type=p.id_type,
                          party_type=p.party_type, phone=p.phone, address=p.address),
             p.role, p.share, p.co_ownership, p.part) for p in parties]
    rows += [(link.party_id, link.role, None, None, link.part) for link in linked]
    seq_by_role: dict[tuple[str, str | None], int] = {}
    for party_id, role, share, co_ownership, part in rows:
        seq = seq_by_role[(role, part)] = seq_by_role.get((role, part), 0) + 1
        conn.execute("INSERT INTO reg.case_party (case_id, party_id, role, seq, share, "
                     "co_ownership, part) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                     (case_id, party_id, role, seq, share, co_ownership, part))
