"""Shared by the certificate tests: a later registration simulated with the register's own
functions (until registration cases land), reading a certificate PDF back (text, XMP, QR), and
poppler's ``pdfsig`` with an NSS database that trusts the office's CA."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

import psycopg
import pypdfium2 as pdfium
import zxingcpp
from pypdf import PdfReader

from cadastre.access.pii import PiiCipher
from cadastre.certificates import supersede_for_right
from cadastre.certificates.signing import signing_files
from cadastre.register.versions import new_change
from cadastre.settings import Settings


def share_signing(test_settings: Settings, data_dir: Path) -> None:
    """Give an app's data dir the test session's office key and CA (like ``secrets.json``): the
    shared demo database keeps documents signed in earlier sessions, and they must verify."""
    source = signing_files(test_settings).key.parent
    target = data_dir / "signing"
    if not target.exists():
        shutil.copytree(source, target)


def transfer(conn: psycopg.Connection, cipher: PiiCipher, version_id: int, business_no: str,
             buyer: str, buyer_id: str, audit_key: bytes) -> tuple[int, datetime]:
    """A 转移登记 entered in the register: the ownership version is closed, the buyer's right
    written, and the old right's certificates superseded, in one transaction. Returns the new
    right version and the instant of the change."""
    with conn.transaction():
        change = new_change(conn, "registration", "test", f"转移登记 {business_no}")
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        row = conn.execute(
            "UPDATE cad.right_record SET valid_to = %s, status = 2, retired_by = %s "
            "WHERE version_id = %s AND valid_to IS NULL RETURNING right_id",
            (now, change, version_id)).fetchone()
        assert row is not None, "the right version is not current"
        new_version = conn.execute(
            """INSERT INTO cad.right_record (right_id, kind, unit_code, business_no,
                   registration_type, right_type, registration_reason, registry_office,
                   registrar_name, registered_at, right_start, right_end, status, valid_from,
                   change_id)
               SELECT %s, kind, unit_code, %s, 200, right_type, '买卖', registry_office,
                   registrar_name, %s, right_start, right_end, 1, %s, %s
               FROM cad.right_record WHERE version_id = %s RETURNING version_id""",
            (uuid.uuid4(), business_no, now, now, change, version_id)).fetchone()[0]
        conn.execute(
            "INSERT INTO cad.ownership_detail SELECT %s, land_use_start, land_use_end, "
            "transaction_price, house_use, house_nature, structure, floor_label, floors_total, "
            "building_area, exclusive_area, shared_area, land_area FROM cad.ownership_detail "
            "WHERE right_version_id = %s", (new_version, version_id))
        party = uuid.uuid4()
        conn.execute(
            "INSERT INTO pii.party (party_id, party_type, id_type, name_enc, name_hash, "
            "id_number_enc, id_number_hash) VALUES (%s, 1, 1, %s, %s, %s, %s)",
            (party, cipher.encrypt(buyer), cipher.lookup_hash(buyer), cipher.encrypt(buyer_id),
             cipher.lookup_hash(buyer_id)))
        conn.execute("INSERT INTO cad.right_party (right_version_id, party_id, role, seq, share, "
                     "co_ownership) VALUES (%s, %s, 1, 1, '100%%', 0)", (new_version, party))
        supersede_for_right(conn, row[0], business_no, now, actor="test", key=audit_key)
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
