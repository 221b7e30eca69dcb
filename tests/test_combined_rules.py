"""Combined registrations refused and interrupted: a seizure registered between acceptance and
登簿 fails the whole case with the rule's code naming the part; a later part's refusal rolls the
earlier parts back; a server killed in the middle of the combined 登簿 leaves nothing; 防止一房两卖
at acceptance names the blocking case or filing, never a person; 网签+预告 takes its parties and
price from the housing department's contract filing."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time

import httpx
import psycopg
import pytest

from cadastre import audit
from cadastre.access.pii import audit_key, load_cipher
from cadastre.access.privacy import Role
from cadastre.cases import workflow as wf
from cadastre.cases.model import Action
from cadastre.cases.rules import RuleViolation
from cadastre.linked.documents import DocumentParty, revoke
from cadastre.settings import CasesSettings, Settings
from tests.combined_support import (
    BUYER,
    BUYER_BANK,
    MORTGAGE,
    OTHER_BUYER,
    SCOPE_CHANGE,
    current,
    enter,
    holder_hash,
    open_case,
    register,
    review,
    units,
)
from tests.conftest import app_data_dir
from tests.linked_support import file_doc
from tests.register_support import REGISTER_TABLES, fingerprint
from tests.support import serve_process

BANK_PART = dataclasses.replace(BUYER_BANK, part="buyer_mortgage")
THREE_IN_ONE = {"transaction_price": "300", "buyer_mortgage": MORTGAGE}


@pytest.fixture(scope="module")
def env(small_district, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    url = small_district("comb_rules", [("reg.rules", "registrar password", Role.REGISTRAR,
                                         "王登簿")])
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("combined_rules_app"))
    settings = Settings(storage={"data_dir": data_dir})
    keys = wf.Keys(load_cipher(settings), audit_key(settings))
    yield {"url": url, "settings": settings, "keys": keys, "data_dir": data_dir,
           "cases": CasesSettings(), "actor": wf.Actor("test", "registrar", "测试登簿员")}


def _refused(fn, code: str) -> RuleViolation:
    with pytest.raises(RuleViolation) as exc:
        fn()
    assert exc.value.code == code, exc.value.message
    return exc.value


def _stage(conn: psycopg.Connection, case_no: str) -> str:
    return conn.execute("SELECT stage FROM reg.case WHERE case_no = %s", (case_no,)).fetchone()[0]


def test_a_seizure_after_acceptance_fails_the_whole_case(env) -> None:
    url = env["url"]
    (unit,) = units(url, "mortgaged", 1)
    with psycopg.connect(url) as conn:
        case_no = open_case(env, conn, 27, unit, [BUYER, BANK_PART], THREE_IN_ONE)
        review(env, conn, case_no)
        enter(env, conn, 22, unit, request={"authority": "杭州市西湖区人民法院"})
        before = fingerprint(url, REGISTER_TABLES)
        exc = _refused(lambda: register(env, conn, case_no), "UNIT_SEIZED")
        assert exc.message.startswith("第1步「") and "part 1 (" in exc.message
        assert exc.details["part"] == "transfer"
        assert _stage(conn, case_no) == "reviewing"
    assert fingerprint(url, REGISTER_TABLES) == before


def test_a_later_part_refused_rolls_back_the_earlier_ones(env) -> None:
    """Mode A: the mortgage was released meanwhile, so part 2 (its change) is refused after
    part 1 (the transfer) was written in the same transaction: nothing stays."""
    url = env["url"]
    (unit,) = units(url, "mortgaged", 1)
    with psycopg.connect(url) as conn:
        case_no = open_case(env, conn, 26, unit, [BUYER],
                            {"transaction_price": "300", "mortgage_change": SCOPE_CHANGE})
        review(env, conn, case_no)
        enter(env, conn, 12, unit, request={"reason": "主债权消灭"})
        before = fingerprint(url, REGISTER_TABLES)
        exc = _refused(lambda: register(env, conn, case_no), "RIGHT_NOT_FOUND")
        assert exc.message.startswith("第2步「") and exc.details["part_seq"] == 2
        assert _stage(conn, case_no) == "reviewing"
    assert fingerprint(url, REGISTER_TABLES) == before


def test_killing_the_server_in_the_middle_of_a_combined_entry(env) -> None:
    """三合一 over HTTP; the server is killed after part 1 is written (it waits for the audit
    chain's lock to emit part 1's event): nothing is left, and the case then enters whole."""
    url = env["url"]
    (unit,) = units(url, "mortgaged", 1)
    proc, base = serve_process(url, env["data_dir"])
    try:
        token = httpx.post(base + "/api/v1/auth/login", json={
            "username": "reg.rules", "password": "registrar password"}).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        case_no = httpx.post(base + "/api/v1/cases", headers=h, json={
            "business_type": 27, "unit_codes": [unit],
            "parties": [{"name": BUYER.name, "id_number": BUYER.id_number},
                        {"name": BUYER_BANK.name, "id_number": BUYER_BANK.id_number,
                         "role": "mortgagee", "id_type": 8, "party_type": 2,
                         "part": "buyer_mortgage"}],
            "request": THREE_IN_ONE}).json()["case_no"]
        httpx.post(f"{base}/api/v1/cases/{case_no}/actions", headers=h, json={
            "action": "review", "review": {"step": "初审", "opinion": "同意"}})
        before = fingerprint(url, REGISTER_TABLES)
        blocker = psycopg.connect(url)
        blocker.execute("SELECT pg_advisory_xact_lock(%s)", (audit.LOCK,))
        threading.Thread(target=lambda: _swallow(lambda: httpx.post(
            f"{base}/api/v1/cases/{case_no}/actions", headers=h, json={"action": "register"},
            timeout=60)), daemon=True).start()
        with psycopg.connect(url, autocommit=True) as watch:
            deadline = time.monotonic() + 30
            while not (blocked := watch.execute(
                    "SELECT pid, query FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND pid <> %s",
                    (blocker.info.backend_pid,)).fetchone()):
                assert time.monotonic() < deadline, "登簿 never reached part 1's event"
                time.sleep(0.1)
            assert "share.event" in blocked[1]          # part 1's event, after its rights
            written = watch.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'right_record' AND l.mode = 'RowExclusiveLock' AND "
                "l.pid = %s", (blocked[0],)).fetchone()[0]
            assert written >= 1
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            blocker.rollback()
            blocker.close()
            deadline = time.monotonic() + 30
            while watch.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                (blocked[0],)).fetchone()[0]:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert fingerprint(url, REGISTER_TABLES) == before
        with psycopg.connect(url) as conn:
            assert _stage(conn, case_no) == "reviewing"
            assert conn.execute("SELECT count(*) FROM reg.case_part c JOIN reg.case x ON "
                                "x.case_id = c.case_id WHERE x.case_no = %s",
                                (case_no,)).fetchone()[0] == 0
            out = wf.advance(conn, env["cases"], env["keys"], env["actor"], case_no,
                             Action.REGISTER)
        assert [p["key"] for p in out["parts"]] == ["transfer", "buyer_mortgage",
                                                    "seller_release"]
    finally:
        if proc.poll() is None:
            proc.kill()


def _swallow(fn) -> None:  # noqa: ANN001
    try:
        fn()
    except httpx.HTTPError:
        pass


# ------------------------------------------------------------------ 防止一房两卖
def test_a_valid_pre_notice_blocks_any_other_sale_at_acceptance(env) -> None:
    url = env["url"]
    (unit,) = units(url, "mortgaged", 1)
    with psycopg.connect(url) as conn:
        notice = enter(env, conn, 13, unit, [BUYER], {"price": "310"})
        notice_case = conn.execute("SELECT business_no FROM cad.right_record WHERE "
                                   "version_id = %s", (notice["version_ids"][0],)).fetchone()[0]
        before = fingerprint(url, REGISTER_TABLES)
        cases = conn.execute("SELECT count(*) FROM reg.case").fetchone()[0]
        for bt, parties, request in (
                (7, [OTHER_BUYER], {"transaction_price": "1"}),
                (27, [OTHER_BUYER, BANK_PART], THREE_IN_ONE),
                (29, [OTHER_BUYER, BUYER_BANK], {"price": "2", "secured_amount": "1"})):
            exc = _refused(lambda bt=bt, parties=parties, request=request: open_case(
                env, conn, bt, unit, parties, request), "PRE_NOTICE_CONFLICT")
            assert notice_case in exc.message and exc.details["blocking_case"] == notice_case
            assert "司马" not in exc.message and "欧阳" not in exc.message
        assert conn.execute("SELECT count(*) FROM reg.case").fetchone()[0] == cases
    assert fingerprint(url, REGISTER_TABLES) == before


def test_an_open_sale_blocks_combined_and_plain_sales(env) -> None:
    url = env["url"]
    first, second = units(url, "mortgaged", 2)
    with psycopg.connect(url) as conn:
        plain = open_case(env, conn, 7, first, [BUYER], {"transaction_price": "300"})
        exc = _refused(lambda: open_case(env, conn, 27, first, [OTHER_BUYER, BANK_PART],
                                         THREE_IN_ONE), "CASE_CONFLICT")
        assert plain in exc.message and exc.details["blocking_case"] == plain
        combined = open_case(env, conn, 27, second, [BUYER, BANK_PART], THREE_IN_ONE)
        exc = _refused(lambda: open_case(env, conn, 7, second, [OTHER_BUYER],
                                         {"transaction_price": "1"}), "CASE_CONFLICT")
        assert combined in exc.message


def test_a_contract_filing_for_other_buyers_blocks_the_sale(env) -> None:
    url = env["url"]
    (unit,) = units(url, "owned", 1)
    with psycopg.connect(url) as conn:
        file_doc(conn, env["keys"].cipher, env["data_dir"], unit, "sales_contract",
                 "WQ2026-000123", price=310, parties=(
                     DocumentParty(BUYER.name, BUYER.id_number, "buyer"),))
        exc = _refused(lambda: open_case(env, conn, 7, unit, [OTHER_BUYER],
                                         {"transaction_price": "1"}), "CONTRACT_CONFLICT")
        assert "WQ2026-000123" in exc.message and "司马" not in exc.message
        enter(env, conn, 7, unit, [BUYER], {"transaction_price": "310"})


# ------------------------------------------------------------------ 网签 + 预告
def test_pre_notice_from_the_contract_filing(env) -> None:
    url = env["url"]
    cipher = env["keys"].cipher
    filed, bare, revoked = units(url, "owned", 3, 2)
    with psycopg.connect(url) as conn:
        for unit, no in ((filed, "WQ2026-000200"), (revoked, "WQ2026-000201")):
            f = file_doc(conn, cipher, env["data_dir"], unit, "sales_contract", no, price=299.5,
                         parties=(DocumentParty(BUYER.name, BUYER.id_number, "buyer"),
                                  DocumentParty(OTHER_BUYER.name, OTHER_BUYER.id_number,
                                                "seller")))
        revoke(conn, f.document_id, "test", None, ())
        conn.commit()
        before = fingerprint(url, REGISTER_TABLES)
        for unit in (bare, revoked):
            exc = _refused(lambda unit=unit: open_case(env, conn, 30, unit), "DOCUMENT_REQUIRED")
            assert "sales contract" in exc.message and unit in exc.message
        assert fingerprint(url, REGISTER_TABLES) == before
        out = enter(env, conn, 30, filed)            # no parties, no price: from the filing
        price = conn.execute("SELECT price FROM cad.pre_notice_detail WHERE right_version_id "
                             "= %s", (out["version_ids"][0],)).fetchone()[0]
    notices = current(url, filed, "pre_notice")
    assert len(notices) == 1 and notices[0]["notice_kind"] == 2
    assert holder_hash(cipher, BUYER) in notices[0]["parties"]
    assert holder_hash(cipher, OTHER_BUYER, 2) in notices[0]["parties"]
    assert float(price) == 299.5
