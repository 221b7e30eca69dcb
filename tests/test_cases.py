"""Registration cases on a real register: the business rules refuse what the law refuses (and
write nothing), a transfer case changes the owner end to end through the API and the audit chain,
and a server killed during 登簿 leaves all or nothing."""

from __future__ import annotations

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
from cadastre.cases.application import Application, PartyInput
from cadastre.cases.model import Action
from cadastre.cases.rules import RuleViolation
from cadastre.certificates.issue import IssuingContext, electronic_copy
from cadastre.certificates.signing import OfficeSigner
from cadastre.certificates.verify import check_file
from cadastre.codes import building_code_of
from cadastre.settings import CasesSettings, Settings
from tests.conftest import app_data_dir, client_for
from tests.linked_support import file_doc
from tests.register_support import REGISTER_TABLES, fingerprint
from tests.support import serve_process

BUYER = PartyInput("欧阳明月", "11010519491231002X", phone="13800138000")
OTHER_BUYER = PartyInput("司马清风", "110105195001010039")
BANK = PartyInput("中国测试银行杭州分行", "91330100MA2TESTX0Q", role="mortgagee", id_type=8,
                  party_type=2)
MORTGAGE = {"mortgage_type": 1, "secured_amount": "120", "debt_start": "2026-12-01",
            "debt_end": "2046-12-01"}


@pytest.fixture(scope="module")
def env(small_district, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    url = small_district("cases", [("reg.case", "registrar password", Role.REGISTRAR, "王登簿")])
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("cases_app"))
    settings = Settings(storage={"data_dir": data_dir})
    keys = wf.Keys(load_cipher(settings), audit_key(settings))
    yield {"url": url, "settings": settings, "keys": keys, "data_dir": data_dir,
           "cases": CasesSettings(), "actor": wf.Actor("test", "registrar", "测试登簿员")}


