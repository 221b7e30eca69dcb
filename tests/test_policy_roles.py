"""Each role sees exactly its fields, table-driven over ``cadastre.access.privacy.POLICY``.

For every caller — the public, an interested party (with purpose), a registrar, a surveyor, an
auditor, a department key granted everything the policy lets departments see, a narrow
department key, an owner on their own unit and the same owner on someone else's — a unit, its
parcel, its building (with floors), the building's unit table (楼盘表) and what-is-here are read
through the real endpoints of the demo app. The expected field set is computed independently:
the full record from the domain query (``cadastre.query.features``, every sensitive field read),
filtered by ``visible_fields(entity, role)`` and the key's grants; values must equal the record's
(or its mask where the policy says MASKED).
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic_core import to_jsonable_python

from cadastre.access import apikeys
from cadastre.access.accounts import create_account
from cadastre.access.pii import load_cipher
from cadastre.access.privacy import POLICY, Access, Role, access, visible_fields
from cadastre.query import features as F
from cadastre.settings import PROJECT_ROOT, Settings

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
ROLE_NAMES = [role.value for role in Role]
PURPOSE = {"X-Purpose": "enforcement", "X-Case-Ref": "ZJ-ZX-2025-000042"}
ACCOUNTS = {"int.policy": Role.INTERESTED, "sur.policy": Role.SURVEYOR,
            "aud.policy": Role.AUDITOR}
PASSWORD = "policy test password"
# keys next to the policy fields that are not records' fields: geometry and structure
STRUCTURE = {"unit": {"kind", "geometry", "bbox", "center", "floor", "building", "at_point"},
             "parcel": {"kind", "geometry", "bbox", "center", "buildings"},
             "building": {"kind", "geometry", "bbox", "center", "floors", "units"},
             "floor": {"units"}}


# ------------------------------------------------------------------ the sample and the callers
_SAMPLE = """
SELECT r.unit_code, r.certificate_no, p.name_enc, p.id_number_enc, u.building_code,
       u.parcel_code
FROM cad.right_record r
JOIN cad.right_party rp ON rp.right_version_id = r.version_id AND rp.role = 1
JOIN pii.party p USING (party_id)
JOIN cad.unit u ON u.unit_code = r.unit_code AND u.valid_to IS NULL
JOIN cad.unit_status s ON s.unit_code = r.unit_code
WHERE r.kind = 'ownership' AND r.valid_to IS NULL AND r.status = 1 AND p.party_type = 1
  AND s.mortgaged AND u.building_code IS NOT NULL
  AND (SELECT count(*) FROM cad.right_party x WHERE x.right_version_id = r.version_id
       AND x.role = 1) = 1
ORDER BY r.unit_code LIMIT 1
"""


@pytest.fixture(scope="module")
def sample(demo_url: str, test_settings: Settings) -> dict[str, Any]:
    cipher = load_cipher(test_settings)
    with psycopg.connect(demo_url) as conn:
        row = conn.execute(_SAMPLE).fetchone()
        assert row, "the demo has a mortgaged unit with one individual owner"
        other = conn.execute(
            "SELECT u.unit_code FROM cad.unit u JOIN cad.unit_status s USING (unit_code) "
            "WHERE u.valid_to IS NULL AND u.building_code = %s AND u.unit_code <> %s "
            "AND s.registration_status = 'registered' ORDER BY u.unit_code LIMIT 1",
            (row[4], row[0])).fetchone()
    return {"unit": row[0], "certificate_no": row[1], "name": cipher.decrypt(row[2]),
            "id_number": cipher.decrypt(row[3]), "building": row[4], "parcel": row[5],
            "other_unit": other[0] if other else None}


def _full(demo_url: str, coro_fn) -> Any:  # type: ignore[no-untyped-def]
    async def run() -> Any:
        conn = await psycopg.AsyncConnection.connect(demo_url)
        async with conn:
            await conn.execute("SET search_path = cad, public")
            return await coro_fn(conn)

    # in a thread of its own: the session's browser (Playwright's sync API, started by an
    # earlier module) keeps an event loop running in this one
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="module")
def full(demo_url: str, sample: dict[str, Any]) -> dict[str, Any]:
    """The domain's full records (every sensitive field read), independent of any role."""
    everything = F.Sensitive(certificate_all=True, owner_count=True)
    unit = _full(demo_url, lambda c: F.unit(c, sample["unit"], everything))
    other = _full(demo_url, lambda c: F.unit(c, sample["other_unit"], everything))
    parcel = _full(demo_url, lambda c: F.parcel(c, sample["parcel"]))
    building = _full(demo_url, lambda c: F.building(c, sample["building"]))
    table = _full(demo_url, lambda c: F.building_table(c, sample["building"], everything))
    lon, lat = building.center
    here = _full(demo_url, lambda c: F.here(c, lon, lat, None))
    assert unit.record["mortgaged"] is True and unit.record["certificate_no"]
    return {"unit": unit, "other": other, "parcel": parcel, "building": building,
            "table": table, "here": here, "point": (lon, lat)}


