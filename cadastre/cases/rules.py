"""Business rules of registration: what the law refuses, each with a stable code.

They read the register (with the rows they depend on locked) and raise ``RuleViolation``; the
planner (``cadastre.cases.entry``) calls them at acceptance (an early answer at the window) and
again at 登簿 (the register may have changed in between: a seizure registered meanwhile).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from weakref import WeakKeyDictionary

import psycopg

from cadastre.codes import UnitCode
from cadastre.errors import CadastreError
from cadastre.register.rights import CurrentRight

PURCHASE_NOTICES = (1, 2)       # YGDJZL 预售商品房买卖 / 其它不动产买卖
MORTGAGE_NOTICES = (3, 4)


class RuleViolation(CadastreError):
    """The law refuses the registration as asked; nothing is written."""

    code = "RULE_VIOLATION"


RULE_MESSAGES: dict[str, tuple[str, str]] = {
    "UNIT_NOT_FOUND": ("不动产单元不存在或已灭失", "the unit does not exist or is not current"),
    "UNIT_SEIZED": ("不动产已被查封，不得办理转移、抵押或预告登记",
                    "the unit is seized: no transfer, mortgage or pre-notice"),
    "PRE_NOTICE_CONFLICT": ("该不动产存在他人的有效预告登记，未经预告权利人同意不得处分",
                            "a valid pre-notice for another buyer blocks the transfer"),
    "BASE_RIGHT_MISSING": ("不存在可抵押或可预告的现势权利",
                           "no current right that the registration can rest on"),
    "RIGHT_EXISTS": ("该单元已有现势的同类权利，不能办理首次登记",
                     "the unit already has a current right of this kind"),
    "RIGHT_NOT_FOUND": ("要变更、转移或注销的权利不存在或已失效",
                        "the right to change, transfer or cancel is not current"),
    "RIGHT_AMBIGUOUS": ("该单元有多项同类现势权利，请指明所涉权利",
                        "several current rights of this kind: name the one meant"),
    "MORTGAGE_CURRENT": ("存在现势抵押权，不能注销所有权", "a current mortgage blocks the "
                         "cancellation"),
    "HOLDER_REQUIRED": ("须列明权利人", "the application must name the right holder(s)"),
    "DETAIL_REQUIRED": ("缺少登记必需的内容", "a field the registration needs is missing"),
    "CHANGE_FIELD_INVALID": ("变更内容含有不可变更的字段", "the changes name a field that "
                             "cannot be changed"),
    "CASE_CONFLICT": ("该单元已有在办的转移或预告登记业务", "an open transfer or pre-notice case "
                      "exists on the unit"),
    "DOCUMENT_REQUIRED": ("缺少相关部门共享的有效文件", "a valid document filed by the "
                          "responsible department is missing"),
    "CONTRACT_CONFLICT": ("该单元的网签备案合同载明的买受人与申请不符",
                          "the unit's filed sales contract names other buyers"),
}


def violation(code: str, detail: str | None = None, **details: object) -> RuleViolation:
    zh, en = RULE_MESSAGES[code]
    suffix = f" ({detail})" if detail else ""
    return RuleViolation(code, f"{zh} / {en}{suffix}", **details)


def require_units_current(conn: psycopg.Connection, unit_codes: Sequence[str]) -> None:
    """House units must be current in ``cad.unit``; a land-only unit's parcel in
    ``cad.parcel``. Their rows are locked so a survey cannot retire them meanwhile."""
    for code in unit_codes:
        uc = UnitCode.parse(code)
        if uc.is_land_only:
            row = conn.execute("SELECT 1 FROM cad.parcel WHERE parcel_code = %s AND "
                               "valid_to IS NULL FOR SHARE", (uc.parcel_code,)).fetchone()
        else:
            row = conn.execute("SELECT 1 FROM cad.unit WHERE unit_code = %s AND "
                               "valid_to IS NULL FOR SHARE", (code,)).fetchone()
        if row is None:
            raise violation("UNIT_NOT_FOUND", code)


def require_not_seized(rights: Iterable[CurrentRight]) -> None:
    seized = [r.unit_code for r in rights if r.kind == "seizure"]
    if seized:
        raise violation("UNIT_SEIZED", seized[0])


_HASHES: WeakKeyDictionary[psycopg.Connection, dict[uuid.UUID, bytes]] = WeakKeyDictionary()


def identity_hashes(conn: psycopg.Connection, party_ids: Iterable[uuid.UUID]) -> set[bytes]:
    """The keyed hashes of the parties' ID numbers (a party row never changes, so each
    connection remembers the ones it has read)."""
    known = _HASHES.setdefault(conn, {})
    if len(known) > 100_000:          # a long-lived pooled connection: bounded
        known.clear()
    ids = list(party_ids)
    missing = [i for i in ids if i not in known]
    if missing:
        known.update((r[0], bytes(r[1])) for r in conn.execute(
            "SELECT party_id, id_number_hash FROM pii.party WHERE party_id = ANY(%s)",
            (missing,)))
    return {known[i] for i in ids if i in known}


def purchase_notices(rights: Iterable[CurrentRight]) -> list[CurrentRight]:
    return [r for r in rights if r.kind == "pre_notice"
            and r.detail.get("notice_kind") in PURCHASE_NOTICES]


def require_no_other_buyer(conn: psycopg.Connection, rights: Iterable[CurrentRight],
                           buyers: Iterable[uuid.UUID]) -> list[CurrentRight]:
    """A valid purchase pre-notice for someone other than ``buyers`` refuses a transfer
    (防止一房两卖); the notices of these same buyers are returned (the transfer fulfils them)."""
    buyer_ids = identity_hashes(conn, buyers)
    own = []
    for notice in purchase_notices(rights):
        if identity_hashes(conn, notice.holders) <= buyer_ids and buyer_ids:
            own.append(notice)
        else:
            raise notice_conflict(notice)
    return own


def notice_conflict(notice: CurrentRight) -> RuleViolation:
    """防止一房两卖: the pre-notice that blocks, named by the case (business number) that
    registered it and its unit; never by its holder."""
    return violation("PRE_NOTICE_CONFLICT", f"预告登记业务号 / pre-notice case "
                     f"{notice.business_no}, {notice.unit_code}", blocking_case=notice.business_no)


def lenders_notices(conn: psycopg.Connection, rights: Iterable[CurrentRight],
                    lenders: Iterable[uuid.UUID]) -> list[CurrentRight]:
    """The mortgage pre-notices of these lenders: their mortgage fulfils them."""
    ids = identity_hashes(conn, lenders)
    return [r for r in rights if r.kind == "pre_notice" and ids
            and r.detail.get("notice_kind") in MORTGAGE_NOTICES
            and identity_hashes(conn, r.holders) <= ids]


def single(rights: Sequence[CurrentRight], target: uuid.UUID | None) -> CurrentRight:
    """The one right a change/cancellation acts on: the named one, or the only candidate."""
    if target is not None:
        for r in rights:
            if r.right_id == target:
                return r
        raise violation("RIGHT_NOT_FOUND")
    if not rights:
        raise violation("RIGHT_NOT_FOUND")
    if len(rights) > 1:
        raise violation("RIGHT_AMBIGUOUS")
    return rights[0]


def require_no_open_case(conn: psycopg.Connection, unit_codes: Sequence[str],
                         business_types: Sequence[int], exclude: uuid.UUID | None) -> None:
    """防止一房两卖 at the window: another open transfer/pre-notice case on the unit blocks a
    new one. The error names the blocking case number, never a person."""
    row = conn.execute(
        "SELECT case_no FROM reg.case WHERE unit_codes && %s::char(28)[] "
        "AND business_type = ANY(%s) AND closed_at IS NULL AND registered_at IS NULL "
        "AND (%s::uuid IS NULL OR case_id <> %s) ORDER BY applied_at LIMIT 1",
        (list(unit_codes), list(business_types), exclude, exclude)).fetchone()
    if row is not None:
        raise violation("CASE_CONFLICT", f"案号 / case {row[0]}", blocking_case=row[0])