def _owned_units(url: str, n: int, free: bool = True) -> list[str]:
    """Units with a current ownership and nothing else on them (no mortgage, seizure …)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT r.unit_code FROM cad.right_record r WHERE r.kind = 'ownership' AND "
            "r.status = 1 AND NOT EXISTS (SELECT 1 FROM cad.right_record x WHERE "
            "x.unit_code = r.unit_code AND x.status = 1 AND x.kind <> 'ownership' "
            "AND x.kind <> 'cancellation') AND NOT EXISTS (SELECT 1 FROM reg.case c WHERE "
            "r.unit_code = ANY(c.unit_codes)) ORDER BY r.unit_code LIMIT %s", (n,)).fetchall()
    return [r[0].strip() for r in rows]


def _case(env, conn, bt: int, unit: str, parties=(), request=None) -> str:
    return wf.open_case(conn, env["cases"], env["keys"], env["actor"],
                        Application(bt, (unit,), tuple(parties), request=request or {})).case_no


def _enter(env, conn, case_no: str) -> dict:
    s, keys, actor = env["cases"], env["keys"], env["actor"]
    wf.advance(conn, s, keys, actor, case_no, Action.REVIEW, review=wf.Review("初审", "同意"))
    return wf.advance(conn, s, keys, actor, case_no, Action.REGISTER)


def _refused(fn, code: str) -> None:
    with pytest.raises(RuleViolation) as exc:
        fn()
    assert exc.value.code == code, exc.value.message


# ------------------------------------------------------------------ rules
def test_seized_unit_refuses_transfer_and_mortgage_and_nothing_is_written(env) -> None:
    url = env["url"]
    unit, other = _owned_units(url, 2)
    with psycopg.connect(url) as conn:
        seizure = _case(env, conn, 22, unit, request={"authority": "杭州市西湖区人民法院",
                                                        "document_no": "(2026)浙0106执100号"})
        _enter(env, conn, seizure)   # 即时办理: no review step needed, but one is allowed
        before = fingerprint(url, REGISTER_TABLES)
        cases_before = conn.execute("SELECT count(*) FROM reg.case").fetchone()[0]
        _refused(lambda: _case(env, conn, 7, unit, [BUYER], {"transaction_price": "300"}),
                 "UNIT_SEIZED")
        _refused(lambda: _case(env, conn, 9, unit, [BANK], MORTGAGE), "UNIT_SEIZED")
        assert conn.execute("SELECT count(*) FROM reg.case").fetchone()[0] == cases_before
    assert fingerprint(url, REGISTER_TABLES) == before
    # seized after acceptance: 登簿 fails with the rule, the register is unchanged
    with psycopg.connect(url) as conn:
        transfer = _case(env, conn, 7, other, [BUYER], {"transaction_price": "280"})
        wf.advance(conn, env["cases"], env["keys"], env["actor"], transfer, Action.REVIEW,
                   review=wf.Review("初审", "同意"))
        _enter(env, conn, _case(env, conn, 22, other, request={"authority": "杭州市中级人民法院"}))
        before = fingerprint(url, REGISTER_TABLES)
        _refused(lambda: wf.advance(conn, env["cases"], env["keys"], env["actor"], transfer,
                                    Action.REGISTER), "UNIT_SEIZED")
        stage = conn.execute("SELECT stage FROM reg.case WHERE case_no = %s",
                             (transfer,)).fetchone()[0]
    assert stage == "reviewing"
    assert fingerprint(url, REGISTER_TABLES) == before
    # a release (解封) lifts it: the seizure closes with the release document on it
    with psycopg.connect(url) as conn:
        release = _case(env, conn, 22, other, request={"action": "release",
                                                       "release_document_no": "(2026)解1号"})
        _enter(env, conn, release)
        row = conn.execute("SELECT d.release_document_no, r.status FROM cad.right_record r "
                           "JOIN cad.seizure_detail d ON d.right_version_id = r.version_id "
                           "WHERE r.unit_code = %s AND r.kind = 'seizure'", (other,)).fetchone()
        assert row == ("(2026)解1号", 2)
        assert _enter(env, conn, transfer)["certificate_nos"]


def test_pre_notice_for_another_buyer_blocks_a_transfer(env) -> None:
    url = env["url"]
    (unit,) = _owned_units(url, 1)
    with psycopg.connect(url) as conn:
        notice = _case(env, conn, 13, unit, [BUYER], {"price": "310"})
        _enter(env, conn, notice)
        before = fingerprint(url, REGISTER_TABLES)
        _refused(lambda: _case(env, conn, 7, unit, [OTHER_BUYER], {"transaction_price": "1"}),
                 "PRE_NOTICE_CONFLICT")
        _refused(lambda: _case(env, conn, 13, unit, [OTHER_BUYER], {"price": "2"}),
                 "PRE_NOTICE_CONFLICT")
        assert fingerprint(url, REGISTER_TABLES) == before
        # the pre-notice's own buyer may: the transfer fulfils and closes the pre-notice
        out = _enter(env, conn, _case(env, conn, 7, unit, [BUYER], {"transaction_price": "310"}))
        kinds = conn.execute("SELECT kind, status FROM cad.right_record WHERE unit_code = %s "
                             "AND change_id = %s ORDER BY version_id",
                             (unit, out["change_id"])).fetchall()
        closed = conn.execute("SELECT kind FROM cad.right_record WHERE retired_by = %s "
                              "ORDER BY kind", (out["change_id"],)).fetchall()
    assert kinds == [("ownership", 1)]
    assert closed == [("ownership",), ("pre_notice",)]


def test_missing_or_existing_prior_rights_are_refused(env) -> None:
    url = env["url"]
    with psycopg.connect(url) as conn:
        bare = conn.execute(
            "SELECT u.unit_code FROM cad.unit u WHERE u.valid_to IS NULL AND NOT EXISTS (SELECT "
            "1 FROM cad.right_record r WHERE r.unit_code = u.unit_code AND r.status = 1) "
            "ORDER BY 1 LIMIT 1").fetchone()[0].strip()
        (owned,) = _owned_units(url, 1)
        before = fingerprint(url, REGISTER_TABLES)
        _refused(lambda: _case(env, conn, 9, bare, [BANK], MORTGAGE), "BASE_RIGHT_MISSING")
        _refused(lambda: _case(env, conn, 7, bare, [BUYER], {}), "RIGHT_NOT_FOUND")
        _refused(lambda: _case(env, conn, 12, bare, [], {}), "RIGHT_NOT_FOUND")
        _refused(lambda: _case(env, conn, 14, bare, [BANK], {"secured_amount": "9"}),
                 "BASE_RIGHT_MISSING")
        _refused(lambda: _case(env, conn, 5, owned, [BUYER], {}), "RIGHT_EXISTS")
        _refused(lambda: _case(env, conn, 7, "330106001001GB00001F99980001", [BUYER], {}),
                 "UNIT_NOT_FOUND")
        assert fingerprint(url, REGISTER_TABLES) == before
        # first registration of the bare unit (its building's completion acceptance filed by
        # the construction department), then a mortgage on it, then its cancellation
        _refused(lambda: _case(env, conn, 5, bare, [OTHER_BUYER], {}), "DOCUMENT_REQUIRED")
        file_doc(conn, env["keys"].cipher, env["data_dir"], building_code_of(bare),
                 "completion_acceptance", "竣备字(2026)第001号", issuer="杭州市城乡建设委员会")
        first = _enter(env, conn, _case(env, conn, 5, bare, [OTHER_BUYER], {}))
        assert first["certificate_nos"][0].startswith("浙(2026)杭州市不动产权第")
        mortgage = _enter(env, conn, _case(env, conn, 9, bare, [BANK], MORTGAGE))
        assert "不动产证明" in mortgage["certificate_nos"][0]
        _refused(lambda: _case(env, conn, 8, bare, [], {}), "MORTGAGE_CURRENT")
        _enter(env, conn, _case(env, conn, 12, bare, [], {"reason": "主债权消灭"}))
        status = conn.execute("SELECT mortgaged FROM cad.unit_status WHERE unit_code = %s",
                              (bare,)).fetchone()[0]
    assert status is False


def test_one_open_sale_per_unit_at_the_window(env) -> None:
    (unit,) = _owned_units(env["url"], 1)
    with psycopg.connect(env["url"]) as conn:
        first = _case(env, conn, 7, unit, [BUYER], {"transaction_price": "300"})
        with pytest.raises(RuleViolation) as exc:
            _case(env, conn, 7, unit, [OTHER_BUYER], {"transaction_price": "300"})
        assert exc.value.code == "CASE_CONFLICT" and first in exc.value.message
        assert "司马" not in exc.value.message and "欧阳" not in exc.value.message


# ------------------------------------------------------------------ end to end over HTTP
def test_transfer_case_end_to_end_changes_the_owner(env) -> None:
    url = env["url"]
    (unit,) = _owned_units(url, 1)
    issuing = IssuingContext.from_settings(env["settings"])
    with psycopg.connect(url) as conn:       # the seller holds an electronic certificate
        (version,) = conn.execute(
            "SELECT version_id FROM cad.right_record WHERE unit_code = %s AND kind = "
            "'ownership' AND status = 1 AND valid_to IS NULL", (unit,)).fetchone()
        seller_doc = electronic_copy(conn, issuing, version, actor="test")
    assert seller_doc.status == "current"
    with client_for(url, env["settings"]) as client:
        token = client.post("/api/v1/auth/login", json={
            "username": "reg.case", "password": "registrar password"}).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        before = client.get(f"/api/v1/registry/units/{unit}", headers=h).json()
        old = [r for r in before["records"] if r["kind"] == "ownership"
               and r["status"] == 1]
        assert len(old) == 1
        r = client.post("/api/v1/cases", headers=h, json={
            "business_type": 7, "unit_codes": [unit],
            "parties": [{"name": "欧阳明月", "id_number": "11010519491231002X",
                         "phone": "13800138000"}],
            "request": {"transaction_price": "365.5"},
            "materials": ["application_form", "certificate", "sales_contract"]})
        assert r.status_code == 201, r.text
        case_no, code = r.json()["case_no"], r.json()["query_code"]
        detail = client.get(f"/api/v1/cases/{case_no}", headers=h).json()
        assert detail["stage"] == "accepted" and detail["light"] == "green"
        assert [m["status"] for m in detail["materials"]] == ["received"] * 3
        assert detail["parties"][0]["name"] == "欧阳明月"
        for body in ({"action": "register"}, ):   # no review yet: refused
            assert client.post(f"/api/v1/cases/{case_no}/actions", headers=h,
                               json=body).json()["error"]["code"] == "REVIEW_MISSING"
        for body in ({"action": "review", "review": {"step": "初审", "opinion": "材料齐全"}},
                     {"action": "register"}, {"action": "prepare"}, {"action": "issue"},
                     {"action": "archive"}):
            r = client.post(f"/api/v1/cases/{case_no}/actions", headers=h, json=body)
            assert r.status_code == 200, r.text
        after = client.get(f"/api/v1/registry/units/{unit}", headers=h).json()
        progress = client.get(f"/api/v1/progress/{case_no}", params={"code": code}).json()
    current = [x for x in after["records"] if x["kind"] == "ownership" and x["status"] == 1]
    assert len(current) == 1 and current[0]["business_no"] == case_no
    assert [p["name"] for p in current[0]["parties"] if p["role"] == 1] == ["欧阳明月"]
    assert current[0]["detail"]["transaction_price"] in (365.5, "365.50")
    closed = [x for x in after["records"] if x.get("id") == old[0]["id"]
              or x.get("version_id") == old[0].get("version_id")]
    assert closed and closed[0]["status"] == 2
    assert progress["stage"] == "archived" and "parties" not in progress
    with psycopg.connect(url) as conn:     # 缮证 signed the buyer's certificate, 发证 issued it
        docs = conn.execute(
            "SELECT c.certificate_id, c.number, c.status, c.business_no, d.pdf "
            "FROM cad.certificate c JOIN cad.certificate_document d USING (certificate_id) "
            "WHERE c.unit_code = %s ORDER BY c.serial", (unit,)).fetchall()
        assert [(d[2], d[3]) for d in docs] == [("superseded", seller_doc.business_no),
                                                ("current", case_no)]
        assert docs[0][1] == seller_doc.number and docs[1][1] == current[0]["certificate_no"]
        check = check_file(conn, bytes(docs[1][4]), OfficeSigner(issuing.files).trust_roots)
        assert check.signature.ok and check.status == "valid"
        superseded_by = conn.execute("SELECT superseded_by FROM cad.certificate WHERE "
                                     "certificate_id = %s", (docs[0][0],)).fetchone()[0]
        assert superseded_by == case_no
    with psycopg.connect(url) as conn:
        actions = [r[0] for r in conn.execute(
            "SELECT action FROM audit.log WHERE target = %s ORDER BY seq", (case_no,))]
        chain = audit.verify(conn, env["keys"].audit_key)
    assert actions[:1] == ["case.accept"] and "case.register" in actions
    assert actions[-1] == "case.archive"
    assert chain.ok


# ------------------------------------------------------------------ kill during 登簿
def test_killing_the_server_during_entry_writes_all_or_nothing(env) -> None:
    url = env["url"]
    (unit,) = _owned_units(url, 1)
    proc, base = serve_process(url, env["data_dir"])
    try:
        token = httpx.post(base + "/api/v1/auth/login", json={
            "username": "reg.case", "password": "registrar password"}).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        case_no = httpx.post(base + "/api/v1/cases", headers=h, json={
            "business_type": 7, "unit_codes": [unit],
            "parties": [{"name": "欧阳明月", "id_number": "11010519491231002X"}],
            "request": {"transaction_price": "400"}}).json()["case_no"]
        httpx.post(f"{base}/api/v1/cases/{case_no}/actions", headers=h, json={
            "action": "review", "review": {"step": "初审", "opinion": "同意"}})
        before = fingerprint(url, REGISTER_TABLES)
        blocker = psycopg.connect(url)
        blocker.execute("SELECT pg_advisory_xact_lock(%s)", (audit.LOCK,))   # the last step
        threading.Thread(target=lambda: _swallow(lambda: httpx.post(
            f"{base}/api/v1/cases/{case_no}/actions", headers=h, json={"action": "register"},
            timeout=60)), daemon=True).start()
        with psycopg.connect(url, autocommit=True) as watch:
            deadline = time.monotonic() + 30
            while not (blocked := watch.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND pid <> %s",
                    (blocker.info.backend_pid,)).fetchone()):
                assert time.monotonic() < deadline, "登簿 never reached its last statement"
                time.sleep(0.1)
            written = watch.execute("SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                                    "c.oid = l.relation WHERE c.relname = 'right_record' AND "
                                    "l.mode = 'RowExclusiveLock' AND l.pid = %s",
                                    (blocked[0],)).fetchone()[0]
            assert written >= 1   # the new right was written, uncommitted
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
            assert conn.execute("SELECT stage FROM reg.case WHERE case_no = %s",
                                (case_no,)).fetchone()[0] == "reviewing"
            # and the case can still be entered afterwards, completely
            out = _enter_after_kill(env, conn, case_no)
        assert out["certificate_nos"]
    finally:
        if proc.poll() is None:
            proc.kill()


def _enter_after_kill(env, conn, case_no: str) -> dict:
    return wf.advance(conn, env["cases"], env["keys"], env["actor"], case_no, Action.REGISTER)


def _swallow(fn) -> None:  # noqa: ANN001
    try:
        fn()
    except httpx.HTTPError:
        pass

