"""What a certificate or proof says, read from the register for one right version.

The record follows the national forms. 不动产权证书 (ownership and land-use rights):
权利人, 共有情况, 坐落, 不动产单元号, 权利类型, 权利性质, 用途, 面积, 使用期限, 权利其他状况, 附记.
不动产登记证明 (mortgage, pre-notice, objection, easement, seizure): 证明权利或事项,
权利人（申请人）, 义务人, 坐落, 不动产单元号, 其他, 附记.

Values are the printed text; every field is a field of the ``certificate`` entity of the
privacy policy, so the PDF (``Role.OWNER``: the holder's own document) and the public
verification page (``Role.PUBLIC``) take their fields from the one policy.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from cadastre import labels
from cadastre.access.pii import PiiCipher
from cadastre.certificates.numbers import office_for
from cadastre.certificates.record import CertificateContent, area, day, money, term
from cadastre.errors import InvalidInput, NotFound
from cadastre.settings import Settings

__all__ = ["CERTIFICATE_KINDS", "PROOF_KINDS", "CertificateContent", "area", "day", "load",
           "money", "term"]

CERTIFICATE_KINDS = ("ownership", "land_use")
PROOF_KINDS = ("mortgage", "pre_notice", "objection", "easement", "seizure")
_DETAIL_TABLES = {"ownership": "cad.ownership_detail", "land_use": "cad.ownership_detail",
                  "mortgage": "cad.mortgage_detail", "pre_notice": "cad.pre_notice_detail",
                  "objection": "cad.objection_detail", "easement": "cad.easement_detail",
                  "seizure": "cad.seizure_detail"}
# who the proof names as 权利人（申请人）: role 1 (权利人), for objections role 4 (申请人)
_HOLDER_ROLE = {"objection": 4}

_RIGHT = """
SELECT version_id, right_id, kind, unit_code, business_no, registration_type, right_type,
       certificate_no, registry_office, registered_at, right_start, right_end, status,
       valid_to IS NULL AND status = 1 AS current
