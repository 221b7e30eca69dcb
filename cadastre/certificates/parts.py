"""The database side of a document's annexes (附图页): the HTML of the parcel map and the floor
plans of its unit (``compose`` turns them, with the record page, into the PDF).

The map pages are drawn with the public's view of the register (natural attributes only,
``Role.PUBLIC``): the public verification page shows them as images. The office printed on the
parcel map is the certificate's (``certificate.registry_office``, public too).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import date

import psycopg

from cadastre.access.privacy import Role
from cadastre.certificates.layout import document_html
from cadastre.certificates.record import CertificateContent
from cadastre.documents import floor_plan, parcel_map

_PARCELS_KEPT = 64


class AnnexBuilder:
    """HTML of the parcel map and floor plans; remembers the maps of recent parcels (a batch
    issues many units of one parcel: its map is the same for all of them)."""

    def __init__(self) -> None:
        self._parcels: OrderedDict[tuple[str, date, str], str] = OrderedDict()

    def parcel_html(self, conn: psycopg.Connection, content: CertificateContent,
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
        else:
            self._parcels.move_to_end(key)
        return html

    def annexes(self, conn: psycopg.Connection, content: CertificateContent, issued: date
                ) -> tuple[str | None, str | None]:
        """(parcel map document, floor-plan pages) of a certificate or proof; none for a query
        result."""
        if content.kind == "query_result":
            return None, None
        floor = None
        if content.house:
            floor = floor_plan.render_body(floor_plan.load(conn, content.unit_code, Role.PUBLIC),
                                           issued)
        return self.parcel_html(conn, content, issued), floor
