"""一码关联 documents over HTTP: a department's key files a contract under a unit code (stored by
content hash, parties encrypted, listed in the registrar's 一码关联 view, prices and parties for
staff only); bad files and bad codes get a clear 4xx and store nothing — no row, no party, no
file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cadastre.access import apikeys
from cadastre.access.privacy import Role
from cadastre.settings import Settings
from tests.combined_support import BUYER, OTHER_BUYER, units
from tests.conftest import app_data_dir
from tests.linked_support import (
    pdf_with_names_js,
    pdf_with_open_action_js,
    plain_pdf,
    png,
)

HEADERS = {"X-Purpose": "transaction", "X-Case-Ref": "WQ-2026-000777"}
MAX_BYTES = 64 * 1024


def _meta(no: str, **extra: object) -> str:
    return json.dumps({"doc_type": "sales_contract", "doc_no": no,
                       "issuer": "杭州市住房保障和房产管理局",
                       "issued_on": "2026-11-02", "price": "365.50", "parties": [
                           {"name": BUYER.name, "id_number": BUYER.id_number, "role": "buyer"},
                           {"name": OTHER_BUYER.name, "id_number": OTHER_BUYER.id_number,
                            "role": "seller"}], **extra}, ensure_ascii=False)


@pytest.fixture(scope="module")
def env(small_district, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory
        ) -> dict:
    url = small_district("linked", [("reg.docs", "registrar password", Role.REGISTRAR, "档案员")])
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("linked_app"))
    settings = Settings(storage={"data_dir": data_dir}, database={"url": url},
                        api={"document_max_bytes": MAX_BYTES})
    hkey = apikeys.hashing_key(settings)
    with psycopg.connect(url, autocommit=True) as conn:
        county = conn.execute("SELECT left(min(parcel_code), 6) FROM cad.parcel").fetchone()[0]
        _, housing = apikeys.create_key(conn, hkey, "housing", [county], ["unit.unit_code"])
        _, elsewhere = apikeys.create_key(conn, hkey, "elsewhere", ["110101"], ["unit.unit_code"])
    return {"url": url, "settings": settings, "data_dir": data_dir, "county": county,
            "housing": {"X-API-Key": housing, **HEADERS},
            "elsewhere": {"X-API-Key": elsewhere, **HEADERS}}


@pytest.fixture(scope="module")
def client(env: dict) -> Iterator[TestClient]:
    with TestClient(create_app(env["settings"])) as c:
        yield c


def _stored(env: dict) -> tuple[int, int, set[str]]:
    with psycopg.connect(env["url"]) as conn:
        docs = conn.execute("SELECT count(*) FROM reg.linked_document").fetchone()[0]
        parties = conn.execute("SELECT count(*) FROM pii.party").fetchone()[0]
    folder = Path(env["data_dir"]) / "documents"
    files = {p.name for p in folder.iterdir()} if folder.exists() else set()
    return docs, parties, files


def _post(client: TestClient, headers: dict, code: str, body: bytes, meta: str,
          name: str = "contract.pdf", ctype: str = "application/pdf"):  # noqa: ANN202
    return client.post(f"/api/v1/units/{code}/documents", headers=headers,
                       files={"file": (name, body, ctype)}, data={"meta": meta})


def test_a_department_files_a_contract_and_the_registrar_sees_it(env, client) -> None:
    (unit,) = units(env["url"], "owned", 1)
    body = plain_pdf("WQ-2026-000001")
    r = _post(client, env["housing"], unit, body, _meta("WQ-2026-000001"))
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["status"] == "valid" and receipt["code_kind"] == "unit"
    stored = Path(env["data_dir"]) / "documents" / receipt["sha256"]
    assert stored.read_bytes() == body and not stored.stat().st_mode & 0o222   # read-only
    again = _post(client, env["housing"], unit, body, _meta("WQ-2026-000001"))
    assert again.status_code == 400 and again.json()["code"] == "DOCUMENT_EXISTS"
    token = client.post("/api/v1/auth/login", json={
        "username": "reg.docs", "password": "registrar password"}).json()["access_token"]
    staff = {"Authorization": f"Bearer {token}"}
    registry = client.get(f"/api/v1/registry/units/{unit}", headers=staff).json()
    (doc,) = [d for d in registry["documents"] if d["doc_no"] == "WQ-2026-000001"]
    assert doc["price"] == 365.5 and doc["in_force"] and doc["issuer"].startswith("杭州市住房")
    assert {p["name"] for p in doc["parties"]} == {BUYER.name, OTHER_BUYER.name}
    assert {p["document_role"] for p in doc["parties"]} == {"buyer", "seller"}
    f = client.get(doc["links"]["file"], headers=staff)
    assert f.status_code == 200 and f.content == body
    assert f.headers["content-type"] == "application/pdf"
    # the department learns nothing beyond its receipt; its list access is refused
    assert client.get(f"/api/v1/units/{unit}/documents", headers=env["housing"]).status_code \
        == 403
    assert "price" not in receipt and "parties" not in receipt
    # the filing department revokes it; it stays listed, no longer in force
    r = client.post(f"/api/v1/documents/{doc['id']}/revoke", headers=env["housing"])
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    listed = client.get(f"/api/v1/units/{unit}/documents", headers=staff).json()["items"]
    assert [d["in_force"] for d in listed if d["id"] == doc["id"]] == [False]
    with psycopg.connect(env["url"]) as conn:
        actions = {r[0] for r in conn.execute(
            "SELECT action FROM audit.log WHERE target = %s", (unit,))}
    assert {"document.file", "document.revoke", "document.file.read"} <= actions


def test_permits_and_acceptance_under_building_and_project_codes(env, client) -> None:
    (unit,) = units(env["url"], "owned", 1, 1)
    building, parcel = unit[:24], unit[:19]
    meta = {"issuer": "杭州市城乡建设委员会", "issued_on": "2026-10-01"}
    r = _post(client, env["housing"], building, png(), json.dumps(
        {**meta, "doc_type": "completion_acceptance", "doc_no": "竣备字(2026)第9号"}),
        "scan.png", "image/png")
    assert r.status_code == 201 and r.json()["code_kind"] == "building", r.text
    r = _post(client, env["housing"], parcel, plain_pdf("permit"), json.dumps(
        {**meta, "doc_type": "presale_permit", "doc_no": "杭售许字(2025)第1号",
         "unit_codes": [unit]}, ensure_ascii=False))
    assert r.status_code == 201 and r.json()["code_kind"] == "parcel", r.text
    r = _post(client, env["housing"], unit, plain_pdf("x"), json.dumps(
        {**meta, "doc_type": "completion_acceptance", "doc_no": "竣备字(2026)第10号"}))
    assert r.json()["code"] == "DOCUMENT_SCOPE"


@pytest.mark.parametrize("case", ["text", "oversized", "oversized_declared", "js_names",
                                  "js_open_action", "damaged", "png_as_pdf_damaged",
                                  "unknown_unit", "malformed_code", "other_county",
                                  "bad_meta", "missing_buyer"])
def test_bad_uploads_are_refused_and_nothing_is_stored(env, client, case: str) -> None:
    (unit,) = units(env["url"], "owned", 1, 2)
    code, headers, meta = unit, env["housing"], _meta(f"WQ-BAD-{case}")
    body, name, ctype = plain_pdf(case), "contract.pdf", "application/pdf"
    expected = {"text": (400, "FILE_TYPE_UNSUPPORTED"), "oversized": (400, "FILE_TOO_LARGE"),
                "oversized_declared": (413, "BODY_TOO_LARGE"),
                "js_names": (400, "FILE_ACTIVE_CONTENT"),
                "js_open_action": (400, "FILE_ACTIVE_CONTENT"),
                "damaged": (400, "FILE_DAMAGED"), "png_as_pdf_damaged": (400, "FILE_DAMAGED"),
                "unknown_unit": (404, "UNIT_NOT_FOUND"),
                "malformed_code": (400, "UNIT_CODE_LOWERCASE"),
                "other_county": (403, "UNIT_OUT_OF_SCOPE"),
                "bad_meta": (400, "DOCUMENT_META_INVALID"),
                "missing_buyer": (400, "PARTY_REQUIRED")}[case]
    if case == "text":
        body, name, ctype = "买受人：欧阳明月".encode(), "contract.pdf", "application/pdf"
    elif case == "oversized":
        body = plain_pdf(case) + b"%" + b"x" * MAX_BYTES
    elif case == "oversized_declared":
        body = b"%PDF-1.7\n" + b"x" * (3 * 1024 * 1024)
    elif case == "js_names":
        body = pdf_with_names_js()
    elif case == "js_open_action":
        body = pdf_with_open_action_js()
    elif case == "damaged":
        body = plain_pdf(case)[:60]
    elif case == "png_as_pdf_damaged":
        body = png()[:30]
    elif case == "unknown_unit":
        code = unit[:20] + "99999999"
    elif case == "malformed_code":
        code = unit[:12] + unit[12:14].lower() + unit[14:]
    elif case == "other_county":
        headers = env["elsewhere"]
    elif case == "bad_meta":
        meta = "{not json"
    elif case == "missing_buyer":
        meta = json.dumps({**json.loads(_meta("WQ-BAD-nobuyer")), "parties": []})
    before = _stored(env)
    r = _post(client, headers, code, body, meta, name, ctype)
    assert (r.status_code, r.json()["code"]) == expected, r.text
    assert BUYER.name not in r.text and BUYER.id_number not in r.text
    assert _stored(env) == before
