"""登簿: what a case writes into the register, planned then applied in the caller's transaction.

``plan`` reads the register (locking the rows it depends on), applies the business rules and
returns the operations (close a right, enter a right, continue a right in a new version); it
writes nothing, so acceptance runs it as a pre-check. ``apply`` performs a plan under one change
set (kind ``registration``, business number = the case number) and reserves the certificate or
proof numbers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from cadastre.cases import rules
from cadastre.cases.application import RIGHT_ROLE
from cadastre.cases.catalogue import BusinessType
from cadastre.cases.numbers import Office, certificate_number
from cadastre.cases.rules import violation
from cadastre.codes import UnitCode
from cadastre.register import rights as reg
from cadastre.register.rights import CurrentRight, Holder

QLLX = {"ownership": 4, "land_use": 3, "mortgage": 23, "easement": 19, "seizure": 99,
        "objection": 99}


@dataclass(frozen=True)
class CaseParty:
    party_id: uuid.UUID
    role: str
    seq: int
    share: str | None = None
    co_ownership: int | None = None
    part: str | None = None       # the part of a combined case it belongs to (None: all)

    def holder(self, role: int | None = None) -> Holder:
        return Holder(self.party_id, role or RIGHT_ROLE[self.role], self.seq, self.share,
                      self.co_ownership)


@dataclass(frozen=True)
class CaseFacts:
    case_id: uuid.UUID
    case_no: str
    business: BusinessType
    unit_codes: tuple[str, ...]
    target_right_id: uuid.UUID | None
    request: dict[str, Any]
    parties: tuple[CaseParty, ...]

    def holders(self, *roles: str) -> list[Holder]:
        return [p.holder(1) for p in self.parties if p.role in roles]

    def of_role(self, role: str, as_role: int) -> list[Holder]:
        return [p.holder(as_role) for p in self.parties if p.role == role]

    @property
    def reason(self) -> str:
        return str(self.request.get("reason") or self.business.name_zh)


@dataclass(frozen=True)
class Enter:
    kind: str
    unit_code: str
    registration_type: int
    right_type: int
    holders: tuple[Holder, ...]
    detail: dict[str, Any]
    certificate: str | None = None          # 'certificate' | 'proof' | None
    right_start: Any = None
    right_end: Any = None


@dataclass(frozen=True)
class Close:
    right: CurrentRight
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Continue:
    right: CurrentRight
    registration_type: int
    record: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    holders: tuple[Holder, ...] | None = None
    certificate: str | None = None


Op = Enter | Close | Continue


@dataclass(frozen=True)
class EntryResult:
    change_id: int
    version_ids: tuple[int, ...]
    certificate_nos: tuple[str, ...]
    closed_right_ids: tuple[uuid.UUID, ...]
    closed_version_ids: tuple[int, ...] = ()
    entered_kinds: tuple[str, ...] = ()


def _pick(request: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: request[k] for k in keys if k in request}


def _need(facts: CaseFacts, holders: Sequence[Holder]) -> tuple[Holder, ...]:
    if not holders:
        raise violation("HOLDER_REQUIRED")
    return tuple(holders)


def _cert(kind: str) -> str:
    return "certificate" if kind in ("ownership", "land_use") else "proof"


# ------------------------------------------------------------------ per registration type
def _first(conn: psycopg.Connection, f: CaseFacts, unit: str, cur: list[CurrentRight]
           ) -> list[Op]:
    kind = f.business.right_kinds[0]
    bt = f.business
    if kind in ("ownership", "land_use"):
        if any(r.kind == kind for r in cur):
            raise violation("RIGHT_EXISTS", unit)
        detail = (_unit_detail(conn, unit) if kind == "ownership"
                  else _land_detail(conn, unit))
        detail.update(_pick(f.request, "transaction_price", "land_use_start", "land_use_end",
                            "land_area"))
        return [Enter(kind, unit, bt.djlx, QLLX[kind], _need(f, f.holders("holder")), detail,
                      "certificate", f.request.get("right_start"),
                      f.request.get("right_end") or f.request.get("land_use_end"))]
    if kind == "mortgage":
        rules.require_not_seized(cur)
        base = [r for r in cur if r.kind in ("ownership", "land_use")]
        if not base:
            raise violation("BASE_RIGHT_MISSING", unit)
        detail = _mortgage_detail(f, unit)
        obligors = tuple(f.of_role("obligor", 2)) or tuple(
            Holder(p, 2, i) for i, p in enumerate(base[-1].holders, start=1))
        lenders = _need(f, f.holders("mortgagee", "holder"))
        fulfilled = rules.lenders_notices(conn, cur, [h.party_id for h in lenders])
        return [*(Close(n) for n in fulfilled),      # 预告登记转本登记
                Enter("mortgage", unit, bt.djlx, 23, lenders + obligors, detail, "proof",
                      detail.get("debt_start"), detail.get("debt_end"))]
    if kind == "easement":
        dominant = f.request.get("dominant_unit_code")
        content = f.request.get("content")
        if not dominant or not content:
            raise violation("DETAIL_REQUIRED", "dominant_unit_code, content")
        rules.require_units_current(conn, [dominant])
        detail = {"servient_unit_code": unit, "dominant_unit_code": dominant,
                  "content": content, **_pick(f.request, "easement_start", "easement_end")}
        return [Enter("easement", unit, bt.djlx, 19, _need(f, f.holders("holder")), detail,
                      "proof", detail.get("easement_start"), detail.get("easement_end"))]
    raise violation("DETAIL_REQUIRED", kind)


def _change(conn: psycopg.Connection, f: CaseFacts, unit: str, cur: list[CurrentRight]
            ) -> list[Op]:
    """A change keeps the right (new version): new holders and/or new obligors replace the old
    ones when the case names them (带押过户: the buyer becomes the mortgagor), else all parties
    are copied."""
    kind = f.business.right_kinds[0]
    target = rules.single([r for r in cur if r.kind == kind], f.target_right_id)
    changes = dict(f.request.get("changes") or {})
    detail, record = _split_changes(target, changes)
    holders = f.holders("holder", "mortgagee")
    obligors = f.of_role("obligor", 2)
    parties = None
    if holders or obligors:
        parties = (tuple(holders) or tuple(Holder(p, 1, i) for i, p in
                                           enumerate(target.holders, start=1))) \
            + (tuple(obligors) or tuple(Holder(p, 2, i) for i, p in
                                        enumerate(target.obligors, start=1)))
    return [Continue(target, f.business.djlx, record, detail, parties, _cert(kind))]


def _transfer(conn: psycopg.Connection, f: CaseFacts, unit: str, cur: list[CurrentRight]
              ) -> list[Op]:
    kind = f.business.right_kinds[0]
    target = rules.single([r for r in cur if r.kind == kind], f.target_right_id)
    new_holders = _need(f, f.holders("holder", "mortgagee"))
    ops: list[Op] = []
    detail = dict(target.detail)
    if kind in ("ownership", "land_use"):
        rules.require_not_seized(cur)
        fulfilled = rules.require_no_other_buyer(conn, cur, [h.party_id for h in new_holders])
        ops += [Close(n) for n in fulfilled]     # 预告登记 fulfilled by the transfer
        detail.update(_pick(f.request, "transaction_price"))
    holders = new_holders + tuple(Holder(p, 2, i) for i, p in enumerate(target.obligors, 1))
    ops += [Close(target),
            Enter(kind, unit, f.business.djlx, target.right_type, holders, detail, _cert(kind))]
    return ops


def _cancellation(conn: psycopg.Connection, f: CaseFacts, unit: str,
                  cur: list[CurrentRight]) -> list[Op]:
    kind = f.business.right_kinds[0]
    target = rules.single([r for r in cur if r.kind == kind], f.target_right_id)
    if kind in ("ownership", "land_use"):
        rules.require_not_seized(cur)
        if any(r.kind == "mortgage" for r in cur):
            raise violation("MORTGAGE_CURRENT", unit)
    return [Close(target),
            Enter("cancellation", unit, f.business.djlx, target.right_type,
                  tuple(f.holders("applicant")),
                  {"cancelled_right_id": target.right_id, "reason": f.reason,
                   "cancelled_at": None})]


def _pre_notice(conn: psycopg.Connection, f: CaseFacts, unit: str, cur: list[CurrentRight]
                ) -> list[Op]:
    rules.require_not_seized(cur)
    bt = f.business
    ops: list[Op] = []
    owned = any(r.kind == "ownership" for r in cur)
    purchase = rules.purchase_notices(cur)
    if bt.seq == 13:
        if purchase:
            raise rules.notice_conflict(purchase[0])
        buyers = _need(f, f.holders("holder"))
        sellers = tuple(f.of_role("obligor", 2)) or tuple(
            Holder(p, 2, i) for r in cur if r.kind == "ownership"
            for i, p in enumerate(r.holders, start=1))
        ops.append(Enter("pre_notice", unit, bt.djlx, 4, buyers + sellers,
                         {"notice_kind": 2 if owned else 1,
                          **_pick(f.request, "price")} | _house_use(conn, unit), "proof"))
    if bt.seq == 14:
        if not purchase:
            raise violation("BASE_RIGHT_MISSING", unit)
        buyers = tuple(Holder(p, 2, i) for i, p in enumerate(purchase[0].holders, 1))
        bank = _need(f, [p.holder(1) for p in f.parties if p.role == "mortgagee"])
        amount = f.request.get("secured_amount")
        ops.append(Enter("pre_notice", unit, bt.djlx, 23, bank + buyers,
                         {"notice_kind": 4 if owned else 3, "price": amount}
                         | _house_use(conn, unit), "proof"))
    return ops


def _correction(conn: psycopg.Connection, f: CaseFacts, unit: str, cur: list[CurrentRight]
                ) -> list[Op]:
    kinds = set(f.business.right_kinds)
    target = rules.single([r for r in cur if r.kind in kinds], f.target_right_id)
    detail, record = _split_changes(target, dict(f.request.get("changes") or {}))
    holders = f.holders("holder", "mortgagee")
    return [Continue(target, f.business.djlx, record, detail,
                     tuple(holders) if holders else None, None)]


def _objection(conn: psycopg.Connection, f: CaseFacts, unit: str, cur: list[CurrentRight]
               ) -> list[Op]:
    if f.request.get("action") == "cancel":
        target = rules.single([r for r in cur if r.kind == "objection"], f.target_right_id)
        return [Close(target, {"cancelled_reason": f.request.get("cancelled_reason") or f.reason,
                               "cancelled_at": "now"})]
    matter = f.request.get("matter")
    if not matter:
        raise violation("DETAIL_REQUIRED", "matter")
    return [Enter("objection", unit, f.business.djlx, 99,
                  _need(f, f.of_role("applicant", 4) or f.of_role("holder", 4)),
                  {"matter": matter}, "proof")]


def _seizure(conn: psycopg.Connection, f: CaseFacts, unit: str, cur: list[CurrentRight]
             ) -> list[Op]:
    r = f.request
    if r.get("action") == "release":
        target = rules.single([x for x in cur if x.kind == "seizure"], f.target_right_id)
        return [Close(target, {"release_document_no": r.get("release_document_no"),
                               "released_at": "now"})]
    if not r.get("authority"):
        raise violation("DETAIL_REQUIRED", "authority")
    seizure_type = r.get("seizure_type", 1)
    if seizure_type == 1 and any(x.kind == "seizure" for x in cur):
        seizure_type = 2                          # 轮候查封: a seizure is already registered
    detail = {"seizure_type": seizure_type, **_pick(r, "authority", "document", "document_no",
                                                    "seizure_start", "seizure_end", "scope")}
    return [Enter("seizure", unit, f.business.djlx, 99, (), detail, None,
                  r.get("seizure_start"), r.get("seizure_end"))]


def _replacement(conn: psycopg.Connection, f: CaseFacts, unit: str, cur: list[CurrentRight]
                 ) -> list[Op]:
    kinds = set(f.business.right_kinds)
    target = rules.single([r for r in cur if r.kind in kinds and r.certificate_no],
                          f.target_right_id)
    note = {"lost": "补证（遗失）", "damaged": "换证（损坏）"}.get(
        str(f.request.get("replacement")), "换证")
    return [Continue(target, f.business.djlx, {"remark": note}, {}, None, _cert(target.kind))]


PLANNERS: dict[str, Callable[[psycopg.Connection, CaseFacts, str, list[CurrentRight]],
                             list[Op]]] = {
    "first": _first, "change": _change, "transfer": _transfer,
    "cancellation": _cancellation, "pre_notice": _pre_notice, "correction": _correction,
    "objection": _objection, "seizure": _seizure,
    "certificate_replacement": _replacement,
}


def plan(conn: psycopg.Connection, facts: CaseFacts, lock: bool = True) -> list[Op]:
    """The operations 登簿 of ``facts`` would perform; raises ``RuleViolation`` when the law
    refuses them. Locks the units' current rights when ``lock``."""
    planner = PLANNERS.get(facts.business.registration_type)
    if planner is None:
        return []                     # 查询, 房屋交易管理: nothing to write
    rules.require_units_current(conn, facts.unit_codes)
    ops: list[Op] = []
    for unit in facts.unit_codes:
        cur = reg.current(conn, [unit], lock=lock)
        ops += planner(conn, facts, unit, cur)
    return ops


