"""`cadastre certificates …`: issue electronic certificates and proofs (batches with a progress
bar), show one, verify a PDF file, revoke.

Exit codes: 0 success; 1 a domain error, or (``verify``) a file that is not a valid, current
document of this registry; 2 usage.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import uuid
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cadastre.certificates import IssuingContext, revoke_certificate, store
from cadastre.certificates.batch import issue_batch
from cadastre.certificates.content import CERTIFICATE_KINDS, PROOF_KINDS
from cadastre.certificates.signing import OfficeSigner
from cadastre.certificates.store import CertificateRecord
from cadastre.certificates.verify import check_file
from cadastre.errors import NotFound
from cadastre.settings import get_settings
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect

certificates_app = typer.Typer(help="电子证照 / electronic certificates and proofs",
                               no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


_PENDING = """
SELECT r.version_id FROM cad.right_record r
WHERE r.valid_to IS NULL AND r.status = 1 AND r.kind = ANY(%(kinds)s)
  AND (%(all)s OR r.version_id = ANY(%(versions)s) OR trim(r.unit_code) = ANY(%(units)s))
  AND NOT EXISTS (SELECT 1 FROM cad.certificate c WHERE c.right_version_id = r.version_id
                  AND c.status IN ('prepared', 'current'))
ORDER BY r.unit_code, r.version_id
LIMIT %(limit)s
"""


@certificates_app.command("issue")
def issue(
    unit: Annotated[list[str] | None, typer.Option(
        "--unit", help="unit code(s): their current rights")] = None,
    version: Annotated[list[int] | None, typer.Option(
        "--version", help="right version id(s)")] = None,
    all_rights: Annotated[bool, typer.Option(
        "--all", help="every current right without one")] = False,
    kind: Annotated[list[str] | None, typer.Option(
        "--kind", help="ownership, land_use, mortgage, pre_notice, objection, easement, "
                       "seizure (default: all)")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many")] = 100_000,
    workers: Annotated[int | None, typer.Option(
        min=1, help="signing processes (default: settings)")] = None,
) -> None:
    """Issue the electronic certificate or proof of current registrations (the numbers the
    register holds; rights that already have a live document are left alone)."""
    unit, version = unit or [], version or []
    kinds = list(kind or []) or list(CERTIFICATE_KINDS + PROOF_KINDS)
    unknown = sorted(set(kinds) - set(CERTIFICATE_KINDS + PROOF_KINDS))
    if unknown or not (unit or version or all_rights):
        err.print(f"unknown kind(s): {', '.join(unknown)}" if unknown else
                  "name --unit, --version or --all")
        raise typer.Exit(2)
    s = get_settings()
    url = ensure_database(s).url
    with connect(url) as conn:
        todo = [r[0] for r in conn.execute(_PENDING, {
            "kinds": kinds, "all": all_rights, "versions": list(version), "units": list(unit),
            "limit": limit})]
        conn.rollback()
    if not todo:
        console.print("nothing to issue")
        return
    ctx = IssuingContext.from_settings(s)
    with Progress(TextColumn("[bold]发证 issuing[/]"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, disable=len(todo) < 2) as bar:
        task = bar.add_task("issue", total=len(todo))
        result = issue_batch(url, ctx, todo, actor=_actor(), workers=workers,
                             progress=lambda done, _total: bar.update(task, completed=done))
    console.print(f"{len(result.issued)} issued in {result.seconds:.1f} s, "
                  f"{len(result.skipped)} skipped")
    for version_id, code in result.skipped[:20]:
        console.print(f"  skipped right version {version_id}: {code}")
    if len(todo) == 1 and result.issued:
        _print(result.issued[0])


def _find(conn: psycopg.Connection, ref: str) -> CertificateRecord:
    found: CertificateRecord | None
    try:
        found = store.get(conn, uuid.UUID(ref))
    except ValueError:
        found = store.by_number(conn, ref)
    if found is None:
        raise NotFound("CERTIFICATE_NOT_FOUND", "无此电子证照 / no such certificate")
    return found


def _print(rec: CertificateRecord) -> None:
    table = Table(show_header=False)
    for key, value in (("number", rec.number), ("id", rec.certificate_id), ("kind", rec.kind),
                       ("status", rec.status), ("unit", rec.unit_code),
                       ("right version", rec.right_version_id), ("business", rec.business_no),
                       ("prepared", rec.prepared_at), ("issued", rec.issued_at),
                       ("superseded by", rec.superseded_by), ("superseded at", rec.superseded_at),
                       ("revoked at", rec.revoked_at), ("revoked because", rec.revoked_reason),
                       ("sha256", rec.pdf_sha256.hex()), ("signer", rec.signer)):
        if value is not None:
            table.add_row(key, str(value))
    console.print(table)


@certificates_app.command("show")
def show(ref: Annotated[str, typer.Argument(help="number (浙(2026)…号) or id")],
         pdf: Annotated[Path | None, typer.Option(
             "--pdf", help="also write the signed PDF here")] = None,
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One certificate's record (and its PDF)."""
    with connect(ensure_database(get_settings()).url) as conn:
        rec = _find(conn, ref)
        if pdf is not None:
            pdf.write_bytes(store.document(conn, rec.certificate_id))
        conn.rollback()
    if as_json:
        console.print_json(json.dumps({**rec.as_dict(), "certificate_id": rec.certificate_id,
                                       "pdf_sha256": rec.pdf_sha256.hex()}, default=str,
                                      ensure_ascii=False))
    else:
        _print(rec)


@certificates_app.command("verify")
def verify_file(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check a PDF: the seal intact, trusted and over the whole file; and whether this exact
    file is a document the registry issued, still current. Exit 1 unless both hold."""
    s = get_settings()
    data = path.read_bytes()
    trust = OfficeSigner(IssuingContext.from_settings(s).files).trust_roots
    with connect(ensure_database(s).url) as conn:
        result = check_file(conn, data, trust)
        conn.rollback()
    sig, doc = result.signature, result.document
    out = {"file_sha256": hashlib.sha256(data).hexdigest(), "status": result.status,
           "signed": sig.signed, "intact": sig.intact, "valid": sig.valid,
           "trusted": sig.trusted, "whole_file": sig.whole_file, "signer": sig.signer,
           "signed_at": sig.signed_at, "number": doc.number if doc else None,
           "superseded_by": doc.superseded_by if doc else None}
    if as_json:
        console.print_json(json.dumps(out, default=str, ensure_ascii=False))
    else:
        colour = "green" if result.status == "valid" else "red"
        console.print(f"[{colour}]{result.status}[/]  signature: "
                      f"{'ok' if sig.ok else sig.summary or 'not valid'}")
        if doc is not None:
            _print(doc)
    if result.status != "valid":
        raise typer.Exit(1)


@certificates_app.command("revoke")
def revoke(ref: Annotated[str, typer.Argument(help="number (浙(2026)…号) or id")],
           reason: Annotated[str, typer.Option("--reason", help="why (kept for staff)")]
           ) -> None:
    """作废: the document is void from now on; its verification page says so."""
    s = get_settings()
    ctx = IssuingContext.from_settings(s)
    with connect(ensure_database(s).url) as conn:
        rec = revoke_certificate(conn, ctx, _find(conn, ref).certificate_id, reason=reason,
                                 actor=_actor())
        conn.commit()
    _print(rec)
