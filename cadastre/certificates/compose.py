"""From a document's parts to the signed PDF: the record page(s) with the QR code, then the
parcel map and the floor plans (附图页), one PDF/A-3b document, sealed with the office's signature.

Needs no database: batches run it in worker processes (``cadastre.certificates.batch``). The
parcel map is laid out once per parcel and reused for every unit on it (layout is most of a
page's cost); the pages of the three renderings are written as one document by WeasyPrint.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Any

from cadastre.certificates.layout import CSS, TITLES, document_html, record_html
from cadastre.certificates.record import CertificateContent
from cadastre.certificates.signing import OfficeSigner
from cadastre.documents import certificate as qr
from cadastre.documents.render import render_pages, write_pages

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


@dataclass(frozen=True)
class SignedDocument:
    pdf: bytes
    sha256: bytes
    pages: int
    parcel_pages: tuple[int, ...]    # 0-based pages of the parcel map
    plan_pages: tuple[int, ...]      # ... and of the floor plans


class Composer:
    """Renders and signs documents; keeps the laid-out parcel maps of recent parcels."""

    def __init__(self, signer: OfficeSigner) -> None:
        self.signer = signer
        self._parcels: OrderedDict[bytes, Any] = OrderedDict()

    def _parcel_pages(self, html: str) -> list[Any]:
        key = hashlib.sha256(html.encode("utf-8")).digest()
        doc = self._parcels.get(key)
        if doc is None:
            doc = render_pages(html, CSS)
            self._parcels[key] = doc
            if len(self._parcels) > _PARCEL_CACHE_SIZE:
                self._parcels.popitem(last=False)
        else:
            self._parcels.move_to_end(key)
        return list(doc.pages)

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
        parcel = self._parcel_pages(parts.parcel_html) if parts.parcel_html else []
        pages = ours[:split] + parcel + ours[split:]
        first, second = split, split + len(parcel)
        pdf = self.signer.sign(write_pages(record, pages), SIGNATURE_REASON[content.kind],
                               parts.location)
        return SignedDocument(pdf, hashlib.sha256(pdf).digest(), len(pages),
                              tuple(range(first, second)), tuple(range(second, len(pages))))