def apply(conn: psycopg.Connection, facts: CaseFacts, ops: Sequence[Op], *, change: int,
          at: datetime, office: Office, registrar: str) -> EntryResult:
    """Perform ``ops`` (in the caller's transaction) at instant ``at``."""
    versions: list[int] = []
    certs: list[str] = []
    closed: list[uuid.UUID] = []
    closed_versions: list[int] = []
    kinds: list[str] = []

    def number(kind: str | None) -> str | None:
        if kind is None:
            return None
        no = certificate_number(conn, office, at.year, proof=(kind == "proof"))
        certs.append(no)
        return no

    for op in ops:
        if isinstance(op, Close):
            values = {k: (at if v == "now" else v) for k, v in op.detail.items()}
            reg.close(conn, op.right, change, at, values)
            closed.append(op.right.right_id)
            closed_versions.append(op.right.version_id)
        elif isinstance(op, Continue):
            record = dict(op.record)
            cert = number(op.certificate)
            if cert:
                record["certificate_no"] = cert
            closed_versions.append(op.right.version_id)
            kinds.append(op.right.kind)
            versions.append(reg.continue_version(
                conn, op.right, change=change, at=at, business_no=facts.case_no,
                registration_type=op.registration_type, record_values=record,
                detail_values=op.detail, holders=op.holders))
        else:
            detail = {k: (at if v is None and k == "cancelled_at" else v)
                      for k, v in op.detail.items()}
            kinds.append(op.kind)
            versions.append(reg.enter(
                conn, change=change, at=at, kind=op.kind, unit_code=op.unit_code,
                business_no=facts.case_no, registration_type=op.registration_type,
                right_type=op.right_type, holders=op.holders, detail_values=detail,
                reason=facts.reason, certificate_no=number(op.certificate),
                office=office.name, registrar=registrar, right_start=op.right_start,
                right_end=op.right_end))
    return EntryResult(change, tuple(versions), tuple(certs), tuple(closed),
                       tuple(closed_versions), tuple(kinds))


