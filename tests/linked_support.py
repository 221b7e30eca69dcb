"""Filed documents for tests: PDFs made with pypdf (plain, or carrying JavaScript the ways a
hostile file would), a PNG made with Pillow, and filing through the document library."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

from cadastre.access.pii import PiiCipher
from cadastre.demo.project import pdf_document
from cadastre.linked.documents import DocumentInput
from cadastre.linked.filing import Filed, file_upload


def plain_pdf(title: str = "测试文件") -> bytes:
    return pdf_document(title)


def pdf_with_names_js() -> bytes:
    """Document-level JavaScript in the names tree (/Root /Names /JavaScript)."""
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    action = writer._add_object(DictionaryObject({
        NameObject("/S"): NameObject("/JavaScript"),
        NameObject("/JS"): TextStringObject("app.alert('hello');")}))
    tree = DictionaryObject({NameObject("/Names"): ArrayObject([TextStringObject("a"), action])})
    writer._root_object[NameObject("/Names")] = DictionaryObject(
        {NameObject("/JavaScript"): writer._add_object(tree)})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_with_open_action_js() -> bytes:
    """An /OpenAction running JavaScript when the file is opened."""
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    action = DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                               NameObject("/JS"): TextStringObject("this.print();")})
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def png(size: int = 8) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def file_doc(conn: psycopg.Connection, cipher: PiiCipher, data_dir: Path, code: str,
             doc_type: str, doc_no: str, body: bytes | None = None, **facts: Any) -> Filed:
    """File a document as a department would (committed)."""
    facts.setdefault("issuer", "杭州市住房保障和房产管理局")
    facts.setdefault("issued_on", date(2026, 11, 2))
    doc = DocumentInput(doc_type, doc_no, **facts)
    filed = file_upload(conn, cipher, data_dir, code, doc, io.BytesIO(body or plain_pdf(doc_no)),
                        max_bytes=20 * 2**20, posted_by="test:department")
    conn.commit()
    return filed