@pytest.fixture(scope="module")
def callers(demo_client, demo_url: str, registrar_token: str, test_settings: Settings,
            sample: dict[str, Any]) -> dict[str, dict[str, Any]]:
    with psycopg.connect(demo_url, autocommit=True) as conn:
        for user, role in ACCOUNTS.items():
            if not conn.execute("SELECT 1 FROM auth.account WHERE username = %s",
                                (user,)).fetchone():
                create_account(conn, user, PASSWORD, role)
        hkey = apikeys.hashing_key(test_settings)
        suffix = uuid.uuid4().hex[:8]
        all_key, all_token = apikeys.create_key(
            conn, hkey, f"policy-all-{suffix}", ["330106"],
            ["unit.*", "parcel.*", "building.*", "floor.*"])
        narrow_key, narrow_token = apikeys.create_key(
            conn, hkey, f"policy-narrow-{suffix}", ["330106"], ["unit.unit_code", "unit.seat",
                                                                "building.name"])
        _, elsewhere_token = apikeys.create_key(
            conn, hkey, f"policy-elsewhere-{suffix}", ["330102"], ["unit.*"])

    def login(user: str) -> dict[str, str]:
        r = demo_client.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    v = demo_client.post("/api/v1/owner/verify", json={
        "name": sample["name"], "id_number": sample["id_number"],
        "certificate_no": sample["certificate_no"]})
    assert v.status_code == 200, v.text
    assert sample["unit"] in v.json()["units"]
    owner = {"Authorization": f"Bearer {v.json()['access_token']}"}
    out = {
        "public": {"role": Role.PUBLIC, "headers": {}},
        "interested": {"role": Role.INTERESTED, "headers": {**login("int.policy"), **PURPOSE}},
        "registrar": {"role": Role.REGISTRAR,
                      "headers": {"Authorization": f"Bearer {registrar_token}"}},
        "surveyor": {"role": Role.SURVEYOR, "headers": login("sur.policy")},
        "auditor": {"role": Role.AUDITOR, "headers": login("aud.policy")},
        "department": {"role": Role.DEPARTMENT, "grants": all_key.fields,
                       "headers": {"X-API-Key": all_token, **PURPOSE}},
        "department-narrow": {"role": Role.DEPARTMENT, "grants": narrow_key.fields,
                              "headers": {"X-API-Key": narrow_token, **PURPOSE}},
        "owner": {"role": Role.OWNER, "headers": owner, "own": {sample["unit"]}},
        "elsewhere": {"headers": {"X-API-Key": elsewhere_token, **PURPOSE}},
        "_keys": {"all": all_key, "narrow": narrow_key},
    }
    yield out
    with psycopg.connect(demo_url, autocommit=True) as conn:
        conn.execute("UPDATE auth.api_key SET disabled = true WHERE name LIKE %s",
                     (f"policy-%-{suffix}",))


ROLES = ["public", "interested", "registrar", "surveyor", "auditor", "department",
         "department-narrow", "owner"]


# ------------------------------------------------------------------ the expectation
def expected(entity: str, record: dict[str, Any], caller: dict[str, Any],
             unit_code: str | None = None) -> dict[str, Any]:
    """What the policy lets ``caller`` receive of ``record``, computed from POLICY directly."""
    role = caller["role"]
    if role is Role.OWNER and entity == "unit" and unit_code not in caller.get("own", ()):
        role = Role.PUBLIC   # someone else's unit: as the public sees it
    grants = caller.get("grants")
    out = {}
    for name, value in record.items():
        if name not in visible_fields(entity, role):
            continue
        if grants and f"{entity}.{name}" not in grants:
            continue
        how = access(entity, name, role)
        out[name] = POLICY[entity][name].masker(value) if how is Access.MASKED else value
    return to_jsonable_python(out)


