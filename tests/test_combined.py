"""Combined registrations on a real register: each mode's one 登簿 leaves the register exactly as
its constituent registrations entered one by one as ordinary cases (two identical copies of the
district, the same units), with the owner, the mortgages current and released, and their ranks
as the mode intends; and a combined case over HTTP shows its parts in their order."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from cadastre.access.pii import audit_key, load_cipher
from cadastre.access.privacy import Role
from cadastre.cases import workflow as wf
from cadastre.settings import CasesSettings, Settings
from tests.combined_support import (
    BUYER,
    BUYER_BANK,
    MORTGAGE,
    SCOPE_CHANGE,
    current,
    enter,
    holder_hash,
    meaning,
    units,
)
from tests.conftest import app_data_dir, client_for

OBLIGOR_BUYER = dataclasses.replace(BUYER, role="obligor")
BANK_PART = dataclasses.replace(BUYER_BANK, part="buyer_mortgage")

# mode → (unit state, parties, request, the same as ordinary cases: (type, parties, request,
# target = the seller's mortgage))
MODES = {
    26: ("mortgaged", [BUYER], {"transaction_price": "300", "mortgage_change": SCOPE_CHANGE},
         [(7, [BUYER], {"transaction_price": "300"}, False),
          (10, [OBLIGOR_BUYER], SCOPE_CHANGE, False)]),
    27: ("mortgaged", [BUYER, BANK_PART], {"transaction_price": "300",
                                          "buyer_mortgage": MORTGAGE},
         [(7, [BUYER], {"transaction_price": "300"}, False),
          (9, [BUYER_BANK, OBLIGOR_BUYER], MORTGAGE, False),
          (12, [], {}, True)]),
    28: ("mortgaged", [BUYER, BUYER_BANK], {"transaction_price": "300",
                                           "mortgage_change": SCOPE_CHANGE},
         [(7, [BUYER], {"transaction_price": "300"}, False),
          (11, [BUYER_BANK], {}, False),
          (10, [OBLIGOR_BUYER], SCOPE_CHANGE, False)]),
    29: ("mortgaged", [BUYER, BUYER_BANK], {"price": "300", "secured_amount": "180"},
         [(13, [BUYER], {"price": "300"}, False), (14, [BUYER_BANK], {"secured_amount": "180"},
                                                   False)]),
    15: ("bare", [BUYER, BUYER_BANK], {"price": "300", "secured_amount": "180"},
         [(13, [BUYER], {"price": "300"}, False), (14, [BUYER_BANK], {"secured_amount": "180"},
                                                   False)]),
}


@pytest.fixture(scope="module")
def twins(small_district, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """Two identical copies of the small district: one takes the combined cases, the other the
    same registrations one by one."""
    accounts = [("reg.combined", "registrar password", Role.REGISTRAR, "合并登簿员")]
    combined, stepwise = (small_district("comb", accounts), small_district("step", accounts))
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("combined_app"))
    settings = Settings(storage={"data_dir": data_dir})
    keys = wf.Keys(load_cipher(settings), audit_key(settings))
    env = {"settings": settings, "keys": keys, "data_dir": data_dir, "cases": CasesSettings(),
           "actor": wf.Actor("test", "registrar", "测试登簿员")}
    picked: dict[int, str] = {}
    taken: dict[str, int] = {}
    for mode, (state, *_rest) in MODES.items():
        picked[mode] = units(combined, state, 1, taken.get(state, 0))[0]
        taken[state] = taken.get(state, 0) + 1
    yield {**env, "combined": combined, "stepwise": stepwise, "units": picked}


@pytest.mark.parametrize("mode", list(MODES))
def test_one_entry_equals_the_parts_one_by_one(twins, mode: int) -> None:
    unit = twins["units"][mode]
    _, parties, request, steps = MODES[mode]
    assert meaning(twins["combined"], unit) == meaning(twins["stepwise"], unit)
    seller_mortgage = current(twins["stepwise"], unit, "mortgage")
    with psycopg.connect(twins["combined"]) as conn:
        out = enter(twins, conn, mode, unit, parties, request)
    with psycopg.connect(twins["stepwise"]) as conn:
        for bt, step_parties, step_request, on_seller in steps:
            target = seller_mortgage[0]["right_id"] if on_seller else None
            enter(twins, conn, bt, unit, step_parties, step_request, target)
    assert [p["seq"] for p in out["parts"]] == list(range(1, len(steps) + 1))
    assert [p["business_type"] for p in out["parts"]] == [s[0] for s in steps]
    assert meaning(twins["combined"], unit) == meaning(twins["stepwise"], unit)
    _expected(twins, mode, unit, seller_mortgage)


def _expected(twins: dict, mode: int, unit: str, seller_mortgage: list[dict]) -> None:
    """What each mode means for the owner and the mortgages."""
    url, cipher = twins["combined"], twins["keys"].cipher
    buyer, bank = holder_hash(cipher, BUYER), holder_hash(cipher, BUYER_BANK)
    owners = current(url, unit, "ownership")
    mortgages = current(url, unit, "mortgage")
    if mode in (26, 27, 28):
        assert len(owners) == 1 and owners[0]["parties"] == [buyer]
        assert len(mortgages) == 1                      # one mortgage in force afterwards
        assert holder_hash(cipher, BUYER, 2) in mortgages[0]["parties"]   # the buyer pledges
    if mode == 26:   # same lender: the seller's mortgage continues, now with the buyer
        assert mortgages[0]["right_id"] == seller_mortgage[0]["right_id"]
        assert bank not in mortgages[0]["parties"]
    if mode in (27, 28):   # the buyer's lender holds it; the seller's is history
        assert bank in mortgages[0]["parties"]
        assert mortgages[0]["right_id"] != seller_mortgage[0]["right_id"]
        with psycopg.connect(url) as conn:
            old = conn.execute("SELECT max(status) FROM cad.right_record WHERE right_id = %s",
                               (seller_mortgage[0]["right_id"],)).fetchone()[0]
        assert old == 2
    if mode in (29, 15):   # two pre-notices, nothing else moves
        notices = current(url, unit, "pre_notice")
        owned = mode == 29
        assert sorted(n["notice_kind"] for n in notices) == ([2, 4] if owned else [1, 3])
        assert len(mortgages) == (1 if owned else 0)
        assert all(o["parties"] != [buyer] for o in owners)


def test_combined_case_over_http_shows_its_parts_in_order(twins) -> None:
    """三合一 from the window: the parts in order (the seller's release last), 登簿 of all, the
    buyer's lender first in rank afterwards, the seller's mortgage released."""
    url = twins["combined"]
    unit = units(url, "mortgaged", 1, 10)[0]
    with client_for(url, twins["settings"]) as client:
        token = client.post("/api/v1/auth/login", json={
            "username": "reg.combined", "password": "registrar password"}).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        catalogue = {b["seq"]: b for b in client.get("/api/v1/business-types").json()}
        assert [p["key"] for p in catalogue[27]["parts"]] == ["transfer", "buyer_mortgage",
                                                              "seller_release"]
        assert catalogue[27]["parts"][-1]["last"] and catalogue[27]["sale"]
        assert [p["business_type"] for p in catalogue[15]["parts"]] == [13, 14]
        body = {"business_type": 27, "unit_codes": [unit], "parties": [
            {"name": BUYER.name, "id_number": BUYER.id_number},
            {"name": BUYER_BANK.name, "id_number": BUYER_BANK.id_number, "role": "mortgagee",
             "id_type": 8, "party_type": 2, "part": "buyer_mortgage"}],
            "request": {"transaction_price": "388", "buyer_mortgage": MORTGAGE}}
        bad = client.post("/api/v1/cases", headers=h, json={
            **body, "parties": [{**body["parties"][1], "part": "no_such_part"}]})
        assert bad.status_code == 400 and bad.json()["code"] == "PARTY_PART"
        bad = client.post("/api/v1/cases", headers=h, json={
            **body, "request": {"buyer_mortgage": {"transaction_price": "1"}}})
        assert bad.json()["code"] == "REQUEST_FIELD_UNKNOWN"
        r = client.post("/api/v1/cases", headers=h, json=body)
        assert r.status_code == 201, r.text
        case_no = r.json()["case_no"]
        detail = client.get(f"/api/v1/cases/{case_no}", headers=h).json()
        assert [(p["seq"], p["key"], p["last"], p["entered"]) for p in detail["parts"]] == [
            (1, "transfer", False, False), (2, "buyer_mortgage", False, False),
            (3, "seller_release", True, False)]
        assert {p["case_part"] for p in detail["parties"]} == {None, "buyer_mortgage"}
        for action in ({"action": "review", "review": {"step": "初审", "opinion": "同意"}},
                       {"action": "register"}):
            r = client.post(f"/api/v1/cases/{case_no}/actions", headers=h, json=action)
            assert r.status_code == 200, r.text
        entered = r.json()
        detail = client.get(f"/api/v1/cases/{case_no}", headers=h).json()
        registry = client.get(f"/api/v1/registry/units/{unit}", headers=h).json()
    assert [p["key"] for p in entered["parts"]] == ["transfer", "buyer_mortgage",
                                                    "seller_release"]
    assert len(entered["certificate_nos"]) == 2       # the buyer's certificate, the bank's proof
    assert all(p["entered"] for p in detail["parts"])
    mortgages = [x for x in registry["records"] if x["kind"] == "mortgage"]
    live = [x for x in mortgages if x["in_force"]]
    assert len(live) == 1 and live[0]["priority"] == 1 and live[0]["business_no"] == case_no
    assert any(x["priority"] is None and x["valid_to"] for x in mortgages)
    cancelled = [x for x in registry["records"] if x["kind"] == "cancellation"
                 and x["business_no"] == case_no]
    assert len(cancelled) == 1
    with psycopg.connect(url) as conn:
        events = [r[0] for r in conn.execute(
            "SELECT type FROM share.event WHERE case_no = %s ORDER BY event_id", (case_no,))]
    assert events == ["case.accepted", "transfer.recorded", "mortgage.registered",
                      "mortgage.cancelled"]
