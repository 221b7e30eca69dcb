"""Owners (权利人): verification, lockout, and the queries behind "my units and rights".

An owner proves who they are with name + ID number + certificate number (不动产权证书号), or with
the token printed as a QR code on the certificate + ID number (the QR alone proves nothing: anyone
holding the paper can scan it). Every attempt, whatever is wrong with it, does the same work:
the same keyed hashes and the same SQL, so a failed verification says nothing about which part
was wrong, neither in the answer nor in its timing. After ``max_failures`` failures within the
window per claimed identity (keyed hash of the ID number) or per client address, attempts are
refused (locked) until the window has passed, correct ones included.

Identities never leave this module in clear: the verified owner is known to the rest of the
system by ``pseudonym`` (a keyed hash of the ID number), the same value the audit log records.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cadastre.access import lockout
from cadastre.access.pii import PiiCipher, normalize
from cadastre.audit import subject_hash
from cadastre.codes import is_unit_code_with_fixture, parcel_code_of

FAILURE_KIND = "owner_verify"
HOLDER_KINDS = ("ownership", "land_use")     # rights whose 权利人 is an owner of the unit
_LOCK_NS = 0x6F776E72                        # advisory-lock namespace 'ownr' (two-int form)
MAX_INPUT = 200                              # longer inputs are treated as empty (still hashed)


# ------------------------------------------------------------------ identities
def pseudonym(key: bytes, id_number: str) -> str:
    """The owner's keyed pseudonym: token subject, audit actor, lockout key."""
    return subject_hash(key, normalize(id_number), "owner")


def client_pseudonym(key: bytes, host: str) -> str:
    """Keyed hash of a client address (the same value ``api.auditing`` writes)."""
    return subject_hash(key, host, "client")


def normalize_certificate(value: str) -> str:
    """浙（2021）杭州市不动产权第 0012345 号 → 浙(2021)杭州市不动产权第0012345号."""
    return "".join(unicodedata.normalize("NFKC", value).split())


def clean_input(value: object) -> str:
    """A request value as the verification sees it: strings up to ``MAX_INPUT``, else ''."""
    if not isinstance(value, str) or len(value) > MAX_INPUT:
        return ""
    return value


@dataclass(frozen=True)
class Claim:
    """What the caller claims. ``certificate_no`` for the name path, ``certificate_version``
    (decoded from a QR token, None when the token is bad) for the QR path."""

    id_number: str
    name: str | None = None
    certificate_no: str | None = None
    certificate_version: int | None = None


@dataclass(frozen=True)
class Verification:
    outcome: str                          # ok | failed | locked
    subject: str                          # pseudonym of the claimed ID number
    units: tuple[str, ...] = ()           # on success: every unit this person holds now
    retry_after: int = 0                  # locked: seconds until the lockout ends


# One statement for both paths: the person's current holdings, and whether the claim matches
# one of them (name + certificate number, or the certificate version from a QR token).
_MATCH = """
WITH me AS (
    SELECT party_id, name_hash = %(name)s AS name_ok
    FROM pii.party WHERE id_number_hash = %(id)s
), held AS (
    SELECT r.unit_code, r.version_id, r.certificate_no, me.name_ok
    FROM me
    JOIN cad.right_party rp ON rp.party_id = me.party_id AND rp.role = 1
    JOIN cad.right_current r ON r.version_id = rp.right_version_id
    WHERE r.status = 1 AND r.kind = ANY(%(kinds)s)
)
SELECT coalesce(bool_or((name_ok AND certificate_no = %(cert)s) OR version_id = %(vid)s), false),
       coalesce(array_agg(DISTINCT unit_code ORDER BY unit_code), '{}')
FROM held
"""


