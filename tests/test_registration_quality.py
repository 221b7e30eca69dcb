"""Registration quality rules (原则/内容/证书/年限/时效/上报): none fires on the clean district;
each planted defect is found exactly (rule and unit), nothing else; blocking rules refuse a 登簿
with their code and write nothing; warnings at 登簿 are recorded."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from cadastre.access.pii import audit_key, load_cipher
from cadastre.cases import workflow as wf
from cadastre.cases.rules import RuleViolation
from cadastre.qa.engine import check
from cadastre.qa.registration_rules import BLOCKING, REGISTRATION_RULES
from cadastre.qa.scope import Scope
from cadastre.settings import CasesSettings, QaSettings
from tests.combined_support import (
    BUYER,
    BUYER_BANK,
    MORTGAGE,
    enter,
    open_case,
    register,
    review,
    units,
)
from tests.register_support import REGISTER_TABLES, fingerprint

REG_RULES = [r.id for r in REGISTRATION_RULES]
CERT = "浙(2020)杭州市不动产权第{:07d}号"


@pytest.fixture(scope="module")
def env(small_district, test_settings):
    url = small_district("xqa")
    keys = wf.Keys(load_cipher(test_settings), audit_key(test_settings))
    return {"url": url, "keys": keys, "cases": CasesSettings(),
            "actor": wf.Actor("test", "registrar", "测试登簿员")}


def _findings(url: str) -> set[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        found = check(conn, Scope("district"), QaSettings(), only=REG_RULES, workers=1)
    return {(f.rule_id, f.subject[0].strip()) for f in found}


def _current(conn: psycopg.Connection, unit: str, kind: str) -> int:
    return conn.execute("SELECT version_id FROM cad.right_record WHERE unit_code = %s AND "
                        "kind = %s AND valid_to IS NULL", (unit, kind)).fetchone()[0]


def _ownership(conn: psycopg.Connection, unit: str) -> int:
    return _current(conn, unit, "ownership")


def _plant(conn: psycopg.Connection, url: str, env: dict) -> set[tuple[str, str]]:
    owned = units(url, "owned", 40)
    mortgaged = units(url, "mortgaged", 4)
    planted: set[tuple[str, str]] = set()
    change = conn.execute("INSERT INTO cad.change_set (kind, actor) VALUES ('edit', 'test') "
                          "RETURNING id").fetchone()[0]

    def add_right(unit: str, kind: str, djlx: int, cert: str | None, at: str,
                  status: int = 1) -> None:
        conn.execute(
            "INSERT INTO cad.right_record (right_id, kind, unit_code, business_no, "
            "registration_type, right_type, certificate_no, registry_office, registrar_name, "
            "registered_at, status, valid_from, change_id, county_code) VALUES (%s, %s, %s, %s, "
            "%s, 4, %s, '登记中心', '登簿员', %s, %s, %s, %s, %s)",
            (uuid.uuid4(), kind, unit, f"T{uuid.uuid4().hex[:8]}", djlx, cert, at, status, at,
             change, unit[:6]))

    def update(table: str, sets: str, unit: str, kind: str = "ownership",
               args: tuple = ()) -> None:
        """``UPDATE`` the unit's current right of ``kind`` (``right_record``) or its detail."""
        key = "version_id" if table == "right_record" else "right_version_id"
        conn.execute(f"UPDATE cad.{table} SET {sets} WHERE {key} = %s",
                     (*args, _current(conn, unit, kind)))

    # 原则: a second current ownership; a mortgage whose ownership ended; a transfer entered
    # while a seizure was in force
    add_right(owned[0], "ownership", 100, CERT.format(9_999_001), "2024-01-01")
    planted.add(("REG_TWO_OWNERSHIPS", owned[0]))
    # ... but an ownership not yet in force (status 0: its registration under way) is none
    add_right(owned[30], "ownership", 200, None, "2024-01-01", status=0)
    closed = _ownership(conn, mortgaged[0])
    conn.execute("UPDATE cad.right_record SET status = 2, valid_to = now(), retired_by = %s "
                 "WHERE version_id = %s", (change, closed))
    planted.add(("REG_MORTGAGE_WITHOUT_BASE", mortgaged[0]))
    # 证书: the ended ownership's electronic certificate left current
    conn.execute(
        "INSERT INTO cad.certificate (certificate_id, kind, number, right_version_id, right_id, "
        "unit_code, business_no, status, prepared_at, prepared_by, issued_at, issued_by, "
        "pdf_sha256, signer) SELECT gen_random_uuid(), 'certificate', r.certificate_no, "
        "r.version_id, r.right_id, r.unit_code, r.business_no, 'current', now(), 'test', now(), "
        "'test', sha256('x'), 'test' FROM cad.right_record r WHERE r.version_id = %s",
        (closed,))
    planted.add(("REG_CERT_NOT_SUPERSEDED", mortgaged[0]))
    transferred = conn.execute(
        "SELECT r.unit_code, r.registered_at FROM cad.right_record r WHERE r.kind = 'ownership' "
        "AND r.registration_type = 200 AND r.valid_to IS NULL AND r.unit_code = ANY(%s) "
        "ORDER BY 1 LIMIT 1", (owned[10:],)).fetchone()
    add_right(transferred[0].strip(), "seizure", 800, None,
              (transferred[1].replace(year=transferred[1].year - 1)).isoformat())
    planted.add(("REG_TRANSFER_WHILE_SEIZED", transferred[0].strip()))
    # 内容: a missing registrar; a mortgage type outside its code table; on the record itself a
    # right type outside its table; a mortgage without its debt start
    update("right_record", "registrar_name = NULL", owned[1])
    planted.add(("REG_REQUIRED_FIELD", owned[1]))
    update("mortgage_detail", "mortgage_type = 7", mortgaged[1], "mortgage")
    planted.add(("REG_DICTIONARY_VALUE", mortgaged[1]))
    update("right_record", "right_type = 0", owned[10])
    planted.add(("REG_DICTIONARY_VALUE", owned[10]))
    update("mortgage_detail", "debt_start = NULL", mortgaged[3], "mortgage")
    planted.add(("REG_REQUIRED_FIELD", mortgaged[3]))
    # 证书: one number on two units' ownerships; a malformed number
    cert = conn.execute("SELECT certificate_no FROM cad.right_record WHERE version_id = %s",
                        (_ownership(conn, owned[2]),)).fetchone()[0]
    update("right_record", "certificate_no = %s", owned[3], args=(cert,))
    planted.add(("REG_CERT_DUPLICATE", min(owned[2], owned[3])))
    update("right_record", "certificate_no = 'X-123'", owned[4])
    planted.add(("REG_CERT_FORMAT", owned[4]))
    # 年限: a land-use term ending before it starts; a residential term of 75 years; a debt
    # running past the land-use term
    update("ownership_detail", "land_use_start = '2010-01-01', land_use_end = '2009-12-31'",
           owned[5])
    planted.add(("REG_TERM_ORDER", owned[5]))
    update("ownership_detail", "house_use = '10', land_use_start = '2000-01-01', "
           "land_use_end = '2075-01-01'", owned[6])
    planted.add(("REG_RESIDENTIAL_TERM", owned[6]))
    update("ownership_detail", "land_use_end = '2030-01-01'", mortgaged[2])
    update("mortgage_detail", "debt_end = '2031-01-01'", mortgaged[2], "mortgage")
    planted.add(("REG_DEBT_AFTER_LAND_TERM", mortgaged[2]))
    conn.commit()
    # 时效 and 上报: a case past its promised limit; a registration without its message; one
    # sent long ago and never answered
    late = open_case(env, conn, 7, owned[7], [BUYER], {"transaction_price": "300"})
    conn.execute("UPDATE reg.case SET due_at = now() - interval '1 day' WHERE case_no = %s",
                 (late,))
    planted.add(("REG_CASE_OVERDUE", owned[7]))
    unreported = enter(env, conn, 7, owned[8], [BUYER], {"transaction_price": "300"})
    conn.execute("DELETE FROM xchg.outbound WHERE biz_msg_id = %s",
                 (unreported["biz_msg_id"],))
    planted.add(("REG_NOT_REPORTED", owned[8]))
    unanswered = enter(env, conn, 7, owned[9], [BUYER], {"transaction_price": "300"})
    conn.execute("UPDATE xchg.outbound SET state = 'sent', created_at = now() - interval "
                 "'5 days' WHERE biz_msg_id = %s", (unanswered["biz_msg_id"],))
    planted.add(("REG_NOT_ACKNOWLEDGED", owned[9]))
    conn.commit()
    return planted


