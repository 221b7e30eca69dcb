"""Electronic certificates and proofs (电子不动产权证书 / 电子不动产登记证明) and owners' query
results (不动产登记信息查询结果): numbered, laid out after the national forms with the parcel map
and floor plans, PDF/A-3b, sealed with the office's PAdES signature, verifiable by QR code
(一证一码), superseded by later registrations, revocable.

Contracts for the registration-case flow (``cadastre.cases``)
-------------------------------------------------------------
All functions take an open connection and run in the caller's transaction when there is one
(savepoints otherwise), and append their audit row to it: commit or roll back with the case step.
``ctx`` is an ``IssuingContext`` (``IssuingContext.from_settings(settings)``, one per process;
it loads the PII cipher, the audit key and the office's signer).

``prepare_certificate(conn, ctx, right_version_id, *, actor, business_no=None, remark=(),
today=None) -> CertificateRecord``
    At 缮证, after 登簿 wrote the right version. The version must be current and of a kind that
    gets a document: ownership / land_use → certificate; mortgage / pre_notice / objection /
    easement / seizure → proof (else ``InvalidInput`` NO_CERTIFICATE_FOR_KIND or
    RIGHT_NOT_CURRENT). The number is the one the register holds for the version
    (``right_record.certificate_no``, reserved at 登簿 with ``reserve_number``), or a newly
    reserved one written into that column when it is empty or already carried by a revoked
    document. Renders, signs and stores the PDF; status ``prepared`` (not yet visible to the
    holder). ``Conflict`` CERTIFICATE_EXISTS when the version has a live document (revoke it
    first). ``business_no`` (default: the version's 业务号) and ``remark`` lines are printed in
    附记. About 0.2–0.3 s of CPU.

``issue_certificate(conn, ctx, certificate_id, *, actor, at=None) -> CertificateRecord``
    At 发证: ``prepared`` → ``current``, available in the owner area from then on, and a
    ``certificate.issued`` event for subscribed departments and banks (``cadastre.sharing``).
    Current documents of earlier versions of the same right (a change registration) become
    superseded by this document's business. ``Conflict`` CERTIFICATE_NOT_PREPARED otherwise.

``supersede_for_right(conn, right_id, business_no, at, *, actor="system", key=None)``
    At 登簿 of a registration that closes or replaces a right (transfer, cancellation, change,
    correction): call in the same transaction that closes the old version. Its current
    documents say "superseded by ``business_no`` at ``at``" from then on (and a
    ``certificate.superseded`` event goes out); prepared ones that were never issued are
    revoked. Pass the audit key as ``key`` to audit each change.

``revoke_certificate(conn, ctx, certificate_id, *, reason, actor)``
    作废 (spoiled, wrongly issued, to be replaced): the verification page says revoked.

``reserve_number(conn, office, kind, year)`` (``cadastre.certificates.numbers``)
    The next free number of a series (per province, city, kind and year), unique against every
    number in the register; ``office_for(conn, county_code, settings)`` names it (one numbering
    with the cases' 登簿: ``cadastre.cases.numbers``).

``electronic_copy`` (prepare + issue in one step) makes the electronic version of a certificate
registered before (the demo's rights); ``issue_query_result`` a signed query result for a unit.
Batches (CLI, benchmark) go through ``cadastre.certificates.batch`` (worker processes).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cadastre.certificates.issue import (
        IssuingContext,
        electronic_copy,
        issue_certificate,
        issue_query_result,
        prepare_certificate,
        revoke_certificate,
        supersede_for_right,
    )
    from cadastre.certificates.numbers import office_for, reserve_number
    from cadastre.certificates.store import CertificateRecord

# exported lazily: a batch's worker processes import ``cadastre.certificates.worker`` without the
# database code behind these
_EXPORTS = {
    "CertificateRecord": "store", "IssuingContext": "issue", "electronic_copy": "issue",
    "issue_certificate": "issue", "issue_query_result": "issue", "office_for": "numbers",
    "prepare_certificate": "issue", "reserve_number": "numbers", "revoke_certificate": "issue",
    "supersede_for_right": "issue",
}
__all__ = [
    "CertificateRecord", "IssuingContext", "electronic_copy", "issue_certificate",
    "issue_query_result", "office_for", "prepare_certificate", "reserve_number",
    "revoke_certificate", "supersede_for_right",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