def check(entity: str, got: dict[str, Any], record: dict[str, Any], caller: dict[str, Any],
          unit_code: str | None = None) -> None:
    want = expected(entity, record, caller, unit_code)
    fields = {k: v for k, v in got.items() if k not in STRUCTURE.get(entity, set())}
    assert set(fields) == set(want), (entity, sorted(set(fields) ^ set(want)))
    assert fields == want, entity


def test_policy_covers_the_domain_records(full: dict[str, Any]) -> None:
    """Every field the domain queries produce has a policy entry (else it could never be shown,
    and the table-driven tests below would not cover it)."""
    for entity, rec in (("unit", full["unit"].record), ("parcel", full["parcel"].record),
                        ("building", full["building"].record),
                        ("floor", full["building"].related["floors"][0])):
        unknown = set(rec) - set(POLICY[entity])
        assert not unknown, (entity, unknown)


@pytest.mark.parametrize("who", ROLES)
def test_unit_detail_fields(demo_client, callers, full, sample, who: str) -> None:
    caller = callers[who]
    r = demo_client.get(f"/api/v1/units/{sample['unit']}", headers=caller["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    rec = full["unit"]
    check("unit", body, rec.record, caller, sample["unit"])
    check("floor", body["floor"], rec.related["floor"], caller)
    check("building", body["building"], rec.related["building"], caller)
    if caller["role"] in (Role.PUBLIC, Role.SURVEYOR, Role.AUDITOR):
        assert "mortgaged" not in body and "certificate_no" not in body
    if who == "department":
        assert body["certificate_no"] != sample["certificate_no"]
        assert "*" in body["certificate_no"] and body["mortgaged"] is True
    if who in ("owner", "registrar"):
        assert body["certificate_no"] == sample["certificate_no"]


@pytest.mark.parametrize("who", ROLES)
def test_parcel_and_building_fields(demo_client, callers, full, sample, who: str) -> None:
    caller = callers[who]
    p = demo_client.get(f"/api/v1/parcels/{sample['parcel']}", headers=caller["headers"])
    assert p.status_code == 200, p.text
    check("parcel", p.json(), full["parcel"].record, caller)
    for got, rec in zip(p.json()["buildings"], full["parcel"].related["buildings"], strict=True):
        check("building", got, rec, caller)
    b = demo_client.get(f"/api/v1/buildings/{sample['building']}", headers=caller["headers"])
    assert b.status_code == 200, b.text
    check("building", b.json(), full["building"].record, caller)
    for got, rec in zip(b.json()["floors"], full["building"].related["floors"], strict=True):
        check("floor", got, rec, caller)


@pytest.mark.parametrize("who", ROLES)
def test_building_table_fields(demo_client, callers, full, sample, who: str) -> None:
    caller = callers[who]
    r = demo_client.get(f"/api/v1/buildings/{sample['building']}/table",
                        headers=caller["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    table = full["table"]
    check("building", body["building"], table.building, caller)
    got_units = {u["unit_code"]: u for fl in body["floors"] for u in fl["units"]}
    want_units = [u for fl in table.floors for u in fl["units"]]
    assert len(got_units) == len(want_units) >= 2
    seen_own = False
    for rec in want_units:
        check("unit", got_units[rec["unit_code"]], rec, caller, rec["unit_code"])
        seen_own |= rec["unit_code"] == sample["unit"]
    assert seen_own


@pytest.mark.parametrize("who", ROLES)
def test_what_is_here_fields(demo_client, callers, full, who: str) -> None:
    caller = callers[who]
    lon, lat = full["point"]
    r = demo_client.get("/api/v1/here", params={"lon": lon, "lat": lat},
                        headers=caller["headers"])
    assert r.status_code == 200, r.text
    body, here = r.json(), full["here"]
    if here.parcel is not None:
        check("parcel", body["parcel"], here.parcel.record, caller)
    assert len(body["buildings"]) == len(here.buildings) >= 1
    for got, f in zip(body["buildings"], here.buildings, strict=True):
        check("building", got, f.record, caller)
    assert len(body["units"]) == len(here.units)
    for got, rec in zip(body["units"], here.units, strict=True):
        check("unit", got, {k: v for k, v in rec.items() if k != "at_point"}, caller,
              rec["unit_code"])


# ------------------------------------------------------------------ scope and lawful purpose
def test_owner_sees_another_owners_unit_only_as_the_public(demo_client, callers, full, sample
                                                          ) -> None:
    owner = callers["owner"]
    r = demo_client.get(f"/api/v1/units/{sample['other_unit']}", headers=owner["headers"])
    assert r.status_code == 200
    check("unit", r.json(), full["other"].record, {"role": Role.PUBLIC})
    assert "certificate_no" not in r.json() and "mortgaged" not in r.json()
    # the owner's own endpoints: someone else's unit does not exist for them
    mine = demo_client.get(f"/api/v1/owner/units/{sample['unit']}", headers=owner["headers"])
    assert mine.status_code == 200
    theirs = demo_client.get(f"/api/v1/owner/units/{sample['other_unit']}",
                             headers=owner["headers"])
    unknown = demo_client.get(f"/api/v1/owner/units/{'9' * 28}", headers=owner["headers"])
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()


def test_department_keys_are_scoped_to_counties(demo_client, callers, sample) -> None:
    h = callers["elsewhere"]["headers"]
    r = demo_client.get(f"/api/v1/units/{sample['unit']}", headers=h)
    unknown = demo_client.get(f"/api/v1/units/{'9' * 28}", headers=h)
    assert r.status_code == unknown.status_code == 404 and r.json() == unknown.json()
    assert demo_client.get(f"/api/v1/buildings/{sample['building']}/table",
                           headers=h).status_code == 404
    assert demo_client.get(f"/api/v1/parcels/{sample['parcel']}", headers=h).status_code == 404


def test_purpose_is_required_and_audited(demo_client, demo_url, callers, sample) -> None:
    for who in ("interested", "department"):
        bare = {k: v for k, v in callers[who]["headers"].items() if not k.startswith("X-P")
                and not k.startswith("X-C")}
        r = demo_client.get(f"/api/v1/units/{sample['unit']}", headers=bare)
        assert r.status_code == 400 and r.json()["error"]["code"] == "PURPOSE_REQUIRED"
    key = callers["_keys"]["all"]
    r = demo_client.get(f"/api/v1/units/{sample['unit']}", headers=callers["department"]["headers"])
    assert r.status_code == 200
    with psycopg.connect(demo_url) as conn:
        row = conn.execute("SELECT role, action, target, purpose, case_ref FROM audit.log "
                           "WHERE actor = %s ORDER BY seq DESC LIMIT 1",
                           (f"department:{key.key_id}",)).fetchone()
        interested = conn.execute(
            "SELECT l.purpose, l.case_ref FROM audit.log l JOIN auth.account a "
            "ON l.actor = a.account_id::text WHERE a.username = 'int.policy' "
            "ORDER BY l.seq DESC LIMIT 1").fetchone()
    assert row == ("department", "unit.read", sample["unit"], "enforcement", "ZJ-ZX-2025-000042")
    assert interested == ("enforcement", "ZJ-ZX-2025-000042")


def test_policy_table_as_shipped() -> None:
    """The policy table (for the closing note) has a row per field and a column per role."""
    from cadastre.access.privacy import policy_table

    rows = policy_table()
    assert {r["entity"] for r in rows} == set(POLICY)
    assert all(set(r) == {"entity", "field", *(role.value for role in Role)} for r in rows)
    party = {r["field"]: r for r in rows if r["entity"] == "party"}
    assert party["name"]["public"] == party["name"]["interested"] == "-"
    assert party["id_number"]["public"] == "-"
    # no role but the registrar and the owner sees any identity field in full
    for field in ("name", "id_number", "phone", "address"):
        assert {r for r in ROLE_NAMES if party[field][r] == "full"} <= {"registrar", "owner"}
    roles = [role.value for role in Role]
    lines = ["| entity | field | " + " | ".join(roles) + " |",
             "|---|---|" + "---|" * len(roles)]
    lines += [f"| {r['entity']} | {r['field']} | " + " | ".join(r[x] for x in roles) + " |"
              for r in rows]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "policy_table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    from cadastre.access.privacy import policy_markdown

    doc = Path(__file__).parents[1] / "docs" / "privacy-policy.md"
    assert doc.read_text(encoding="utf-8") == policy_markdown(), \
        ("docs/privacy-policy.md is stale: "
         "python -m cadastre.access.privacy > docs/privacy-policy.md")
