"""The database side of making a document: its number, the QR token and address, and the HTML
of the record page, the parcel map and the floor plans (``compose`` turns them into the PDF).

The map pages (附图页) are drawn with the public's view of the register (natural attributes only,
``Role.PUBLIC``): the public verification page shows them as images. The office printed on the
parcel map is the certificate's (``certificate.registry_office``, public too).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import date

import psycopg

from cadastre.access.privacy import Role
from cadastre.certificates.compose import DocumentParts
from cadastre.certificates.content import CertificateContent
from cadastre.certificates.layout import TITLES, document_html, record_html
from cadastre.documents import certificate as qr
from cadastre.documents import floor_plan, parcel_map

_PARCELS_KEPT = 64
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


class PartsBuilder:
    """Builds ``DocumentParts``; remembers the parcel maps of recent parcels (a batch issues
    many units of one parcel: the map is the same for all of them)."""

    def __init__(self) -> None:
        self._parcels: OrderedDict[tuple[str, date, str], str] = OrderedDict()

    def _parcel_html(self, conn: psycopg.Connection, content: CertificateContent,
                     issued: date) -> str:
        key = (content.unit_code[:19], issued, content.registry_office)
        html = self._parcels.get(key)
        if html is None:
            data = parcel_map.load(conn, content.unit_code, Role.PUBLIC)
            data.unit_code = ""                     # one map for every unit of the parcel
            data.registry_office = content.registry_office
            html = document_html(f"宗地图 {key[0]}", parcel_map.render_body(data, issued),
                                 content.registry_office, "宗地图")
            self._parcels[key] = html
            if len(self._parcels) > _PARCELS_KEPT:
                self._parcels.popitem(last=False)
        return html

    def build(self, conn: psycopg.Connection, content: CertificateContent, who: Identity,
              issued: date, remark: list[str], location: str) -> DocumentParts:
        title = TITLES[content.kind][0]
        body = record_html(content, who.number, issued, who.verify_url,
                           qr.qr_png(who.verify_url, box_size=6, border=2), remark)
        record = document_html(f"{title} {who.number}", body, content.registry_office,
                               f"{title}, {content.unit_code}")
        parcel = floor = None
        if content.kind != "query_result":
            parcel = self._parcel_html(conn, content, issued)
            if content.house:
                plan = floor_plan.load(conn, content.unit_code, Role.PUBLIC)
                floor = document_html(f"分层分户图 {content.unit_code}",
                                      floor_plan.render_body(plan, issued),
                                      content.registry_office, "分层分户图")
        return DocumentParts(record, parcel, floor, SIGNATURE_REASON[content.kind], location)
