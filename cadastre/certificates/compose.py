"""From a document's parts to the signed PDF: the record page(s) with the QR code, then the
parcel map and the floor plans (附图页), one PDF/A-3b document, sealed with the office's signature.

Needs no database: batches run it in worker processes (``cadastre.certificates.batch``). The
record page and the floor plans are one WeasyPrint rendering; the parcel map is rendered and
written once per parcel and the office's seal once per office, and copied into each document
(pages inserted, the seal stamped where the layout left room for it).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date

from cadastre.certificates.layout import CSS, TITLES, document_html, record_html
from cadastre.certificates.record import CertificateContent
from cadastre.certificates.seal import seal_pdf, seal_place
from cadastre.certificates.signing import OfficeSigner
from cadastre.documents import certificate as qr
from cadastre.documents.render import combine, render_pages, write_pages

_PARCEL_CACHE_SIZE = 4      # a batch runs through units in code order: parcel by parcel
_PLAN_ANCHOR = "floor-plans"      # the first floor-plan page carries this anchor
SIGNATURE_REASON = {"certificate": "不动产登记机构颁发电子不动产权证书",
                    "proof": "不动产登记机构颁发电子不动产登记证明",
                    "query_result": "不动产登记机构出具不动产登记信息查询结果"}


@dataclass(frozen=True)
class Identity:
    """How a document is known: its serial (the QR token names it) and its number."""

    serial: int
    number: str
    token: str
    verify_url: str


def identity(lookup_key: bytes, public_url: str, serial: int, number: str) -> Identity:
    token = qr.certificate_token(lookup_key, serial, qr.DOCUMENT)
    return Identity(serial, number, token, qr.verification_url(public_url, token))


@dataclass(frozen=True)
class DocumentParts:
    """Everything a document is made of (picklable, for worker processes)."""

    content: CertificateContent
    identity: Identity
    issued: date
    remark: tuple[str, ...]
    parcel_html: str | None          # 宗地图 (the same for the units of a parcel): a document
    floor_body: str | None           # 分层分户图, one ``div.page`` per floor: rendered with the
                                     # record page (one rendering less)
    location: str                    # the signature's /Location
    parcel_pdf: bytes | None = None  # the parcel map already written (``Composer.parcel_pdf``):
                                     # a batch writes each parcel's once for all its workers


@dataclass(frozen=True)
class SignedDocument:
    pdf: bytes
    sha256: bytes
    pages: int
    parcel_pages: tuple[int, ...]    # 0-based pages of the parcel map
    plan_pages: tuple[int, ...]      # ... and of the floor plans


class Composer:
    """Renders and signs documents; keeps the written parcel maps of recent parcels."""

    def __init__(self, signer: OfficeSigner) -> None:
        self.signer = signer
        self._parcels: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def parcel_pdf(self, html: str) -> bytes:
        """The parcel map of ``html`` as a PDF/A-3b document, written once per parcel: its
        pages are copied into each document of the parcel as they are (painting and font
        subsetting a map page cost about as much as laying it out)."""
        key = hashlib.sha256(html.encode("utf-8")).digest()
        with self._lock:
            pdf = self._parcels.get(key)
            if pdf is not None:
                self._parcels.move_to_end(key)
                return pdf
        pdf = write_pages(render_pages(html, CSS))
        with self._lock:
            self._parcels[key] = pdf
            if len(self._parcels) > _PARCEL_CACHE_SIZE:
                self._parcels.popitem(last=False)
        return pdf

    def compose(self, parts: DocumentParts) -> SignedDocument:
        content, who = parts.content, parts.identity
        title = TITLES[content.kind][0]
        body = record_html(content, who.number, parts.issued, who.verify_url,
                           qr.qr_png(who.verify_url, box_size=6, border=2), list(parts.remark))
        if parts.floor_body:
            body += f"<div id=\"{_PLAN_ANCHOR}\" class=\"annex\">{parts.floor_body}</div>"
        record = render_pages(document_html(f"{title} {who.number}", body,
                                            content.registry_office,
                                            f"{title}, {content.unit_code}"), CSS)
        ours = list(record.pages)
        split = next((i for i, page in enumerate(ours) if _PLAN_ANCHOR in page.anchors),
                     len(ours))
        parcel = parts.parcel_pdf
        if parcel is None and parts.parcel_html:
            parcel = self.parcel_pdf(parts.parcel_html)
        seal = seal_pdf(content.registry_office)
        stamps = [(seal, i, place) for i, page in enumerate(ours)
                  if (place := seal_place(page)) is not None]
        pdf, inserted = combine(write_pages(record, compress=False),
                                (parcel, split) if parcel else None, stamps)
        pdf = self.signer.sign(pdf, SIGNATURE_REASON[content.kind], parts.location)
        first, second = split, split + inserted
        return SignedDocument(pdf, hashlib.sha256(pdf).digest(), len(ours) + inserted,
                              tuple(range(first, second)),
                              tuple(range(second, len(ours) + inserted)))
