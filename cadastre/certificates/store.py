"""Rows of ``cad.certificate`` (and the signed PDFs in ``cad.certificate_document``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cadastre.certificates.compose import SignedDocument
from cadastre.errors import NotFound

_COLUMNS = ("certificate_id, serial, kind, number, right_version_id, right_id::text AS right_id, "
            "trim(unit_code) AS unit_code, business_no, status, prepared_at, prepared_by, "
            "issued_at, issued_by, superseded_by, superseded_at, revoked_at, revoked_by, "
            "revoked_reason, remark, as_of, pdf_sha256, signer, parcel_pages, plan_pages")


@dataclass(frozen=True)
class CertificateRecord:
    """One electronic certificate, proof or query result, as registered."""

    certificate_id: uuid.UUID
    serial: int
    kind: str                          # certificate | proof | query_result
    number: str
    right_version_id: int | None
    right_id: str | None
    unit_code: str
    business_no: str | None
    status: str                        # prepared | current | superseded | revoked
    prepared_at: datetime
    prepared_by: str
    issued_at: datetime | None
    issued_by: str | None
    superseded_by: str | None
    superseded_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    revoked_reason: str | None
    remark: str | None
    as_of: datetime | None
    pdf_sha256: bytes
    signer: str
    parcel_pages: tuple[int, ...]
    plan_pages: tuple[int, ...]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CertificateRecord:
        return cls(**{**row, "pdf_sha256": bytes(row["pdf_sha256"]),
                      "parcel_pages": tuple(row["parcel_pages"] or ()),
                      "plan_pages": tuple(row["plan_pages"] or ())})

    def as_dict(self) -> dict[str, Any]:
        """Fields by their names in the ``certificate`` entity of the privacy policy."""
        return {"kind": self.kind, "status": self.status, "number": self.number,
                "unit_code": self.unit_code, "business_no": self.business_no,
                "issued_at": self.issued_at, "superseded_by": self.superseded_by,
                "superseded_at": self.superseded_at, "revoked_at": self.revoked_at,
                "revoked_reason": self.revoked_reason, "prepared_by": self.prepared_by,
                "issued_by": self.issued_by, "signer": self.signer, "as_of": self.as_of,
                "right_version_id": self.right_version_id}


def _fetch(conn: psycopg.Connection, where: str, params: tuple[Any, ...],
           lock: bool = False) -> list[CertificateRecord]:
    sql = f"SELECT {_COLUMNS} FROM cad.certificate WHERE {where} ORDER BY serial"
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql + (" FOR UPDATE" if lock else ""), params)  # type: ignore[arg-type]
        return [CertificateRecord.from_row(r) for r in cur.fetchall()]


def get(conn: psycopg.Connection, certificate_id: uuid.UUID, lock: bool = False
        ) -> CertificateRecord:
    found = _fetch(conn, "certificate_id = %s", (certificate_id,), lock)
    if not found:
        raise NotFound("CERTIFICATE_NOT_FOUND", "无此电子证照 / no such certificate")
    return found[0]


def by_serial(conn: psycopg.Connection, serial: int | None) -> CertificateRecord | None:
    if serial is None:
        return None
    found = _fetch(conn, "serial = %s", (serial,))
    return found[0] if found else None


def by_number(conn: psycopg.Connection, number: str) -> CertificateRecord | None:
    found = _fetch(conn, "number = %s", (number,))
    return found[0] if found else None


def by_sha256(conn: psycopg.Connection, digest: bytes) -> CertificateRecord | None:
    found = _fetch(conn, "pdf_sha256 = %s", (digest,))
    return found[0] if found else None


def live_for_version(conn: psycopg.Connection, right_version_id: int
                     ) -> CertificateRecord | None:
    found = _fetch(conn, "right_version_id = %s AND status IN ('prepared', 'current')",
                   (right_version_id,))
    return found[0] if found else None


def live_for_right(conn: psycopg.Connection, right_id: str, lock: bool = False
                   ) -> list[CertificateRecord]:
    return _fetch(conn, "right_id = %s AND status IN ('prepared', 'current')", (right_id,),
                  lock)


def current_for_unit(conn: psycopg.Connection, unit_code: str, kinds: tuple[str, ...]
                     ) -> list[CertificateRecord]:
    return _fetch(conn, "unit_code = %s AND status = 'current' AND kind = ANY(%s)",
                  (unit_code, list(kinds)))


def next_serial(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT nextval('cad.certificate_serial_seq')").fetchone()
    assert row is not None
    return int(row[0])


def document(conn: psycopg.Connection, certificate_id: uuid.UUID) -> bytes:
    row = conn.execute("SELECT pdf FROM cad.certificate_document WHERE certificate_id = %s",
                       (certificate_id,)).fetchone()
    if row is None:
        raise NotFound("CERTIFICATE_NOT_FOUND", "无此电子证照 / no such certificate")
    return bytes(row[0])


@dataclass(frozen=True)
class NewCertificate:
    serial: int
    kind: str
    number: str
    right_version_id: int | None
    right_id: str | None
    unit_code: str
    business_no: str | None
    prepared_by: str
    remark: str | None
    as_of: datetime | None
    signer: str


def insert(conn: psycopg.Connection, new: NewCertificate, signed: SignedDocument,
           at: datetime) -> CertificateRecord:
    """A prepared certificate with its signed PDF (in the caller's transaction)."""
    certificate_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO cad.certificate (certificate_id, serial, kind, number, right_version_id, "
        "right_id, unit_code, business_no, status, prepared_at, prepared_by, remark, as_of, "
        "pdf_sha256, signer, parcel_pages, plan_pages) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
        "'prepared', %s, %s, %s, %s, %s, %s, %s, %s)",
        (certificate_id, new.serial, new.kind, new.number, new.right_version_id, new.right_id,
         new.unit_code, new.business_no, at, new.prepared_by, new.remark, new.as_of,
         signed.sha256, new.signer, list(signed.parcel_pages), list(signed.plan_pages)))
    conn.execute("INSERT INTO cad.certificate_document (certificate_id, pdf) VALUES (%s, %s)",
                 (certificate_id, signed.pdf))
    return get(conn, certificate_id)


def mark_issued(conn: psycopg.Connection, certificate_id: uuid.UUID, actor: str,
                at: datetime) -> None:
    conn.execute("UPDATE cad.certificate SET status = 'current', issued_at = %s, issued_by = %s "
                 "WHERE certificate_id = %s", (at, actor, certificate_id))


def mark_superseded(conn: psycopg.Connection, certificate_id: uuid.UUID, business_no: str,
                    at: datetime) -> None:
    conn.execute("UPDATE cad.certificate SET status = 'superseded', superseded_by = %s, "
                 "superseded_at = %s WHERE certificate_id = %s",
                 (business_no, at, certificate_id))


def mark_revoked(conn: psycopg.Connection, certificate_id: uuid.UUID, reason: str, actor: str,
                 at: datetime) -> None:
    conn.execute("UPDATE cad.certificate SET status = 'revoked', revoked_at = %s, "
                 "revoked_by = %s, revoked_reason = %s WHERE certificate_id = %s",
                 (at, actor, reason, certificate_id))