def verify(conn: psycopg.Connection, cipher: PiiCipher, key: bytes, claim: Claim,
           client_host: str | None, policy: lockout.Policy) -> Verification:
    """Check ``claim`` (same work on every failing path), record a failure, honour lockouts.

    Runs in the caller's transaction (or its own); the caller appends the audit row to the same
    transaction."""
    subject = pseudonym(key, claim.id_number)
    attempt = lockout.Attempt(
        FAILURE_KIND, bytes.fromhex(subject),
        bytes.fromhex(client_pseudonym(key, client_host)) if client_host else None)
    id_hash = cipher.lookup_hash(claim.id_number)
    name_hash = cipher.lookup_hash(claim.name) if claim.name is not None else None
    cert = normalize_certificate(claim.certificate_no) if claim.certificate_no else None
    with conn.transaction():
        # one verification per identity at a time, so concurrent guesses cannot overrun the limit
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                     (_LOCK_NS, int.from_bytes(attempt.subject[:4], "big", signed=True)))
        wait = lockout.seconds_locked(conn, attempt, policy)
        if wait > 0:
            return Verification("locked", subject, (), wait)
        match = conn.execute(_MATCH, {"id": id_hash, "name": name_hash, "cert": cert,
                                      "vid": claim.certificate_version,
                                      "kinds": list(HOLDER_KINDS)}).fetchone()
        ok, units = match if match is not None else (False, [])
        if not ok:
            lockout.record_failure(conn, attempt)
            return Verification("failed", subject)
        lockout.clear(conn, attempt)   # a success forgets the identity's failures, not the client's
    return Verification("ok", subject, tuple(units))


# ------------------------------------------------------------------ holdings
_HOLDERS = """
SELECT DISTINCT r.unit_code, p.id_number_enc
FROM cad.right_current r
JOIN cad.right_party rp ON rp.right_version_id = r.version_id AND rp.role = 1
JOIN pii.party p ON p.party_id = rp.party_id
WHERE r.unit_code = ANY(%s) AND r.status = 1 AND r.kind = ANY(%s)
"""


def current_holdings(conn: psycopg.Connection, cipher: PiiCipher, key: bytes, subject: str,
                     unit_codes: Iterable[str]) -> list[str]:
    """Those of ``unit_codes`` that the owner known as ``subject`` still holds now (a token
    outlives a transfer by up to its lifetime; this check does not)."""
    codes = sorted(set(unit_codes))
    if not codes:
        return []
    held = set()
    for unit_code, id_enc in conn.execute(_HOLDERS, (codes, list(HOLDER_KINDS))):
        if unit_code not in held and pseudonym(key, cipher.decrypt(id_enc) or "") == subject:
            held.add(unit_code)
    return [c for c in codes if c in held]


def is_land_unit(unit_code: str) -> bool:
    """A land-only unit (定着物特征码 W): the parcel itself, no building or floors."""
    return is_unit_code_with_fixture(unit_code, "W")


# ------------------------------------------------------------------ records
def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _rows(conn: psycopg.Connection, sql: str, params: Sequence[Any] | dict[str, Any]
          ) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return [{k: _plain(v) for k, v in r.items()} for r in cur.fetchall()]


