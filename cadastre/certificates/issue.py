"""Preparing (缮证), issuing (发证), superseding and revoking electronic certificates and proofs,
and owners' query results. Each function runs in the caller's transaction (or its own) and
appends its audit row to the same transaction; the contracts are in the package docstring.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property

import psycopg

from cadastre import audit
from cadastre.access.pii import PiiCipher, audit_key, load_cipher
from cadastre.certificates import content as records
from cadastre.certificates import query_result, store
from cadastre.certificates.compose import (
    Composer,
    DocumentParts,
    Identity,
    SignedDocument,
    identity,
)
from cadastre.certificates.numbers import office_for, reserve_number
from cadastre.certificates.parts import AnnexBuilder
from cadastre.certificates.signing import OfficeSigner, SigningFiles, signing_files
from cadastre.certificates.store import CertificateRecord, NewCertificate
from cadastre.errors import Conflict, InvalidInput
from cadastre.settings import Settings
from cadastre.sharing.events import emit
from cadastre.store.db import atomic


@dataclass
class IssuingContext:
    """What issuing needs besides a connection: keys, the office's signer, the settings."""

    settings: Settings
    cipher: PiiCipher
    audit_key: bytes
    files: SigningFiles

    @classmethod
    def from_settings(cls, settings: Settings) -> IssuingContext:
        return cls(settings, load_cipher(settings), audit_key(settings), signing_files(settings))

    @cached_property
    def composer(self) -> Composer:
        return Composer(OfficeSigner(self.files))

    @cached_property
    def annexes(self) -> AnnexBuilder:
        return AnnexBuilder()

    def record_audit(self, conn: psycopg.Connection, actor: str, action: str,
                     rec: CertificateRecord) -> None:
        audit.append(conn, self.audit_key, audit.Entry(
            actor=actor, role=_role(actor), action=action,
            target=f"{rec.unit_code}#{rec.serial}", result_count=1))


def announce(conn: psycopg.Connection, event_type: str, rec: CertificateRecord) -> None:
    """An event for subscribed departments and banks (``cadastre.sharing``), in the caller's
    transaction: the right version (rendered per subscriber through the privacy policy at
    delivery) and the document's public facts only. Query results are the owner's own."""
    if rec.kind == "query_result" or rec.right_version_id is None:
        return
    issued = event_type == "certificate.issued"
    emit(conn, event_type, county=rec.unit_code[:6], unit_codes=[rec.unit_code],
         refs={"versions" if issued else "closed": [rec.right_version_id],
               "certificate": {"kind": rec.kind, "status": rec.status,
                               "issued_at": rec.issued_at.isoformat() if rec.issued_at else None,
                               "superseded_by": rec.superseded_by,
                               "superseded_at": rec.superseded_at.isoformat()
                               if rec.superseded_at else None}})


def _role(actor: str) -> str:
    return actor.split(":", 1)[0] if ":" in actor else "registrar"


def _now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ numbers
def number_for(conn: psycopg.Connection, ctx: IssuingContext, right_version_id: int,
               kind: str, year: int) -> str:
    """The number the register gives the right version (BDCQZH/BDCDJZMH), unless a document
    already carried it (then it was revoked: a new document gets a new number); a new number
    is reserved and written into the register's current version when there is none to use."""
    row = conn.execute("SELECT certificate_no, trim(unit_code) FROM cad.right_record "
                       "WHERE version_id = %s FOR UPDATE", (right_version_id,)).fetchone()
    assert row is not None
    registered, unit_code = row
    if registered and store.by_number(conn, registered) is None:
        return str(registered)
    number = reserve_number(conn, office_for(conn, unit_code[:6], ctx.settings), kind, year)
    conn.execute("UPDATE cad.right_record SET certificate_no = %s WHERE version_id = %s",
                 (number, right_version_id))
    return number


# ------------------------------------------------------------------ 缮证 / 发证
@dataclass(frozen=True)
class Claim:
    """A right version's document being made: its number and serial are taken (in the
    caller's transaction), its 附记 written."""

    content: records.CertificateContent
    identity: Identity
    issued: date
    business_no: str | None
    remark: tuple[str, ...]
    location: str                 # the office's city: the signature's /Location