FROM cad.right_record WHERE version_id = %s
"""
_PARTIES = """
SELECT rp.role, rp.seq, rp.share, rp.co_ownership, p.name_enc
FROM cad.right_party rp JOIN pii.party p USING (party_id)
WHERE rp.right_version_id = %s ORDER BY rp.role, rp.seq
"""
_UNIT = """
SELECT unit_code, seat, use, floor_no, floor_count, building_area, inner_area, shared_area
FROM cad.unit WHERE unit_code = %s AND valid_to IS NULL
"""
_PARCEL = """
SELECT parcel_code, seat, land_use, right_type, right_nature, registered_area
FROM cad.parcel WHERE parcel_code = %s AND valid_to IS NULL
"""
_BUILDING = """
SELECT floors_total, structure, completion_date FROM cad.building
WHERE building_code = %s AND valid_to IS NULL
"""
_LAND_RIGHT = """
SELECT version_id, right_start, right_end FROM cad.right_record
WHERE unit_code = %s AND kind = 'land_use' AND valid_to IS NULL AND status = 1
ORDER BY registered_at DESC LIMIT 1
"""


def _rows(conn: psycopg.Connection, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _one(conn: psycopg.Connection, sql: str, params: tuple[Any, ...]) -> dict[str, Any]:
    found = _rows(conn, sql, params)
    return found[0] if found else {}


def _names(parties: list[dict[str, Any]], cipher: PiiCipher, role: int) -> list[str]:
    return [cipher.decrypt(p["name_enc"]) or "" for p in parties if p["role"] == role]


def _co_ownership(parties: list[dict[str, Any]], cipher: PiiCipher) -> str:
    holders = [p for p in parties if p["role"] == 1]
    if not holders:
        return ""
    how = labels.label(labels.CO_OWNERSHIP, holders[0]["co_ownership"])
    if len(holders) == 1:
        return how or "单独所有"
    shares = [f"{cipher.decrypt(p['name_enc'])} {p['share']}" for p in holders if p["share"]]
    return "；".join([how or "共有", *shares])


# ------------------------------------------------------------------ the record of a right
def load(conn: psycopg.Connection, cipher: PiiCipher, right_version_id: int,
         settings: Settings) -> CertificateContent:
    """The certificate or proof record of a current right version. The office is the one the
    right names (登记机构), else the unit's county office (``reg.office``, the cases' settings)."""
    right = _one(conn, _RIGHT, (right_version_id,))
    if not right:
        raise NotFound("RIGHT_NOT_FOUND", "无此权利 / no such right version")
    kind = right["kind"]
    if kind not in CERTIFICATE_KINDS + PROOF_KINDS:
        raise InvalidInput("NO_CERTIFICATE_FOR_KIND", "该登记不发证书或证明 / this registration "
                           "gets neither a certificate nor a proof")
    if not right["current"]:
        raise InvalidInput("RIGHT_NOT_CURRENT", "该权利已不是现势登记 / the right is no longer "
                           "current")
    unit_code = right["unit_code"].strip()
    parties = _rows(conn, _PARTIES, (right_version_id,))
    detail = _one(conn, f"SELECT * FROM {_DETAIL_TABLES[kind]} WHERE right_version_id = %s",
                  (right_version_id,))
    unit = _one(conn, _UNIT, (unit_code,))
    parcel = _one(conn, _PARCEL, (unit_code[:19],))
    house = unit_code[19] != "W"
    if house and not unit:
        raise NotFound("UNIT_NOT_FOUND", "不动产单元不存在 / unit not found")
    content = CertificateContent(
        "certificate" if kind in CERTIFICATE_KINDS else "proof", unit_code, right_version_id,
        str(right["right_id"]), right["business_no"],
        right["registry_office"] or office_for(conn, unit_code[:6], settings).name, house)
    rec = content.record
    rec.update(unit_code=unit_code, seat=(unit or parcel).get("seat") or "",
               business_no=right["business_no"] or "", registered_at=day(right["registered_at"]),
               registry_office=content.registry_office)
    if content.kind == "certificate":
        _certificate_fields(conn, rec, right, parties, detail, unit, parcel, cipher)
    else:
        _proof_fields(conn, rec, right, parties, detail, cipher)
    return content


def _use(parcel: dict[str, Any], unit: dict[str, Any]) -> str:
    land = labels.label(labels.LAND_USE, parcel.get("land_use")) or parcel.get("land_use") or ""
    if not unit:
        return land
    return f"{land}/{labels.label(labels.HOUSE_USE, unit.get('use')) or unit.get('use')}"


def _certificate_fields(conn: psycopg.Connection, rec: dict[str, Any], right: dict[str, Any],
                        parties: list[dict[str, Any]], detail: dict[str, Any],
                        unit: dict[str, Any], parcel: dict[str, Any], cipher: PiiCipher) -> None:
    unit_code = rec["unit_code"]
    land_right = _one(conn, _LAND_RIGHT, (unit_code[:19] + "W00000000",))
    land_area = detail.get("land_area") or parcel.get("registered_area")
    nature = labels.label(labels.RIGHT_NATURE, parcel.get("right_nature")) or ""
    rec.update(
        holders="、".join(_names(parties, cipher, 1)),
        co_ownership=_co_ownership(parties, cipher),
        right_type=labels.label(labels.RIGHT_TYPE, right["right_type"]) or "",
        right_nature=nature, use=_use(parcel, unit))
    start = detail.get("land_use_start") or land_right.get("right_start")
    end = detail.get("land_use_end") or land_right.get("right_end")
    if right["kind"] == "land_use":
        rec["area"] = f"宗地面积 {area(land_area)}"
        rec["term"] = f"国有建设用地使用权 {term(right['right_start'], right['right_end'])}"
        rec["other"] = []
        return
    building = _one(conn, _BUILDING, (unit_code[:24],))
    land_part = f"共有宗地面积 {area(land_area)}" if land_area else ""
    rec["area"] = " / ".join(x for x in (land_part,
                                         f"房屋建筑面积 {area(unit.get('building_area'))}") if x)
    rec["term"] = f"国有建设用地使用权 {term(start, end)}" if (start or end) else ""
    other = [f"房屋结构：{labels.label(labels.STRUCTURE, building.get('structure')) or '—'}",
             f"专有建筑面积：{area(detail.get('exclusive_area') or unit.get('inner_area'))}",
             f"分摊建筑面积：{area(detail.get('shared_area') or unit.get('shared_area'))}",
             f"房屋总层数：{building.get('floors_total') or detail.get('floors_total') or '—'}",
             f"所在层：{detail.get('floor_label') or unit.get('floor_no') or '—'}"]
    if building.get("completion_date"):
        other.append(f"房屋竣工时间：{day(building['completion_date'])}")
    rec["other"] = other


def _proof_fields(conn: psycopg.Connection, rec: dict[str, Any], right: dict[str, Any],
                  parties: list[dict[str, Any]], detail: dict[str, Any],
                  cipher: PiiCipher) -> None:
    kind = right["kind"]
    holders = _names(parties, cipher, _HOLDER_ROLE.get(kind, 1))
    other: list[str] = []
    matter = labels.RIGHT_KIND.get(kind, kind)
    if kind == "mortgage":
        how = labels.label(labels.MORTGAGE_TYPE, detail.get("mortgage_type"))
        other = [f"抵押方式：{how or '—'}",
                 f"抵押不动产类型："
                 f"{labels.label(labels.MORTGAGE_PROPERTY, detail.get('property_kind')) or '—'}",
                 f"被担保主债权数额：{money(detail.get('secured_amount')) or '—'}",
                 f"债务履行期限：{term(detail.get('debt_start'), detail.get('debt_end')) or '—'}",
                 f"担保范围：{detail.get('scope') or '—'}"]
        if detail.get("max_amount"):
            other.insert(3, f"最高债权数额：{money(detail['max_amount'])}")
    elif kind == "pre_notice":
        sort = labels.label(labels.NOTICE_KIND, detail.get("notice_kind"))
        matter = f"预告登记（{sort}）" if sort else matter
        other = [f"取得价格：{money(detail.get('price')) or '—'}",
                 f"建筑面积：{area(detail.get('building_area')) or '—'}"]
    elif kind == "objection":
        other = [f"异议事项：{detail.get('matter') or '—'}"]
    elif kind == "easement":
        dominant = (detail.get("dominant_unit_code") or "").strip()
        holders = holders or _dominant_holders(conn, cipher, dominant)
        other = [f"供役地：{(detail.get('servient_unit_code') or '').strip()}",
                 f"需役地：{dominant}", f"地役权内容：{detail.get('content') or '—'}",
                 f"期限：{term(detail.get('easement_start'), detail.get('easement_end')) or '—'}"]
    elif kind == "seizure":
        holders = holders or [detail.get("authority") or ""]
        matter = labels.label(labels.SEIZURE_TYPE, detail.get("seizure_type")) or matter
        other = [f"查封文件：{detail.get('document') or '—'} {detail.get('document_no') or ''}",
                 f"查封期限：{term(detail.get('seizure_start'), detail.get('seizure_end')) or '—'}",
                 f"查封范围：{detail.get('scope') or '—'}"]
    rec.update(right_kind=matter, holders="、".join(h for h in holders if h),
               obligors="、".join(_names(parties, cipher, 2)),
               right_type=labels.label(labels.RIGHT_TYPE, right["right_type"]) or "",
               other=other)


def _dominant_holders(conn: psycopg.Connection, cipher: PiiCipher, dominant: str) -> list[str]:
    """Holders of the dominant land's current land-use right (the easement's beneficiaries)."""
    land = _one(conn, _LAND_RIGHT, (dominant,))
    if not land:
        return []
    return _names(_rows(conn, _PARTIES, (land["version_id"],)), cipher, 1)