_UNITS = """
SELECT u.feature_id::text AS id, u.unit_code, u.building_code, u.parcel_code, u.floor_no,
       u.floor_count, u.room_no, u.seat, u.use, u.house_type, u.house_nature, u.layout,
       u.building_area, u.inner_area, u.shared_area, u.shared_coefficient, u.base_elevation,
       u.height, s.registration_status, u.valid_from
FROM cad.unit_current u LEFT JOIN cad.unit_status s USING (unit_code)
WHERE u.unit_code = ANY(%s)
"""
_PARCELS = """
SELECT feature_id::text AS id, parcel_code, seat, compound_name, land_use, right_type,
       registered_area, neighbour_north, neighbour_east, neighbour_south, neighbour_west,
       map_sheet, valid_from
FROM cad.parcel_current WHERE parcel_code = ANY(%s)
"""
_BUILDING = """
SELECT feature_id::text AS id, building_code, parcel_code, name, project_name, floors_total,
       floors_above, floors_below, height, structure, planned_use, completion_date, floor_area,
       footprint_area
FROM cad.building_current WHERE building_code = %s
"""
_STATUS = """
SELECT unit_code, mortgaged, seized, pre_noticed, objected
FROM cad.unit_status WHERE unit_code = ANY(%s)
"""
_RIGHTS = """
SELECT version_id, right_id::text AS id, kind, unit_code, status, registration_type, right_type,
       registration_reason, business_no, certificate_no, registry_office, registered_at,
       right_start, right_end, valid_from
FROM cad.right_current
WHERE unit_code = ANY(%s) AND status = 1 AND kind <> 'cancellation'
ORDER BY unit_code, registered_at, version_id
"""
# kind → detail table query (identifiers from this catalogue only)
_DETAILS = {
    "ownership": "SELECT right_version_id, land_use_start, land_use_end, transaction_price, "
                 "house_use, house_nature, structure, floor_label, floors_total, building_area, "
                 "exclusive_area, shared_area, land_area FROM cad.ownership_detail",
    "mortgage": "SELECT right_version_id, mortgage_type, property_kind, secured_amount, "
                "max_amount, debt_start, debt_end, scope FROM cad.mortgage_detail",
    "pre_notice": "SELECT right_version_id, notice_kind, price, house_use, building_area "
                  "FROM cad.pre_notice_detail",
    "seizure": "SELECT right_version_id, authority, seizure_type, document, document_no, "
               "seizure_start, seizure_end, scope FROM cad.seizure_detail",
    "objection": "SELECT right_version_id, matter FROM cad.objection_detail",
    "easement": "SELECT right_version_id, servient_unit_code, dominant_unit_code, content, "
                "easement_start, easement_end FROM cad.easement_detail",
}
_DETAILS["land_use"] = _DETAILS["ownership"]
# 权利人 and 义务人 (e.g. the mortgagee bank and the mortgagors); applicants of objections
# (role 4) and debtors (role 3) are not disclosed through the owner service
_PARTIES = """
SELECT rp.right_version_id, rp.role, rp.seq, rp.share, rp.co_ownership, p.party_type,
       p.id_type, p.name_enc, p.id_number_enc, p.phone_enc
FROM cad.right_party rp JOIN pii.party p USING (party_id)
WHERE rp.right_version_id = ANY(%s) AND rp.role IN (1, 2)
ORDER BY rp.right_version_id, rp.role, rp.seq
"""


@dataclass
class RightRecord:
    right: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)
    parties: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class UnitRecord:
    """Everything about one of the owner's units, unfiltered: the caller applies the policy."""

    unit_code: str
    land: bool
    unit: dict[str, Any] | None
    parcel: dict[str, Any] | None
    building: dict[str, Any] | None
    status: dict[str, Any]
    rights: list[RightRecord]

    @property
    def seat(self) -> str | None:
        if self.unit and self.unit.get("seat"):
            return self.unit["seat"]
        return self.parcel.get("seat") if self.parcel else None

    @property
    def certificate_no(self) -> str | None:
        """The certificate of the current ownership (or land-use) right."""
        for r in self.rights:
            if r.right["kind"] in HOLDER_KINDS and r.right.get("certificate_no"):
                return r.right["certificate_no"]
        return None


_NO_STATUS = {"mortgaged": False, "seized": False, "pre_noticed": False, "objected": False}


def _rights(conn: psycopg.Connection, cipher: PiiCipher, unit_codes: list[str],
            details: bool) -> dict[str, list[RightRecord]]:
    out: dict[str, list[RightRecord]] = {c: [] for c in unit_codes}
    by_version: dict[int, RightRecord] = {}
    for row in _rows(conn, _RIGHTS, (unit_codes,)):
        rec = RightRecord({k: v for k, v in row.items() if k != "version_id"})
        out[row["unit_code"]].append(rec)
        by_version[row["version_id"]] = rec
    if not details or not by_version:
        return out
    kinds: dict[str, list[int]] = {}
    for vid, rec in by_version.items():
        kinds.setdefault(rec.right["kind"], []).append(vid)
    for kind, vids in kinds.items():
        sql = _DETAILS.get(kind)
        if sql is None:
            continue
        for row in _rows(conn, sql + " WHERE right_version_id = ANY(%s)", (vids,)):
            by_version[row.pop("right_version_id")].detail = row
    for row in _rows(conn, _PARTIES, (list(by_version),)):
        rec = by_version[row["right_version_id"]]
        if (row["role"] == 1 and row["co_ownership"] is not None
                and rec.right["kind"] in HOLDER_KINDS):
            rec.detail.setdefault("co_ownership", row["co_ownership"])
        rec.parties.append({
            "party_type": row["party_type"], "id_type": row["id_type"],
            "name": cipher.decrypt(row["name_enc"]),
            "id_number": cipher.decrypt(row["id_number_enc"]),
            "phone": cipher.decrypt(row["phone_enc"]),
            "role": row["role"], "share": row["share"],
        })
    return out