# ------------------------------------------------------------------ helpers
def _unit_detail(conn: psycopg.Connection, unit: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT u.use, u.building_area, u.inner_area, u.shared_area, u.floor_no::text, "
        "b.floors_total, b.structure, u.house_nature FROM cad.unit u "
        "LEFT JOIN cad.building b ON b.building_code = u.building_code AND b.valid_to IS NULL "
        "WHERE u.unit_code = %s AND u.valid_to IS NULL", (unit,)).fetchone()
    if row is None:
        raise violation("UNIT_NOT_FOUND", unit)
    return {"house_use": row[0], "building_area": row[1], "exclusive_area": row[2],
            "shared_area": row[3], "floor_label": row[4], "floors_total": row[5],
            "structure": row[6], "house_nature": row[7]}


def _land_detail(conn: psycopg.Connection, unit: str) -> dict[str, Any]:
    row = conn.execute("SELECT registered_area FROM cad.parcel WHERE parcel_code = %s AND "
                       "valid_to IS NULL", (UnitCode.parse(unit).parcel_code,)).fetchone()
    return {"land_area": row[0] if row else None}


def _house_use(conn: psycopg.Connection, unit: str) -> dict[str, Any]:
    if UnitCode.parse(unit).is_land_only:
        return {}
    d = _unit_detail(conn, unit)
    return {"house_use": d["house_use"], "building_area": d["building_area"]}


def _mortgage_detail(f: CaseFacts, unit: str) -> dict[str, Any]:
    r = f.request
    mtype = r.get("mortgage_type", 1)
    amount_key = "secured_amount" if mtype == 1 else "max_amount"
    if not r.get(amount_key) or not r.get("debt_start") or not r.get("debt_end"):
        raise violation("DETAIL_REQUIRED", f"{amount_key}, debt_start, debt_end")
    kind = r.get("property_kind", 1 if UnitCode.parse(unit).is_land_only else 2)
    return {"mortgage_type": mtype, "property_kind": kind,
            **_pick(r, "secured_amount", "max_amount", "debt_start", "debt_end", "scope")}


def _split_changes(target: CurrentRight, changes: dict[str, Any]
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Changed fields of a right: detail columns of its kind and correctable record fields."""
    detail_cols = set(reg.DETAIL_COLUMNS[reg.DETAIL_TABLE[target.kind]])
    record_cols = {"right_start", "right_end", "registration_reason", "remark"}
    bad = [k for k in changes if k not in detail_cols | record_cols]
    if bad:
        raise violation("CHANGE_FIELD_INVALID")
    return ({k: v for k, v in changes.items() if k in detail_cols},
            {k: v for k, v in changes.items() if k in record_cols})
