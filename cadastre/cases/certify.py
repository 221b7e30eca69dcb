"""A case's electronic certificates: 缮证 renders and signs the certificate or proof of every
right version the case's 登簿 entered with a number; 发证 issues them (superseding the documents
of the versions they replace); 登簿 itself supersedes the documents of the rights it closed.
Each call runs in the case move's transaction, so the stage, the documents, their audit rows and
their outbox events commit together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:                        # rendering and signing load only when a case certifies
    from cadastre.certificates.issue import IssuingContext


def supersede_closed(conn: psycopg.Connection, right_ids: Iterable[str], case_no: str,
                     at: datetime, *, actor: str, key: bytes) -> list[str]:
    """登簿 closed these rights: their current documents are superseded by ``case_no``."""
    from cadastre.certificates.issue import supersede_for_right

    return [rec.number for rid in dict.fromkeys(right_ids)
            for rec in supersede_for_right(conn, rid, case_no, at, actor=actor, key=key)]


def _entered_versions(conn: psycopg.Connection, case_id: uuid.UUID) -> list[int]:
    """The current right versions the case's 登簿 wrote that carry a certificate number."""
    return [r[0] for r in conn.execute(
        "SELECT r.version_id FROM reg.case c JOIN cad.right_record r ON r.change_id = c.change_id "
        "WHERE c.case_id = %s AND r.valid_to IS NULL AND r.status = 1 "
        "AND r.certificate_no IS NOT NULL ORDER BY r.version_id", (case_id,))]


def prepare(conn: psycopg.Connection, ctx: IssuingContext, case_id: uuid.UUID, case_no: str,
            *, actor: str) -> list[str]:
    """缮证: one signed document per entered version (status prepared); returns the numbers."""
    from cadastre.certificates.issue import prepare_certificate

    return [prepare_certificate(conn, ctx, v, actor=actor, business_no=case_no).number
            for v in _entered_versions(conn, case_id)]


def issue(conn: psycopg.Connection, ctx: IssuingContext, case_no: str, *,
          actor: str, at: datetime) -> list[str]:
    """发证: the case's prepared documents become current (their holders can download them)."""
    from cadastre.certificates.issue import issue_certificate

    ids = [r[0] for r in conn.execute(
        "SELECT certificate_id FROM cad.certificate WHERE business_no = %s "
        "AND status = 'prepared' ORDER BY serial", (case_no,))]
    return [issue_certificate(conn, ctx, i, actor=actor, at=at).number for i in ids]
