"""Reading filed documents: every document linked to a unit (filed under the unit, its building
or its project's parcel, or listed by a pre-sale permit) for the registrar's 一码关联 view, and
the valid ones a case rests on (a contract filing, a mortgage contract, completion acceptance).

"Valid" on a day: not revoked, and the day within ``valid_from``..``valid_until`` where given.
Records are keyed by privacy-policy field names; the caller applies the policy.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cadastre.access.pii import PiiCipher
from cadastre.codes import building_code_of, is_unit_code_with_fixture, parcel_code_of
from cadastre.linked.documents import DOC_TYPES

_LINKED = """
SELECT d.document_id AS id, d.doc_type, d.doc_no, d.issuer, d.issued_on, d.valid_from,
       d.valid_until, d.code, d.code_kind, d.price::float8 AS price,
       d.secured_amount::float8 AS secured_amount, d.debt_start, d.debt_end,
       d.amount::float8 AS amount, d.sha256, d.size_bytes, d.media_type, d.status,
       d.revoked_at, d.posted_by, d.posted_at,
       d.status = 'valid' AND (d.valid_from IS NULL OR d.valid_from <= %(day)s)
           AND (d.valid_until IS NULL OR d.valid_until >= %(day)s) AS in_force
FROM reg.linked_document d
WHERE (d.code = ANY(%(codes)s) OR d.unit_codes @> ARRAY[%(unit)s]::char(28)[])
  AND (%(before)s::timestamptz IS NULL OR d.posted_at <= %(before)s::timestamptz)
ORDER BY d.posted_at, d.document_id
"""

_PARTIES = """
SELECT dp.document_id, dp.role AS document_role, dp.seq, p.party_id AS id,
       p.party_type::int AS party_type, p.id_type::int AS id_type, p.name_enc, p.id_number_enc
FROM reg.linked_document_party dp JOIN pii.party p ON p.party_id = dp.party_id
WHERE dp.document_id = ANY(%(ids)s)
ORDER BY dp.document_id, dp.role, dp.seq
"""

ROLE_LABELS = {"buyer": ("买受人", "buyer"), "seller": ("出卖人", "seller"),
               "lender": ("抵押权人", "lender"), "borrower": ("抵押人/借款人", "borrower"),
               "taxpayer": ("纳税人", "taxpayer")}


def codes_for_unit(unit_code: str) -> list[str]:
    """The codes a document about ``unit_code`` may be filed under."""
    if is_unit_code_with_fixture(unit_code, "W"):
        return [unit_code, parcel_code_of(unit_code)]
    return [unit_code, building_code_of(unit_code), parcel_code_of(unit_code)]


def for_unit(conn: psycopg.Connection, cipher: PiiCipher, unit_code: str, day: date,
             decrypt: Collection[str] = (), posted_before: datetime | None = None
             ) -> list[dict[str, Any]]:
    """Every document linked to the unit, revoked ones included (with their status);
    ``posted_before``: only those filed by then (an as-of view)."""
    cur = conn.cursor(row_factory=dict_row)
    params = {"codes": codes_for_unit(unit_code), "unit": unit_code, "day": day,
              "before": posted_before}
    rows = cur.execute(_LINKED, params).fetchall()  # type: ignore[arg-type]
    parties: dict[uuid.UUID, list[dict[str, Any]]] = {}
    if rows:
        for p in cur.execute(_PARTIES, {"ids": [r["id"] for r in rows]}):  # type: ignore[arg-type]
            doc = p.pop("document_id")
            party = {k: v for k, v in p.items() if not k.endswith("_enc")}
            party["id"] = str(party["id"])
            if "name" in decrypt:
                party["name"] = cipher.decrypt(p["name_enc"])
            if "id_number" in decrypt:
                party["id_number"] = cipher.decrypt(p["id_number_enc"])
            zh, en = ROLE_LABELS[party["document_role"]]
            party["document_role_label"] = {"zh": zh, "en": en}
            parties.setdefault(doc, []).append(party)
    out = []
    for r in rows:
        spec = DOC_TYPES[r["doc_type"]]
        r["doc_type_label"] = {"zh": spec.name_zh, "en": spec.name_en}
        r["parties"] = parties.get(r["id"], [])
        r["id"] = str(r["id"])
        r["links"] = {"file": f"/api/v1/documents/{r['id']}/file"}
        out.append(r)
    return out


@dataclass(frozen=True)
class ValidDocument:
    document_id: uuid.UUID
    doc_type: str
    doc_no: str
    price: Decimal | None
    secured_amount: Decimal | None
    debt_start: date | None
    debt_end: date | None
    parties: tuple[tuple[uuid.UUID, str, int], ...]     # (party id, role, seq)

    def of_role(self, role: str) -> list[uuid.UUID]:
        return [p for p, r, _ in self.parties if r == role]


_VALID = """
SELECT d.document_id, d.doc_type, d.doc_no, d.price, d.secured_amount, d.debt_start,
       d.debt_end,
       coalesce(array_agg(array[dp.party_id::text, dp.role, dp.seq::text]
                          ORDER BY dp.role, dp.seq) FILTER (WHERE dp.party_id IS NOT NULL),
                '{}')
FROM reg.linked_document d
LEFT JOIN reg.linked_document_party dp ON dp.document_id = d.document_id
WHERE (d.code = ANY(%(codes)s) OR d.unit_codes @> ARRAY[%(unit)s]::char(28)[])
  AND d.doc_type = %(type)s AND d.status = 'valid'
  AND (d.valid_from IS NULL OR d.valid_from <= %(day)s)
  AND (d.valid_until IS NULL OR d.valid_until >= %(day)s)
GROUP BY d.document_id
ORDER BY d.issued_on DESC, d.posted_at DESC
"""


def valid_documents(conn: psycopg.Connection, doc_type: str, unit_code: str, day: date,
                    codes: list[str] | None = None) -> list[ValidDocument]:
    """The valid documents of ``doc_type`` for the unit (newest first); ``codes``: the codes to
    look under (default: the unit, its building and its parcel)."""
    rows = conn.execute(_VALID, {"codes": codes or codes_for_unit(unit_code), "unit": unit_code,
                                 "type": doc_type, "day": day}).fetchall()
    return [ValidDocument(r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                          tuple((uuid.UUID(p[0]), p[1], int(p[2])) for p in r[7]))
            for r in rows]