def claim(conn: psycopg.Connection, ctx: IssuingContext, content: records.CertificateContent,
          *, business_no: str | None = None, remark: Sequence[str] = (),
          today: date | None = None) -> Claim:
    """Lock the right version, check it is still current and has no live document, take its
    number and a serial. ``content`` may have been read before (a batch reads ahead)."""
    version = content.right_version_id
    assert version is not None
    row = conn.execute("SELECT valid_to IS NULL AND status = 1 FROM cad.right_record "
                       "WHERE version_id = %s FOR UPDATE", (version,)).fetchone()
    if row is None or not row[0]:
        raise InvalidInput("RIGHT_NOT_CURRENT", "该权利已不是现势登记 / the right is no longer "
                           "current")
    if store.live_for_version(conn, version) is not None:
        raise Conflict("CERTIFICATE_EXISTS", "该登记已有有效电子证照，须先作废 / this "
                       "registration already has a live certificate; revoke it first")
    issued = today or _now(conn).date()
    number = number_for(conn, ctx, version, content.kind, issued.year)
    business = business_no or content.business_no
    lines = ([f"业务号：{business}"] if business else []) + [x for x in remark if x]
    who = identity(ctx.cipher.lookup_key, ctx.settings.public_url,
                   store.next_serial(conn), number)
    city = office_for(conn, content.unit_code[:6], ctx.settings).city_name
    return Claim(content, who, issued, business, tuple(lines), city)


def parts_for(conn: psycopg.Connection, ctx: IssuingContext, taken: Claim) -> DocumentParts:
    parcel, floor = ctx.annexes.annexes(conn, taken.content, taken.issued)
    return DocumentParts(taken.content, taken.identity, taken.issued, taken.remark, parcel,
                         floor, taken.location)


def store_signed(conn: psycopg.Connection, ctx: IssuingContext, taken: Claim,
                 signed: SignedDocument, actor: str, as_of: datetime | None = None
                 ) -> CertificateRecord:
    """The rendered, signed document registered as prepared (audited)."""
    content, who = taken.content, taken.identity
    new = NewCertificate(who.serial, content.kind, who.number, content.right_version_id,
                         content.right_id, content.unit_code, taken.business_no, actor,
                         "\n".join(taken.remark) or None, as_of, ctx.composer.signer.identity)
    rec = store.insert(conn, new, signed, _now(conn))
    ctx.record_audit(conn, actor, f"certificate.prepare.{content.kind}", rec)
    return rec


def prepare_certificate(conn: psycopg.Connection, ctx: IssuingContext, right_version_id: int,
                        *, actor: str, business_no: str | None = None,
                        remark: Sequence[str] = (), today: date | None = None
                        ) -> CertificateRecord:
    """缮证: render and sign the certificate (ownership, land use) or proof (mortgage,
    pre-notice, objection, easement, seizure) of a current right version; status 'prepared'."""
    with conn.transaction():
        content = records.load(conn, ctx.cipher, right_version_id, ctx.settings)
        taken = claim(conn, ctx, content, business_no=business_no, remark=remark, today=today)
        signed = ctx.composer.compose(parts_for(conn, ctx, taken))
        return store_signed(conn, ctx, taken, signed, actor)


def issue_certificate(conn: psycopg.Connection, ctx: IssuingContext,
                      certificate_id: uuid.UUID, *, actor: str, at: datetime | None = None
                      ) -> CertificateRecord:
    """发证: a prepared document becomes the current one (available to its holder); documents
    of earlier versions of the same right still current are superseded by this business."""
    with conn.transaction():
        rec = store.get(conn, certificate_id, lock=True)
        if rec.status != "prepared":
            raise Conflict("CERTIFICATE_NOT_PREPARED", "只有已缮证的证照可以发证 / "
                                      "only a prepared certificate can be issued")
        when = at or _now(conn)
        if rec.right_id is not None:
            for old in store.live_for_right(conn, rec.right_id, lock=True):
                if old.certificate_id != rec.certificate_id and old.status == "current":
                    store.mark_superseded(conn, old.certificate_id,
                                          rec.business_no or rec.number, when)
                    ctx.record_audit(conn, actor, "certificate.supersede", old)
                    announce(conn, "certificate.superseded", store.get(conn, old.certificate_id))
        store.mark_issued(conn, certificate_id, actor, when)
        rec = store.get(conn, certificate_id)
        ctx.record_audit(conn, actor, f"certificate.issue.{rec.kind}", rec)
        announce(conn, "certificate.issued", rec)
        return rec


