"""Checking certificates: the public QR check (一证一码), the departments' number + holder check,
and a PDF file against its signature and the register.

A QR token names either an electronic document (its serial, ``DOCUMENT`` keys) or, on paper
certificates printed before, the right version (``RIGHT_VERSION`` keys); both are tried with the
same work for every token. Results are unfiltered records: callers show them through the privacy
policy (``certificate``, ``unit`` and ``parcel`` entities).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from cadastre.access import owner
from cadastre.access.pii import PiiCipher
from cadastre.certificates import store
from cadastre.certificates.signing import SignatureCheck, check_signature
from cadastre.certificates.store import CertificateRecord
from cadastre.documents import certificate as qr

# verification statuses: valid (current) | superseded | revoked | unknown
_STATUS = {"current": "valid", "superseded": "superseded", "revoked": "revoked"}


@dataclass(frozen=True)
class TokenCheck:
    status: str
    record: dict[str, Any]                   # ``certificate`` entity fields
    unit: dict[str, Any] | None = None       # natural attributes (apply the policy)
    parcel: dict[str, Any] | None = None
    document: CertificateRecord | None = None   # electronic documents: its row
    unit_code: str | None = None


_CLOSED_BY = """
SELECT n.business_no, o.valid_to
FROM cad.right_record o
JOIN cad.right_record n ON n.unit_code = o.unit_code AND n.version_id <> o.version_id
 AND ((n.kind = o.kind AND n.valid_from >= o.valid_to)
      OR (n.kind = 'cancellation' AND EXISTS (
          SELECT 1 FROM cad.cancellation_detail c
          WHERE c.right_version_id = n.version_id AND c.cancelled_right_id = o.right_id)))
WHERE o.version_id = %s AND o.valid_to IS NOT NULL
ORDER BY n.valid_from, n.version_id LIMIT 1
"""


def _paper(conn: psycopg.Connection, version_id: int | None) -> TokenCheck:
    """A paper certificate's QR (the right version): current, or which registration closed it."""
    check = owner.check_certificate(conn, version_id)
    if check.status == "unknown":
        return TokenCheck("unknown", {})
    record: dict[str, Any] = {"kind": "certificate", "unit_code": check.unit_code}
    if check.status == "superseded":
        row = conn.execute(_CLOSED_BY, (version_id,)).fetchone()
        if row is not None:
            record.update(superseded_by=row[0], superseded_at=row[1])
    return TokenCheck(check.status, record, check.unit, check.parcel, None, check.unit_code)


def check_token(conn: psycopg.Connection, cipher: PiiCipher, token: str) -> TokenCheck:
    """What a scanned QR code says: genuine or not, current, superseded or revoked (nothing is
    decrypted: the unit's record without details)."""
    serial = qr.token_version(cipher.lookup_key, token, qr.DOCUMENT)
    version = qr.token_version(cipher.lookup_key, token, qr.RIGHT_VERSION)
    doc = store.by_serial(conn, serial)
    if doc is None:
        return _paper(conn, version)
    status = _STATUS.get(doc.status, "unknown")     # a prepared document is not out yet
    if status == "unknown":
        return TokenCheck("unknown", {})
    records = owner.unit_records(conn, cipher, [doc.unit_code])
    unit = records[0].unit if records else None
    parcel = records[0].parcel if records else None
    return TokenCheck(status, doc.as_dict(), unit, parcel, doc, doc.unit_code)


# ------------------------------------------------------------------ departments
_HOLDER = """
SELECT trim(r.unit_code)
FROM cad.right_record r
JOIN cad.right_party rp ON rp.right_version_id = r.version_id AND rp.role = %(role)s
JOIN pii.party p ON p.party_id = rp.party_id AND p.id_number_hash = %(id)s
WHERE r.certificate_no = %(number)s AND r.valid_to IS NULL AND r.status = 1
  AND NOT EXISTS (SELECT 1 FROM cad.certificate c
                  WHERE c.number = r.certificate_no AND c.status IN ('revoked', 'superseded'))
"""


def holder_matches(conn: psycopg.Connection, cipher: PiiCipher, number: str, id_number: str,
                   counties: tuple[str, ...] = ()) -> tuple[bool, str | None]:
    """Is ``number`` a certificate or proof in force whose 权利人 has ``id_number``? With the
    unit code when it is (for the audit trail). ``counties`` limits the answer to a scope."""
    normalized = owner.normalize_certificate(number)
    id_hash = cipher.lookup_hash(id_number)
    for role in (1, 4):      # 权利人; 申请人 of an objection
        rows = conn.execute(_HOLDER, {"role": role, "id": id_hash, "number": normalized})
        for (unit_code,) in rows:
            if not counties or unit_code[:6] in counties:
                return True, unit_code
    return False, None


# ------------------------------------------------------------------ files
@dataclass(frozen=True)
class FileCheck:
    signature: SignatureCheck
    document: CertificateRecord | None      # the register's record of exactly this file

    @property
    def status(self) -> str:
        if not self.signature.ok:
            return "invalid"
        if self.document is None:
            return "unknown"
        return _STATUS.get(self.document.status, "unknown")


def check_file(conn: psycopg.Connection, pdf: bytes, trust_roots: list[Any]) -> FileCheck:
    """A PDF as received: is the seal intact, trusted and over the whole file, and is this exact
    file one the registry issued (and is it still current)?"""
    signature = check_signature(pdf, trust_roots)
    doc = store.by_sha256(conn, hashlib.sha256(pdf).digest()) if signature.signed else None
    return FileCheck(signature, doc)


BEIJING = ZoneInfo("Asia/Shanghai")


def when(value: datetime | None) -> str:
    """An instant as printed for people: Beijing time (the register's instants are UTC)."""
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M 北京时间") if value else ""
