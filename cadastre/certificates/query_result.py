"""不动产登记信息查询结果: what the register says about one unit now, for its holder.

自然状况 (the record table), then 权利状况 (ownership and land-use rights: holders, co-ownership,
certificate numbers), 抵押权 and 限制状况 (seizures, objections, pre-notices, easements), each
current registration as its certificate or proof record reads (``content.load``).
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from cadastre import labels
from cadastre.access.pii import PiiCipher
from cadastre.certificates import content as records
from cadastre.certificates.numbers import office_for
from cadastre.errors import NotFound
from cadastre.settings import Settings

_RIGHTS = """
SELECT version_id, kind, certificate_no FROM cad.right_record
WHERE unit_code = %s AND valid_to IS NULL AND status = 1 AND kind = ANY(%s)
ORDER BY registered_at, version_id
"""
_UNIT = "SELECT seat, use, building_area FROM cad.unit WHERE unit_code = %s AND valid_to IS NULL"
_PARCEL = ("SELECT seat, land_use, registered_area FROM cad.parcel WHERE parcel_code = %s "
           "AND valid_to IS NULL")


def load(conn: psycopg.Connection, cipher: PiiCipher, unit_code: str, as_of: datetime,
         settings: Settings) -> records.CertificateContent:
    house = unit_code[19] != "W"
    unit = conn.execute(_UNIT, (unit_code,)).fetchone() if house else None
    parcel = conn.execute(_PARCEL, (unit_code[:19],)).fetchone()
    if parcel is None or (house and unit is None):
        raise NotFound("UNIT_NOT_FOUND", "不动产单元不存在 / unit not found")
    rights = conn.execute(_RIGHTS, (unit_code, list(records.CERTIFICATE_KINDS
                                                    + records.PROOF_KINDS))).fetchall()
    holding: tuple[list[list[str]], ...] = ([], [], [])    # 权利状况, 抵押权, 限制状况
    office = office_for(conn, unit_code[:6], settings).name
    for version_id, kind, number in rights:
        doc = records.load(conn, cipher, version_id, settings)
        rec = doc.record
        office = doc.registry_office
        if doc.kind == "certificate":
            holding[0].append([labels.RIGHT_KIND.get(kind, kind), rec.get("holders", ""),
                               rec.get("co_ownership", ""), number or "",
                               rec.get("registered_at", "")])
        else:
            target = holding[1] if kind == "mortgage" else holding[2]
            target.append([rec.get("right_kind", ""), rec.get("holders", ""),
                           rec.get("obligors", "") or "—", "；".join(rec.get("other", [])),
                           number or "", rec.get("registered_at", "")])
    if house and unit is not None:
        seat, use = unit[0] or parcel[0], labels.label(labels.HOUSE_USE, unit[1]) or unit[1]
        size = f"房屋建筑面积 {records.area(unit[2])}"
    else:
        seat, use = parcel[0], labels.label(labels.LAND_USE, parcel[1]) or parcel[1]
        size = f"宗地面积 {records.area(parcel[2])}"
    result = records.CertificateContent("query_result", unit_code, None, None, None, office,
                                        house)
    result.record.update(unit_code=unit_code, seat=seat or "", use=use or "", area=size,
                         registry_office=office,
                         as_of=f"{records.day(as_of)} {as_of.strftime('%H:%M')}")
    proof_head = ["事项", "权利人", "义务人", "内容", "证明号", "登记时间"]
    result.tables = [
        ("权利状况 / Rights", ["权利", "权利人", "共有情况", "证书号", "登记时间"],
         holding[0] or [["无", "", "", "", ""]]),
        ("抵押权 / Mortgages", proof_head, holding[1] or [["无", "", "", "", "", ""]]),
        ("限制状况 / Restrictions", proof_head, holding[2] or [["无", "", "", "", "", ""]]),
    ]
    return result
