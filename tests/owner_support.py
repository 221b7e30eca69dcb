"""Shared by test_owner.py and test_documents.py: a small demo district of our own (we change
rows in it), real right holders picked from it, and app clients with chosen client addresses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from cadastre.access.pii import PiiCipher
from cadastre.settings import Settings

_HOLDERS = """
SELECT r.unit_code, r.certificate_no, r.version_id, p.name_enc, p.id_number_enc, p.phone_enc,
       (SELECT count(*) FROM cad.right_party x
        WHERE x.right_version_id = r.version_id AND x.role = 1) AS holders,
       s.mortgaged, s.seized, p.party_type, r.kind
FROM cad.right_record r
JOIN cad.right_party rp ON rp.right_version_id = r.version_id AND rp.role = 1
JOIN pii.party p USING (party_id)
JOIN cad.unit_status s USING (unit_code)
WHERE r.kind = ANY(%s) AND r.valid_to IS NULL AND r.status = 1
ORDER BY r.unit_code, rp.seq
"""


@dataclass(frozen=True)
class Holder:
    unit_code: str
    certificate_no: str
    version_id: int
    name: str
    id_number: str
    phone: str | None
    holders: int          # number of 权利人 of the right (2 = a couple, 共同共有)
    mortgaged: bool
    seized: bool
    party_type: int
    kind: str

    def triplet(self) -> dict[str, str]:
        return {"name": self.name, "id_number": self.id_number,
                "certificate_no": self.certificate_no}


def holders(conn: psycopg.Connection, cipher: PiiCipher,
            kinds: tuple[str, ...] = ("ownership",)) -> list[Holder]:
    out = []
    for r in conn.execute(_HOLDERS, (list(kinds),)):
        out.append(Holder(r[0], r[1], r[2], cipher.decrypt(r[3]) or "",
                          cipher.decrypt(r[4]) or "", cipher.decrypt(r[5]), r[6], r[7], r[8],
                          r[9], r[10]))
    return out


class People:
    """Hands out holders no other test has used, so lockouts never cross tests."""

    def __init__(self, all_holders: list[Holder]) -> None:
        self.all = all_holders
        self._used: set[str] = set()

    def take(self, **want: Any) -> Holder:
        for h in self.all:
            if h.id_number in self._used:
                continue
            if all(getattr(h, k) == v for k, v in want.items()):
                self._used.add(h.id_number)
                return h
        raise LookupError(f"no unused holder with {want}")


def new_person(conn: psycopg.Connection, cipher: PiiCipher, name: str, id_number: str
               ) -> uuid.UUID:
    """A person as a registration writes one into ``pii.party`` (encrypted, look-up hashes)."""
    party = uuid.uuid4()
    conn.execute(
        "INSERT INTO pii.party (party_id, party_type, id_type, name_enc, name_hash,"
        " id_number_enc, id_number_hash) VALUES (%s, 1, 1, %s, %s, %s, %s)",
        (party, cipher.encrypt(name), cipher.lookup_hash(name), cipher.encrypt(id_number),
         cipher.lookup_hash(id_number)))
    return party


def app_settings(url: str, base: Settings, **security: Any) -> Settings:
    """Lockout after 3 failures within 10 minutes unless told otherwise. The per-address rate
    limit (api/ratelimit.py, tested on its own) is off: these tests send many verifications
    from one address on purpose, to exercise the lockout and the timing."""
    sec = {"verify_max_failures": 3, "verify_window_minutes": 10, **security}
    return Settings(storage={"data_dir": base.data_dir}, database={"url": url}, security=sec,
                    api={"rate_limit_enabled": False})


@contextmanager
def owner_client(url: str, base: Settings, host: str = "10.9.0.1", **security: Any
                 ) -> Iterator[TestClient]:
    """The app on ``url`` as seen from client address ``host``."""
    with TestClient(create_app(app_settings(url, base, **security)),
                    client=(host, 50000)) as client:
        yield client


def new_host() -> str:
    n = uuid.uuid4().int
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def verify(client: TestClient, h: Holder) -> str:
    r = client.post("/api/v1/owner/verify", json=h.triplet())
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def party_strings(conn: psycopg.Connection, cipher: PiiCipher, unit_codes: list[str]
                  ) -> set[str]:
    """Names, ID numbers and phones of every party linked to any right on these units (also
    history), and the certificate numbers of those rights."""
    out: set[str] = set()
    rows = conn.execute(
        "SELECT p.name_enc, p.id_number_enc, p.phone_enc, r.certificate_no "
        "FROM cad.right_record r JOIN cad.right_party rp ON rp.right_version_id = r.version_id "
        "JOIN pii.party p USING (party_id) WHERE r.unit_code = ANY(%s)", (unit_codes,))
    for name, idn, phone, cert in rows:
        for v in (cipher.decrypt(name), cipher.decrypt(idn), cipher.decrypt(phone), cert):
            if v:
                out.add(v)
    return out
