"""From HTML parts to the signed PDF: the record page(s), then the parcel map and the floor plans
(附图页), one PDF/A-3b document, sealed with the office's signature.

Needs no database: batches run it in worker processes (``cadastre.certificates.batch``). The
parcel map is laid out once per parcel and reused for every unit on it (layout is most of a
page's cost); the pages of the three renderings are written as one document by WeasyPrint.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from cadastre.certificates.layout import CSS
from cadastre.certificates.signing import OfficeSigner
from cadastre.documents.render import render_pages, write_pages

_PARCEL_CACHE_SIZE = 32


@dataclass(frozen=True)
class DocumentParts:
    """Everything a document is made of, as HTML documents (picklable, for worker processes)."""

    record_html: str                 # the record page(s): carries the PDF's metadata
    parcel_html: str | None          # 宗地图 (shared by the units of a parcel)
    floor_html: str | None           # 分层分户图, one page per floor
    reason: str                      # the signature's /Reason
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
        record = render_pages(parts.record_html, CSS)
        pages = list(record.pages)
        parcel = self._parcel_pages(parts.parcel_html) if parts.parcel_html else []
        plans = list(render_pages(parts.floor_html, CSS).pages) if parts.floor_html else []
        first, second = len(pages), len(pages) + len(parcel)
        pages += parcel + plans
        pdf = self.signer.sign(write_pages(record, pages), parts.reason, parts.location)
        return SignedDocument(pdf, hashlib.sha256(pdf).digest(), len(pages),
                              tuple(range(first, second)), tuple(range(second, len(pages))))
