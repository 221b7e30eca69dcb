"""What a case needs from other departments' filed documents (一码关联), checked at acceptance
and again at 登簿 like the business rules:

- a business may need a valid document for each unit or for its building or project
  (``reg.business_document``: a 网签+预告 case needs the unit's contract filing, a first
  registration of a building its completion acceptance) — ``DOCUMENT_REQUIRED``;
- a sale whose unit has a valid contract filing must be to the buyers that filing names
  (防止一房两卖 beyond the register: the housing department's own record) — ``CONTRACT_CONFLICT``,
  naming the filing's number, never a person;
- a business that ``fills`` from a document takes its parties and price from it when the
  application gives none (网签+预告: the contract filing feeds the pre-notice).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import psycopg

from cadastre.cases import catalogue, rules
from cadastre.cases.application import PartyLink
from cadastre.cases.rules import violation
from cadastre.codes import building_code_of, parcel_code_of
from cadastre.errors import InvalidInput
from cadastre.linked.documents import DOC_TYPES
from cadastre.linked.reads import ValidDocument, valid_documents


def _scope_codes(scope: str, unit: str) -> list[str] | None:
    if scope == "unit":
        return [unit]
    return [building_code_of(unit), parcel_code_of(unit)]


def require_documents(conn: psycopg.Connection, seqs: list[int], unit_codes: Sequence[str],
                      day: date) -> None:
    """Every document the businesses ``seqs`` need is filed and valid on ``day``."""
    for need in catalogue.document_needs(conn, seqs):
        for unit in unit_codes:
            if not valid_documents(conn, need.doc_type, unit, day,
                                   _scope_codes(need.scope, unit)):
                spec = DOC_TYPES[need.doc_type]
                where = unit if need.scope == "unit" else building_code_of(unit)
                raise violation("DOCUMENT_REQUIRED", f"{spec.name_zh} / {spec.name_en}: {where}",
                                document=need.doc_type)


def require_contract_buyers(conn: psycopg.Connection, unit_codes: Sequence[str],
                            buyers: Sequence[uuid.UUID], day: date) -> None:
    """A sale of a unit under a valid contract filing is to that filing's buyers."""
    if not buyers:
        return
    wanted = rules.identity_hashes(conn, buyers)
    for unit in unit_codes:
        for contract in valid_documents(conn, "sales_contract", unit, day, [unit]):
            if rules.identity_hashes(conn, contract.of_role("buyer")) != wanted:
                raise violation("CONTRACT_CONFLICT", f"备案号 / filing {contract.doc_no}, {unit}",
                                blocking_filing=contract.doc_no)


def contract_of(conn: psycopg.Connection, unit: str, day: date) -> ValidDocument | None:
    """The unit's valid sales contract filing (the newest, should there be several)."""
    found = valid_documents(conn, "sales_contract", unit, day, [unit])
    return found[0] if found else None


def mortgage_contract_of(conn: psycopg.Connection, unit: str, day: date,
                         borrowers: Sequence[uuid.UUID]) -> ValidDocument | None:
    """The unit's valid mortgage contract whose borrowers are ``borrowers`` (the buyers)."""
    wanted = rules.identity_hashes(conn, borrowers)
    for doc in valid_documents(conn, "mortgage_contract", unit, day, [unit]):
        if rules.identity_hashes(conn, doc.of_role("borrower")) == wanted:
            return doc
    return None


def fill(conn: psycopg.Connection, seqs: list[int], unit_codes: Sequence[str],
         request: dict[str, Any], day: date) -> tuple[tuple[PartyLink, ...], dict[str, Any]]:
    """Parties and price from the contract filing, for a business that fills from it."""
    if not any(n.fills for n in catalogue.document_needs(conn, seqs)):
        return (), request
    if len(unit_codes) != 1:
        raise InvalidInput("UNITS_ONE", "据网签合同办理时一件申请只含一个单元 / a case filled "
                           "from a contract filing has exactly one unit")
    contract = contract_of(conn, unit_codes[0], day)
    if contract is None:
        spec = DOC_TYPES["sales_contract"]
        raise violation("DOCUMENT_REQUIRED", f"{spec.name_zh} / {spec.name_en}: {unit_codes[0]}",
                        document="sales_contract")
    links = tuple(PartyLink(p, "holder") for p in contract.of_role("buyer")) + tuple(
        PartyLink(p, "obligor") for p in contract.of_role("seller"))
    filled = dict(request)
    if contract.price is not None and "price" not in filled:
        filled["price"] = str(contract.price)
    return links, filled
