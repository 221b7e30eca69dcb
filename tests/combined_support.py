"""Shared pieces of the combined-registration tests: parties, requests, unit pickers and the
register of one unit reduced to what a registration means (kinds, statuses, types, details and
the parties by identity), so two databases can be compared."""

from __future__ import annotations

from typing import Any

import psycopg

from cadastre.cases import workflow as wf
from cadastre.cases.application import Application, PartyInput
from cadastre.cases.model import Action

BUYER = PartyInput("欧阳明月", "11010519491231002X", phone="13800138000")
OTHER_BUYER = PartyInput("司马清风", "110105195001010039")
BUYER_BANK = PartyInput("中国测试银行杭州分行", "91330100MA2TESTX0Q", role="mortgagee", id_type=8,
                        party_type=2)
MORTGAGE = {"mortgage_type": 1, "secured_amount": "120", "debt_start": "2026-12-01",
            "debt_end": "2046-12-01"}
SCOPE_CHANGE = {"changes": {"scope": "主债权、利息及实现抵押权的费用"}}

_PICK = {
    # owned, exactly one current mortgage, nothing else
    "mortgaged": "EXISTS (SELECT 1 FROM cad.right_record m WHERE m.unit_code = r.unit_code AND "
                 "m.status = 1 AND m.kind = 'mortgage') AND (SELECT count(*) FROM "
                 "cad.right_record x WHERE x.unit_code = r.unit_code AND x.status = 1 AND "
                 "x.kind NOT IN ('ownership', 'cancellation')) = 1 AND (SELECT count(*) FROM "
                 "cad.right_record x WHERE x.unit_code = r.unit_code AND x.status = 1 AND "
                 "x.kind = 'mortgage') = 1",
    # owned, nothing else
    "owned": "NOT EXISTS (SELECT 1 FROM cad.right_record x WHERE x.unit_code = r.unit_code "
             "AND x.status = 1 AND x.kind NOT IN ('ownership', 'cancellation'))",
}


def units(url: str, kind: str, n: int, skip: int = 0) -> list[str]:
    """Units in a given state, in a fixed order (the same in every copy of a district)."""
    with psycopg.connect(url) as conn:
        if kind == "bare":
            rows = conn.execute(
                "SELECT u.unit_code FROM cad.unit u WHERE u.valid_to IS NULL AND NOT EXISTS "
                "(SELECT 1 FROM cad.right_record r WHERE r.unit_code = u.unit_code AND "
                "r.status = 1) AND NOT EXISTS (SELECT 1 FROM reg.case c WHERE "
                "u.unit_code = ANY(c.unit_codes)) ORDER BY 1 LIMIT %s OFFSET %s",
                (n, skip)).fetchall()
        else:
            rows = conn.execute(
                "SELECT r.unit_code FROM cad.right_record r WHERE r.kind = 'ownership' AND "
                f"r.status = 1 AND {_PICK[kind]} AND NOT EXISTS (SELECT 1 FROM reg.case c "
                "WHERE r.unit_code = ANY(c.unit_codes)) ORDER BY r.unit_code LIMIT %s OFFSET %s",
                (n, skip)).fetchall()
    found = [r[0].strip() for r in rows]
    assert len(found) == n, f"the district has too few {kind} units"
    return found


def open_case(env: dict, conn: psycopg.Connection, bt: int, unit: str, parties=(),
              request: dict | None = None, target=None) -> str:
    return wf.open_case(conn, env["cases"], env["keys"], env["actor"], Application(
        bt, (unit,), tuple(parties), target, request or {})).case_no


def review(env: dict, conn: psycopg.Connection, case_no: str) -> None:
    wf.advance(conn, env["cases"], env["keys"], env["actor"], case_no, Action.REVIEW,
               review=wf.Review("初审", "同意"))


def register(env: dict, conn: psycopg.Connection, case_no: str) -> dict:
    return wf.advance(conn, env["cases"], env["keys"], env["actor"], case_no, Action.REGISTER)


def enter(env: dict, conn: psycopg.Connection, bt: int, unit: str, parties=(),
          request: dict | None = None, target=None) -> dict:
    case_no = open_case(env, conn, bt, unit, parties, request, target)
    review(env, conn, case_no)
    return register(env, conn, case_no)


_MEANING = """
SELECT r.kind, r.status, r.registration_type, r.right_type, r.registration_reason,
       r.certificate_no IS NOT NULL AS certified,
       coalesce(to_jsonb(o), to_jsonb(m), to_jsonb(pn), to_jsonb(c)) - 'right_version_id'
           AS detail,
       (SELECT array_agg(rp.role || ':' || encode(p.id_number_hash, 'hex') ORDER BY rp.role,
                         encode(p.id_number_hash, 'hex'))
        FROM cad.right_party rp JOIN pii.party p ON p.party_id = rp.party_id
        WHERE rp.right_version_id = r.version_id) AS parties
FROM cad.right_record r
LEFT JOIN cad.ownership_detail o ON o.right_version_id = r.version_id
LEFT JOIN cad.mortgage_detail m ON m.right_version_id = r.version_id
LEFT JOIN cad.pre_notice_detail pn ON pn.right_version_id = r.version_id
LEFT JOIN cad.cancellation_detail c ON c.right_version_id = r.version_id
WHERE r.unit_code = %s
ORDER BY r.valid_from, r.version_id
"""


def meaning(url: str, unit: str) -> list[tuple[Any, ...]]:
    """The unit's register, versions in order, without ids, times and business numbers."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(_MEANING, (unit,)).fetchall()
        status = conn.execute("SELECT registration_status, mortgaged, seized, pre_noticed "
                              "FROM cad.unit_status WHERE unit_code = %s", (unit,)).fetchone()
    out = [(k, s, rt, qt, reason, cert,
            {key: v for key, v in (detail or {}).items() if not key.endswith("_at")}, parties)
           for k, s, rt, qt, reason, cert, detail, parties in rows]
    return [*out, ("status", status)]


def current(url: str, unit: str, kind: str) -> list[dict[str, Any]]:
    """Current rights of a kind with their parties' identity hashes by role."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT r.right_id, r.business_no, (SELECT array_agg(rp.role || ':' || "
            "encode(p.id_number_hash, 'hex') ORDER BY 1) FROM cad.right_party rp JOIN pii.party "
            "p ON p.party_id = rp.party_id WHERE rp.right_version_id = r.version_id), "
            "d.notice_kind FROM cad.right_record r LEFT JOIN cad.pre_notice_detail d ON "
            "d.right_version_id = r.version_id WHERE r.unit_code = %s AND r.kind = %s AND "
            "r.status = 1 ORDER BY r.valid_from", (unit, kind)).fetchall()
    return [{"right_id": r[0], "business_no": r[1], "parties": r[2] or [], "notice_kind": r[3]}
            for r in rows]


def holder_hash(cipher, party: PartyInput, role: int = 1) -> str:  # noqa: ANN001
    return f"{role}:{cipher.lookup_hash(party.id_number).hex()}"