def electronic_copy(conn: psycopg.Connection, ctx: IssuingContext, right_version_id: int, *,
                    actor: str) -> CertificateRecord:
    """The electronic version of a registration's certificate or proof, prepared and issued at
    once (rights registered before electronic certificates: the demo's, an earlier system's)."""
    with conn.transaction():
        rec = prepare_certificate(conn, ctx, right_version_id, actor=actor)
        return issue_certificate(conn, ctx, rec.certificate_id, actor=actor)


def issue_query_result(conn: psycopg.Connection, ctx: IssuingContext, unit_code: str, *,
                       actor: str) -> CertificateRecord:
    """不动产登记信息查询结果 of a unit, signed and registered (current at once: it reports the
    register at the moment it was made)."""
    with conn.transaction():
        at = _now(conn)
        off = office_for(conn, unit_code[:6], ctx.settings)
        content = query_result.load(conn, ctx.cipher, unit_code, at, ctx.settings)
        number = reserve_number(conn, off, "query_result", at.year)
        who = identity(ctx.cipher.lookup_key, ctx.settings.public_url, store.next_serial(conn),
                       number)
        taken = Claim(content, who, at.date(), None, (), off.city_name)
        rec = store_signed(conn, ctx, taken, ctx.composer.compose(parts_for(conn, ctx, taken)),
                           actor, at)
        store.mark_issued(conn, rec.certificate_id, actor, at)
        return store.get(conn, rec.certificate_id)


# ------------------------------------------------------------------ later registrations
def supersede_for_right(conn: psycopg.Connection, right_id: str | uuid.UUID, business_no: str,
                        at: datetime, *, actor: str = "system", key: bytes | None = None
                        ) -> list[CertificateRecord]:
    """A later registration (``business_no``) closed or replaced the right: its current
    documents become superseded (by that business, at ``at``); prepared ones that were never
    issued are revoked. Call in the transaction that closes the right; audited with ``key``."""
    changed = []
    with atomic(conn):
        for rec in store.live_for_right(conn, str(right_id), lock=True):
            if rec.status == "current":
                store.mark_superseded(conn, rec.certificate_id, business_no, at)
                action = "certificate.supersede"
            else:
                store.mark_revoked(conn, rec.certificate_id, f"登记已由业务 {business_no} 变更，"
                                   "证照未发出 / superseded before issue", actor, at)
                action = "certificate.revoke"
            rec = store.get(conn, rec.certificate_id)
            if key is not None:
                audit.append(conn, key, audit.Entry(actor=actor, role=_role(actor),
                                                    action=action, result_count=1,
                                                    target=f"{rec.unit_code}#{rec.serial}"))
            if rec.status == "superseded":
                announce(conn, "certificate.superseded", rec)
            changed.append(rec)
    return changed


def revoke_certificate(conn: psycopg.Connection, ctx: IssuingContext,
                       certificate_id: uuid.UUID, *, reason: str, actor: str
                       ) -> CertificateRecord:
    """作废: a prepared or current document is void from now on (wrongly issued, spoiled, to be
    replaced); the verification page says so. A superseded one keeps its history."""
    if not reason.strip():
        raise InvalidInput("REASON_REQUIRED", "请说明作废原因 / give the reason for revoking")
    with conn.transaction():
        rec = store.get(conn, certificate_id, lock=True)
        if rec.status not in ("prepared", "current"):
            raise Conflict("CERTIFICATE_NOT_LIVE", "该证照已失效 / the certificate is "
                                      "no longer live")
        store.mark_revoked(conn, certificate_id, reason.strip(), actor, _now(conn))
        rec = store.get(conn, certificate_id)
        ctx.record_audit(conn, actor, "certificate.revoke", rec)
        return rec