def test_each_rule_planted_is_found_exactly(env):
    assert _findings(env["url"]) == set()          # the generated district is clean
    with psycopg.connect(env["url"]) as conn:
        planted = _plant(conn, env["url"], env)
    assert {rule for rule, _ in planted} == set(REG_RULES)
    assert _findings(env["url"]) == planted


def test_blocking_rules_refuse_the_registration(env):
    unit = units(env["url"], "owned", 1, skip=20)[0]
    with psycopg.connect(env["url"]) as conn:
        case_no = open_case(env, conn, 9, unit, [BUYER_BANK],
                            {**MORTGAGE, "debt_end": "2020-01-01"})
        review(env, conn, case_no)
        before = fingerprint(env["url"], REGISTER_TABLES)
        with pytest.raises(RuleViolation) as exc:
            register(env, conn, case_no)
        assert exc.value.code == "REG_TERM_ORDER"
        assert "REG_TERM_ORDER" in BLOCKING
    assert fingerprint(env["url"], REGISTER_TABLES) == before
    other = units(env["url"], "owned", 1, skip=21)[0]
    with psycopg.connect(env["url"]) as conn:
        conn.execute("UPDATE cad.ownership_detail SET land_use_end = '2080-01-01' WHERE "
                     "right_version_id = %s", (_ownership(conn, other),))
        conn.commit()
        # a warning rule (debt past the land-use term) is recorded, the 登簿 goes through
        out = enter(env, conn, 9, other, [BUYER_BANK], {**MORTGAGE, "debt_end": "2090-01-01"})
        assert out["quality_findings"] == 1
        assert conn.execute(
            "SELECT f.rule_id FROM cad.qa_finding f JOIN cad.qa_run r USING (run_id) "
            "WHERE r.scope->>'case_no' = %s", (out["case_no"],)).fetchall() == [
                ("REG_DEBT_AFTER_LAND_TERM",)]