def unit_records(conn: psycopg.Connection, cipher: PiiCipher, unit_codes: Iterable[str],
                 details: bool = False) -> list[UnitRecord]:
    """The units (house units or land-only units) with status and current rights; with
    ``details`` also parcel, building, right details and parties."""
    codes = sorted(set(unit_codes))
    if not codes:
        return []
    units = {r["unit_code"]: r for r in _rows(conn, _UNITS, (codes,))}
    parcels = {r["parcel_code"]: r for r in _rows(conn, _PARCELS,
                                                  (sorted({parcel_code_of(c) for c in codes}),))}
    status = {r.pop("unit_code"): r for r in _rows(conn, _STATUS, (codes,))}
    rights = _rights(conn, cipher, codes, details)
    out = []
    for code in codes:
        land = is_land_unit(code)
        unit = units.get(code)
        parcel = parcels.get(parcel_code_of(code))
        if (unit is None and not land) or (land and parcel is None):
            continue   # retired since the token was issued
        building = None
        if details and unit is not None:
            found = _rows(conn, _BUILDING, (unit["building_code"],))
            building = found[0] if found else None
        out.append(UnitRecord(code, land, unit, parcel, building,
                              status.get(code, dict(_NO_STATUS)), rights[code]))
    return out


def unit_record(conn: psycopg.Connection, cipher: PiiCipher, unit_code: str
                ) -> UnitRecord | None:
    found = unit_records(conn, cipher, [unit_code], details=True)
    return found[0] if found else None


_HOLDER_RIGHT = """
SELECT version_id FROM cad.right_current
WHERE unit_code = %s AND status = 1 AND kind = ANY(%s)
  AND certificate_no IS NOT NULL
ORDER BY registered_at DESC, version_id DESC LIMIT 1
"""


def certificate_version(conn: psycopg.Connection, unit_code: str) -> int | None:
    """Version id of the unit's current ownership (or land-use) right: its certificate."""
    row = conn.execute(_HOLDER_RIGHT, (unit_code, list(HOLDER_KINDS))).fetchone()
    return row[0] if row else None


_CERTIFICATE = """
SELECT r.unit_code, r.kind, r.valid_to IS NULL AND r.status = 1 AS current
FROM cad.right_record r
WHERE r.version_id = %s AND r.kind = ANY(%s) AND r.certificate_no IS NOT NULL
"""


@dataclass(frozen=True)
class CertificateCheck:
    status: str                          # valid | superseded | unknown
    unit_code: str | None = None
    unit: dict[str, Any] | None = None   # natural attributes (unfiltered: apply the policy)
    parcel: dict[str, Any] | None = None


def check_certificate(conn: psycopg.Connection, version_id: int | None) -> CertificateCheck:
    """Is the certificate (right version) still the current one? With the unit it is about."""
    if version_id is None:
        return CertificateCheck("unknown")
    row = conn.execute(_CERTIFICATE, (version_id, list(HOLDER_KINDS))).fetchone()
    if row is None:
        return CertificateCheck("unknown")
    unit_code, _kind, current = row
    units = _rows(conn, _UNITS, ([unit_code],))
    parcels = _rows(conn, _PARCELS, ([parcel_code_of(unit_code)],))
    return CertificateCheck("valid" if current else "superseded", unit_code,
                            units[0] if units else None, parcels[0] if parcels else None)
