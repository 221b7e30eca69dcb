"""一码关联 (GET /api/v1/registry/units/{unit_code}) on the shared demo district: registrars only,
every record of the code with details and decrypted parties, the land's records, as-of state,
lineage, county scope and the audit trail. Read-only on the demo database (audit rows aside).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.auth import issue_token
from cadastre.access.pii import load_cipher
from cadastre.access.privacy import Role
from cadastre.query.records import rights_as_of
from cadastre.settings import Settings
from tests.conftest import app_data_dir, client_for

PURPOSE = {"X-Purpose": "litigation", "X-Case-Ref": "ZJ-2024-000123"}


@pytest.fixture(scope="module")
def client(demo_url: str, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[TestClient]:
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("registry_api"))
    with client_for(demo_url, Settings(storage={"data_dir": data_dir}),
                    api={"rate_limit_enabled": False}) as c:   # (limits: their own tests)
        yield c


def bearer(settings: Settings, role: Role, **kw: Any) -> dict[str, str]:
    token, _ = issue_token(settings, role, str(uuid.uuid4()), **kw)
    headers = {"Authorization": f"Bearer {token}"}
    if role in (Role.INTERESTED, Role.DEPARTMENT):
        headers.update(PURPOSE)
    return headers


@pytest.fixture(scope="module")
def registrar(test_settings: Settings) -> dict[str, str]:
    return bearer(test_settings, Role.REGISTRAR)


@pytest.fixture(scope="module")
def transferred(demo_url: str) -> str:
    """A unit sold once (a historical and a current ownership) with a cancelled mortgage."""
    with psycopg.connect(demo_url) as conn:
        row = conn.execute("""
            SELECT unit_code FROM cad.right_record GROUP BY unit_code
            HAVING count(*) FILTER (WHERE kind = 'ownership' AND status = 2) = 1
               AND count(*) FILTER (WHERE kind = 'ownership' AND status = 1) = 1
               AND count(*) FILTER (WHERE kind = 'cancellation') >= 1
            ORDER BY unit_code LIMIT 1""").fetchone()
    assert row is not None
    return row[0]


def url(code: str) -> str:
    return f"/api/v1/registry/units/{code}"


def test_only_registrars(client: TestClient, test_settings: Settings, transferred: str) -> None:
    r = client.get(url(transferred))
    assert r.status_code == 401 and r.json()["error"]["code"] == "LOGIN_REQUIRED"
    for role in (Role.SURVEYOR, Role.INTERESTED, Role.DEPARTMENT, Role.AUDITOR):
        r = client.get(url(transferred), headers=bearer(test_settings, role))
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN", role
    owner, _ = issue_token(test_settings, Role.OWNER, "owner-x", units=(transferred,))
    r = client.get(url(transferred), headers={"Authorization": f"Bearer {owner}"})
    assert r.status_code == 403


def test_all_records_with_details_and_parties(client: TestClient, registrar: dict[str, str],
                                              demo_conn: psycopg.Connection,
                                              test_settings: Settings, transferred: str
                                              ) -> None:
    body = client.get(url(transferred), headers=registrar)
    assert body.status_code == 200, body.text
    assert body.headers["cache-control"] == "no-store"
    out = body.json()
    rows = demo_conn.execute("""
        SELECT version_id, right_id::text, kind, status, certificate_no, valid_to IS NULL
        FROM cad.right_record WHERE unit_code = %s ORDER BY valid_from, version_id""",
                             (transferred,)).fetchall()
    got = [(r["version_id"], r["id"], r["kind"], r["status"], r["certificate_no"],
            r["in_force"]) for r in out["records"]]
    assert got == [(v, i, k, s, c, s == 1 and cur) for v, i, k, s, c, cur in rows]
    assert {r["kind"] for r in out["records"]} >= {"ownership", "mortgage", "cancellation"}
    labels = {r["kind"]: r["kind_label"] for r in out["records"]}
    assert labels["ownership"] == "房屋所有权" and labels["cancellation"] == "注销登记"

    # details come from each kind's table
    for rec in out["records"]:
        if rec["kind"] == "mortgage":
            amount, mtype = demo_conn.execute(
                "SELECT secured_amount::float8, mortgage_type FROM cad.mortgage_detail "
                "WHERE right_version_id = %s", (rec["version_id"],)).fetchone()
            assert rec["detail"]["secured_amount"] == amount == rec["secured_amount"]
            assert rec["detail"]["mortgage_type_label"] == {1: "一般抵押", 2: "最高额抵押"}[mtype]
        if rec["kind"] == "cancellation":
            cancelled = rec["detail"]["cancelled_right_id"]
            assert cancelled in {r["id"] for r in out["records"] if r["kind"] == "mortgage"}
        if rec["kind"] == "ownership":
            assert rec["detail"]["building_area"] > 0 and rec["detail"]["house_use_label"]

    # parties decrypted: the same as decrypting the rows ourselves
    cipher = load_cipher(test_settings)
    for rec in out["records"]:
        expected = [
            (str(pid), role, cipher.decrypt(n), cipher.decrypt(i), cipher.decrypt(p))
            for pid, role, n, i, p in demo_conn.execute("""
                SELECT p.party_id, rp.role, p.name_enc, p.id_number_enc, p.phone_enc
                FROM cad.right_party rp JOIN pii.party p USING (party_id)
                WHERE rp.right_version_id = %s ORDER BY rp.role, rp.seq""",
                                                        (rec["version_id"],))]
        assert [(p["id"], p["role"], p["name"], p["id_number"], p["phone"])
                for p in rec["parties"]] == expected
    owners = [p for r in out["records"] if r["kind"] == "ownership" for p in r["parties"]]
    assert owners and all(p["role_label"] == "权利人" and len(p["id_number"]) == 18
                          for p in owners)

    # the unit, its building and parcel, and the land under it
    status = demo_conn.execute(
        "SELECT registration_status, mortgaged, seized, pre_noticed, objected "
        "FROM cad.unit_status WHERE unit_code = %s", (transferred,)).fetchone()
    unit = out["unit"]
    assert (unit["registration_status"], unit["mortgaged"], unit["seized"],
            unit["pre_noticed"], unit["objected"]) == status
    current = [r for r in out["records"] if r["kind"] == "ownership" and r["in_force"]]
    assert unit["certificate_no"] == current[0]["certificate_no"]
    assert out["building"]["building_code"] == transferred[:24]
    assert out["parcel"]["parcel_code"] == transferred[:19]
    land = demo_conn.execute("SELECT count(*) FROM cad.right_record WHERE unit_code = %s",
                             (transferred[:19] + "W00000000",)).fetchone()[0]
    assert out["land_code"] == transferred[:19] + "W00000000"
    assert len(out["land_records"]) == land >= 1
    assert {r["unit_code"] for r in out["land_records"]} == {out["land_code"]}


def test_as_of(client: TestClient, registrar: dict[str, str], demo_conn: psycopg.Connection,
               transferred: str) -> None:
    first, second = demo_conn.execute("""
        SELECT right_id::text, certificate_no, valid_from FROM cad.right_record
        WHERE unit_code = %s AND kind = 'ownership' ORDER BY valid_from""",
                                      (transferred,)).fetchall()
    at = second[2] - timedelta(days=1)
    r = client.get(url(transferred), headers=registrar, params={"as_of": at.isoformat()})
    assert r.status_code == 200, r.text
    out = r.json()
    in_force = {(str(x.right_id), x.valid_from) for x in rights_as_of(demo_conn, transferred, at)}
    got = {r["id"] for r in out["records"] if r["in_force"]}
    assert got == {i for i, _ in in_force} and first[0] in got and second[0] not in got
    assert all(r["valid_from"] <= at.isoformat().replace("+00:00", "Z")
               for r in out["records"])
    assert out["unit"]["registration_status"] == "registered"
    assert out["unit"]["certificate_no"] == first[1]
    # a date without a time or an offset is Beijing midnight
    day = at.date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=timezone(timedelta(hours=8)))
    r = client.get(url(transferred), headers=registrar, params={"as_of": day.isoformat()})
    assert {x["id"] for x in r.json()["records"] if x["in_force"]} == {
        str(x.right_id) for x in rights_as_of(demo_conn, transferred, midnight)}
    # before the registry knew anything of the code: not found; nonsense is refused
    r = client.get(url(transferred), headers=registrar, params={"as_of": "1990-01-01"})
    assert r.status_code == 404
    r = client.get(url(transferred), headers=registrar, params={"as_of": "yesterday"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "AS_OF_INVALID"


def test_land_code_lineage_and_easement(client: TestClient, registrar: dict[str, str],
                                        demo_conn: psycopg.Connection) -> None:
    child, parent, parent_code = demo_conn.execute("""
        SELECT c.parcel_code, l.parent_feature_id::text, p.parcel_code
        FROM cad.lineage l
        JOIN cad.parcel c ON c.feature_id = l.child_feature_id AND c.valid_to IS NULL
        JOIN cad.parcel p ON p.feature_id = l.parent_feature_id
        WHERE l.entity = 'parcel' ORDER BY c.parcel_code LIMIT 1""").fetchone()
    out = client.get(url(child + "W00000000"), headers=registrar).json()
    assert out["unit"] is None and out["parcel"]["parcel_code"] == child
    assert {"id": parent, "parcel_code": parent_code} in out["lineage"]["parcel"]["parents"]

    servient, dominant = demo_conn.execute(
        "SELECT unit_code, dominant_unit_code FROM cad.easement_detail e "
        "JOIN cad.right_record r ON r.version_id = e.right_version_id LIMIT 1").fetchone()
    for code in (servient, dominant):
        out = client.get(url(code), headers=registrar).json()
        easements = [r for r in out["records"] if r["kind"] == "easement"]
        assert easements and easements[0]["detail"]["dominant_unit_code"] == dominant
        assert easements[0]["detail"]["servient_unit_code"] == servient


def test_errors_scope_and_audit(client: TestClient, registrar: dict[str, str],
                                test_settings: Settings, demo_url: str,
                                transferred: str) -> None:
    r = client.get(url("330106001001GB0000"), headers=registrar)
    assert r.status_code == 400 and r.json()["error"]["code"] == "UNIT_CODE_LENGTH"
    r = client.get(url("330106001001GB00001X00010001"), headers=registrar)
    assert r.status_code == 400 and r.json()["error"]["code"].startswith("UNIT_CODE_")
    unknown = client.get(url("330106999999GB99999F00010001"), headers=registrar)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "UNIT_NOT_FOUND"
    # a house unit that never existed on an existing parcel is not found either
    nowhere = client.get(url(transferred[:20] + "0001" + "9999"), headers=registrar)
    assert (nowhere.status_code, nowhere.json()) == (404, unknown.json())
    elsewhere = client.get(url(transferred),
                           headers=bearer(test_settings, Role.REGISTRAR, counties=("110105",)))
    assert (elsewhere.status_code, elsewhere.json()) == (404, unknown.json())

    with psycopg.connect(demo_url) as conn:
        start = conn.execute("SELECT coalesce(max(seq), 0) FROM audit.log").fetchone()[0]
    out = client.get(url(transferred), headers=registrar).json()
    with psycopg.connect(demo_url) as conn:
        rows = conn.execute("SELECT action, role, target, result_count, outcome FROM audit.log "
                            "WHERE seq > %s AND target = %s", (start, transferred)).fetchall()
    n = len(out["records"]) + len(out["land_records"])
    assert rows == [("registry.unit", "registrar", transferred, n, "ok")]
