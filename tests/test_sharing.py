"""Department sharing by push, against real receivers on loopback: signed deliveries the receiver
verifies with the documented recipe, payloads from the privacy policy per key (a utility's grant
of name and phone, a bank's own mortgages only), retries with idempotency, dead letters and
replay, the pull API with the same events, and the metrics."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cadastre.access import apikeys
from cadastre.access.accounts import create_account
from cadastre.access.pii import audit_key, load_cipher
from cadastre.access.privacy import Role
from cadastre.cases import workflow as wf
from cadastre.cases.application import Application, PartyInput
from cadastre.cases.model import Action
from cadastre.cases.rules import RuleViolation
from cadastre.settings import Settings
from cadastre.sharing import subscriptions as subs
from cadastre.sharing.delivery import Dispatcher
from tests.conftest import client_for
from tests.sharing_support import Receiver

BUYER = PartyInput("诸葛明亮", "11010519491231002X", phone="13912345678")
BANK_CODE = "91330100MA2BANKX0Q"
BANK = PartyInput("测试银行股份有限公司杭州分行", BANK_CODE, role="mortgagee", id_type=8,
                  party_type=2)


@pytest.fixture(scope="module")
def env(make_db, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    from cadastre.demo.load import load_demo

    url = make_db("sharing")
    cipher = load_cipher(test_settings)
    with psycopg.connect(url) as conn:
        load_demo(conn, cipher, parcels=60, seed=11)
    data_dir = tmp_path_factory.mktemp("sharing_app")
    (data_dir / "secrets.json").write_bytes((test_settings.data_dir / "secrets.json").read_bytes())
    settings = Settings(storage={"data_dir": data_dir}, api={"deliveries": False})
    hkey = apikeys.hashing_key(settings)
    tokens = {}
    with psycopg.connect(url, autocommit=True) as conn:
        create_account(conn, "reg.share", "registrar password", Role.REGISTRAR, "钱登簿")
        for name, fields, holder in (
                ("water", ["unit.unit_code", "unit.seat", "right.kind", "right.registered_at",
                           "party.name", "party.phone", "party.role"], None),
                ("power", ["unit.unit_code", "unit.seat", "right.kind"], None),
                ("bank", ["unit.unit_code", "right.kind", "right.registered_at", "party.name",
                          "party.role"], cipher.lookup_hash(BANK_CODE))):
            _, tokens[name] = apikeys.create_key(conn, hkey, name, ["330106"], fields,
                                                 holder_hash=holder)
    yield {"url": url, "settings": settings, "cipher": cipher, "tokens": tokens,
           "keys": wf.Keys(cipher, audit_key(settings)),
           "actor": wf.Actor("test", "registrar", "测试登簿员")}


def _free_units(url: str, n: int) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0].strip() for r in conn.execute(
            "SELECT r.unit_code FROM cad.right_record r WHERE r.kind = 'ownership' AND "
            "r.status = 1 AND NOT EXISTS (SELECT 1 FROM cad.right_record x WHERE x.unit_code = "
            "r.unit_code AND x.status = 1 AND x.kind NOT IN ('ownership', 'cancellation')) AND "
            "NOT EXISTS (SELECT 1 FROM reg.case c WHERE r.unit_code = ANY(c.unit_codes)) "
            "ORDER BY 1 LIMIT %s", (n,))]


def _enter(env, bt: int, unit: str, parties, request) -> str:
    s, keys, actor = env["settings"].cases, env["keys"], env["actor"]
    with psycopg.connect(env["url"]) as conn:
        no = wf.open_case(conn, s, keys, actor, Application(bt, (unit,), tuple(parties),
                                                            request=request)).case_no
        wf.advance(conn, s, keys, actor, no, Action.REVIEW, review=wf.Review("初审", "同意"))
        wf.advance(conn, s, keys, actor, no, Action.REGISTER)
    return no


def _subscribe(env, name: str, receiver: Receiver, key: str, types=(), max_attempts: int = 8):
    with psycopg.connect(env["url"]) as conn:
        sub, secret = subs.add(conn, env["cipher"], name, receiver.url, key, types,
                               max_attempts=max_attempts)
        conn.commit()
    receiver.secret = secret
    return sub


def test_transfer_reaches_utilities_signed_with_what_their_grants_allow(env) -> None:
    water, power = Receiver().start(), Receiver().start()
    _subscribe(env, "water-co", water, "water", ["transfer.recorded"])
    _subscribe(env, "power-co", power, "power", ["transfer.recorded"])
    (unit,) = _free_units(env["url"], 1)
    dispatcher = Dispatcher(env["url"], env["settings"]).start()
    try:
        case_no = _enter(env, 7, unit, [BUYER], {"transaction_price": "500"})
        water.wait_for(1)
        power.wait_for(1)
    finally:
        dispatcher.stop()
        water.stop()
        power.stop()
    assert water.bad_signatures == 0 and all(a["signed"] for a in water.attempts)
    (event,) = water.processed.values()
    assert event["type"] == "transfer.recorded" and event["units"][0]["unit_code"] == unit
    entered = [r for r in event["rights"] if r["change"] == "entered"]
    holders = [p for p in entered[0]["parties"] if p["role"] == 1]
    assert holders == [{"role": 1, "name": "诸葛明亮", "phone": "13912345678"}]
    assert case_no and "case" not in event      # the key was not granted case.case_no
    (plain,) = power.processed.values()
    text = str(plain)
    assert "诸葛" not in text and "13912345678" not in text and "110105" not in text
    assert plain["units"][0]["unit_code"] == unit and "seat" in plain["units"][0]


def test_retries_deliver_exactly_once_and_dead_letters_replay(env) -> None:
    flaky = Receiver(fail_first=2).start()
    _subscribe(env, "flaky-co", flaky, "power", ["transfer.recorded"])
    dead = Receiver()                            # not listening: every attempt fails
    dead_sub = _subscribe(env, "dead-co", dead, "power", ["transfer.recorded"], max_attempts=2)
    (unit,) = _free_units(env["url"], 1)
    dispatcher = Dispatcher(env["url"], env["settings"]).start()
    try:
        _enter(env, 7, unit, [BUYER], {"transaction_price": "520"})
        flaky.wait_for(1, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            with psycopg.connect(env["url"]) as conn:
                status = conn.execute(
                    "SELECT status, attempts, last_error FROM share.delivery WHERE "
                    "subscription_id = %s", (dead_sub.subscription_id,)).fetchall()
            if status and status[0][0] == "dead":
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status[0][1] == 2
        assert [a["signed"] for a in flaky.attempts] == [True, True, True]
        assert len(flaky.attempts) == 3 and len(flaky.processed) == 1
        # the dead receiver comes up; replay sends its dead letter
        dead.start()
        with psycopg.connect(env["url"]) as conn:
            n = subs.replay(conn, "dead-co", datetime.now(UTC) - timedelta(hours=1))
            conn.commit()
        assert n == 1
        dead.wait_for(1, timeout=30)
    finally:
        dispatcher.stop()
        flaky.stop()
        dead.stop()
    assert len(dead.processed) == 1


def test_a_bank_gets_its_own_mortgages_and_pull_gives_the_same(env) -> None:
    bank = Receiver().start()
    _subscribe(env, "bank-co", bank, "bank", ["mortgage.registered"])
    ours, theirs = _free_units(env["url"], 2)
    mortgage = {"mortgage_type": 1, "secured_amount": "200", "debt_start": "2026-12-01",
                "debt_end": "2046-12-01"}
    other_bank = PartyInput("另一银行", "91330100MA2OTHER01", role="mortgagee", id_type=8,
                            party_type=2)
    dispatcher = Dispatcher(env["url"], env["settings"]).start()
    try:
        _enter(env, 9, theirs, [other_bank], mortgage)
        _enter(env, 9, ours, [BANK], mortgage)
        bank.wait_for(1)
        time.sleep(1.5)                           # nothing else arrives
    finally:
        dispatcher.stop()
        bank.stop()
    assert len(bank.processed) == 1
    (event,) = bank.processed.values()
    assert event["units"][0]["unit_code"] == ours
    with client_for(env["url"], env["settings"]) as client:
        h = {"X-API-Key": env["tokens"]["bank"], "X-Purpose": "mortgage",
             "X-Case-Ref": "BANK-2026-001"}
        r = client.get("/api/v1/events", params={"types": "mortgage.registered"}, headers=h)
        assert r.status_code == 200, r.text
        pulled = r.json()["items"]
        assert [e["event_id"] for e in pulled] == [event["event_id"]]
        assert pulled[0] == event
        assert client.get("/api/v1/events").status_code == 401
        metrics = client.get("/metrics").text
    assert 'cadastre_deliveries_delivered{status="active",subscription="bank-co"} 1' in metrics
    assert "cadastre_cases_running" in metrics and "cadastre_jobs" in metrics


def test_events_are_written_with_their_change_or_not_at_all(env) -> None:
    """A refused 登簿 writes no event; an accepted case writes case.accepted with it."""
    (unit,) = _free_units(env["url"], 1)
    # autocommit: each workflow call is its own transaction (as over HTTP), none left open
    with psycopg.connect(env["url"], autocommit=True) as conn:
        before = conn.execute("SELECT coalesce(max(event_id), 0) FROM share.event").fetchone()[0]
        no = wf.open_case(conn, env["settings"].cases, env["keys"], env["actor"],
                          Application(7, (unit,), (BUYER,), request={})).case_no
        conn.commit()     # accepted; its numbers and the calendar are free for the next case
        _enter(env, 22, unit, [], {"authority": "杭州市西湖区人民法院"})   # seized meanwhile
        wf.advance(conn, env["settings"].cases, env["keys"], env["actor"], no, Action.REVIEW,
                   review=wf.Review("初审", "同意"))
        with pytest.raises(RuleViolation):
            wf.advance(conn, env["settings"].cases, env["keys"], env["actor"], no,
                       Action.REGISTER)
        types = [r[0] for r in conn.execute(
            "SELECT type FROM share.event WHERE event_id > %s ORDER BY event_id", (before,))]
    assert types == ["case.accepted", "case.accepted", "seizure.registered"]
