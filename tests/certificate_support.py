"""Shared by the certificate tests: a later registration simulated with the register's own
functions (until registration cases land), reading a certificate PDF back (text, XMP, QR), and
poppler's ``pdfsig`` with an NSS database that trusts the office's CA."""

from __future__ import annotations

import io
import re
import subprocess
from datetime import datetime
from pathlib import Path

import psycopg
import pypdfium2 as pdfium
import zxingcpp
from pypdf import PdfReader

from cadastre.access.pii import PiiCipher
from cadastre.certificates import supersede_for_right
from cadastre.register import rights
from cadastre.register.versions import new_change
from tests.owner_support import new_person


def transfer(conn: psycopg.Connection, cipher: PiiCipher, version_id: int, business_no: str,
             buyer: str, buyer_id: str, audit_key: bytes) -> tuple[int, datetime]:
    """A 转移登记 entered with the register's own functions (``cadastre.register``): the
    ownership version closed, the buyer's right entered, and the old right's certificates
    superseded, in one transaction. Returns the new right version and the instant of the change."""
    with conn.transaction():
        right_id = conn.execute("SELECT right_id FROM cad.right_record WHERE version_id = %s",
                                (version_id,)).fetchone()[0]
        old = rights.by_right_id(conn, right_id)
        assert old is not None and old.version_id == version_id, "not the current version"
        change = new_change(conn, "registration", "test", f"转移登记 {business_no}")
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        party = new_person(conn, cipher, buyer, buyer_id)
        rights.close(conn, old, change, now)
        new_version = rights.enter(
            conn, change=change, at=now, kind=old.kind, unit_code=old.unit_code,
            business_no=business_no, registration_type=200, right_type=old.right_type,
            holders=[rights.Holder(party, 1, 1, "100%", 0)], detail_values=old.detail,
            reason="买卖")
        supersede_for_right(conn, old.right_id, business_no, now, actor="test", key=audit_key)
    return new_version, now


def pdf_text(pdf: bytes, pages: list[int] | None = None) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    chosen = range(len(reader.pages)) if pages is None else pages
    return "\n".join(reader.pages[i].extract_text() or "" for i in chosen)


def xmp(pdf: bytes) -> str:
    root = PdfReader(io.BytesIO(pdf)).trailer["/Root"]
    return root["/Metadata"].get_object().get_data().decode("utf-8")


def fonts(pdf: bytes) -> dict[str, bool]:
    """Base font name → embedded (a font file in its descriptor), over every page."""
    out: dict[str, bool] = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources = page.get("/Resources") or {}
        for font in (resources.get_object().get("/Font") or {}).values():
            font = font.get_object()
            descendant = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font \
                else font
            descriptor = descendant.get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor is not None else {}
            out[str(font["/BaseFont"])] = any(k in descriptor for k in ("/FontFile", "/FontFile2",
                                                                         "/FontFile3"))
    return out


def qr_on_page(pdf: bytes, page: int = 0) -> list[str]:
    doc = pdfium.PdfDocument(pdf)
    try:
        image = doc[page].render(scale=200 / 72).to_pil().convert("RGB")
    finally:
        doc.close()
    return [b.text for b in zxingcpp.read_barcodes(image) if b.format.name == "QRCode"]


def nss_trusting(ca_pem: Path, folder: Path) -> str:
    """An NSS database (for ``pdfsig -nssdir``) in which the office's CA is a trusted root."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{folder}", "--empty-password"], check=True,
                   capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{folder}", "-n", "office-ca", "-t", "C,C,C",
                    "-i", str(ca_pem)], check=True, capture_output=True)
    return f"sql:{folder}"


def pdfsig(path: Path, nssdir: str | None = None) -> str:
    args = ["pdfsig"] + (["-nssdir", nssdir] if nssdir else []) + [str(path)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return out.stdout + out.stderr


def url_path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)
