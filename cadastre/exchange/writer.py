"""Exchange XML messages written from the register.

- ``business_message``: the message of one registration business (one 登簿): the rights it
  entered, their units (parcel, building, floors, unit) and parties — what the reporting queue
  sends;
- ``write_extract``: the whole current register as a zip of messages, one per parcel (its
  features, every current right on its units, their parties), which ``cadastre.exchange``
  imports again into an identical register (``fingerprint``).

Values are written so that they read back exactly: coordinates as the shortest text that
round-trips a double, decimals with their scale, timestamps in China time with their fraction.
Party identities are decrypted here: callers restrict who may export (registrars) and the files
are written where only the server can read them.
"""

from __future__ import annotations

import uuid
import zipfile
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from lxml import etree

from cadastre.access.pii import PiiCipher
from cadastre.exchange import schema
from cadastre.exchange.values import CHINA

Progress = Callable[[float, str], None]
SPATIAL_COLUMNS = {"parcel": ("cad.parcel", "parcel_code"), "building": ("cad.building",
                   "building_code"), "unit": ("cad.unit", "unit_code")}


def text_of(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        local = value.astimezone(CHINA)
        return local.isoformat(timespec="microseconds" if local.microsecond else "seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (Decimal, uuid.UUID, int)):
        return str(value)
    return str(value).rstrip() if isinstance(value, str) else str(value)


def rec_type(kind: str, registration_type: int, unit_code: str) -> str:
    """The 7-digit business code (``data/exchange_tables.csv``) of a right's registration."""
    fixed = {"mortgage": "9000101", "easement": "9000102", "objection": "6000101",
             "pre_notice": "7000101", "seizure": "8000101", "cancellation": "4000101"}
    if kind in fixed:
        return fixed[kind]
    group = max(1, min(5, registration_type // 100))
    if group == 4:
        return "4000101"
    return f"{group}000402" if unit_code[19:20] == "F" else f"{group}000301"


class _Message:
    def __init__(self, head: dict[str, str | None]) -> None:
        self.root = etree.Element("Message")
        h = etree.SubElement(self.root, "Head")
        for name in schema.HEAD_FIELDS:
            etree.SubElement(h, name).text = head.get(name) or ""
        self.data = etree.SubElement(self.root, "Data")

    def row(self, table: str, values: dict[str, Any]) -> None:
        spec = schema.TABLES[table]
        attrs = {}
        for attr, column, _ in spec.fields:
            text = text_of(values.get(column))
            if text is not None and text != "":
                attrs[attr] = text
        attrs.setdefault("YSDM", "")
        if not attrs["YSDM"]:
            del attrs["YSDM"]
        etree.SubElement(self.data, table, attrs)

    def bytes(self, encoding: str = "UTF-8") -> bytes:
        return etree.tostring(self.root, xml_declaration=True, encoding=encoding)


def _dicts(cur: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
    rows = cur.fetchall()          # first: in pipeline mode it is what brings the description
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in rows]


def _rows(conn: psycopg.Connection, sql: str, params: Any) -> list[dict[str, Any]]:
    return _dicts(conn.execute(sql, params))


_PARCEL = ("SELECT p.*, ST_SRID(p.geom) AS srid FROM cad.parcel p WHERE p.valid_to IS NULL "
           "AND p.parcel_code = ANY(%s) ORDER BY p.parcel_code")
_POINTS = ("SELECT p.parcel_code, (d).path[1] AS ring_no, (d).path[2] AS seq, "
           "ST_X((d).geom) AS x, ST_Y((d).geom) AS y FROM cad.parcel p, "
           "ST_DumpPoints(ST_GeometryN(p.geom, 1)) d WHERE p.valid_to IS NULL AND "
           "p.parcel_code = ANY(%s) ORDER BY 1, 2, 3")
_BUILDING = ("SELECT b.*, ST_AsText(b.geom) AS wkt FROM cad.building b WHERE b.valid_to IS NULL "
             "AND b.building_code = ANY(%s) ORDER BY b.building_code")
_FLOOR = ("SELECT f.*, ST_AsText(f.geom) AS wkt FROM cad.floor f WHERE f.valid_to IS NULL AND "
          "f.building_code = ANY(%s) ORDER BY f.building_code, f.floor_no")
_UNIT = ("SELECT u.*, ST_AsText(u.geom) AS wkt FROM cad.unit u WHERE u.valid_to IS NULL AND "
         "u.unit_code = ANY(%s) ORDER BY u.unit_code")
_RIGHTS = ("SELECT r.*, r.version_id AS vid FROM cad.right_record r WHERE r.version_id = ANY(%s) "
           "ORDER BY r.unit_code, r.version_id")
_PARTIES = ("SELECT rp.right_version_id, rp.role, rp.seq, rp.share, rp.co_ownership, "
            "p.party_type, p.id_type, p.name_enc, p.id_number_enc, p.phone_enc, p.address_enc "
            "FROM cad.right_party rp JOIN pii.party p USING (party_id) "
            "WHERE rp.right_version_id = ANY(%s) ORDER BY rp.right_version_id, rp.role, rp.seq, "
            "p.party_id")


def _detail_tables(kinds: Iterable[str] | None) -> list[str]:
    from cadastre.register.rights import DETAIL_TABLE

    return sorted({t for k, t in DETAIL_TABLE.items() if kinds is None or k in kinds})


def _write(conn: psycopg.Connection, cipher: PiiCipher, msg: _Message, parcels: Sequence[str],
           buildings: Sequence[str], units: Sequence[str], version_ids: Sequence[int],
           kinds: Iterable[str] | None, all_floors: bool) -> None:
    """Read everything the message holds in one round trip (the queries pipelined), then write
    its rows: parcels, boundary points, buildings, floors, units, rights and their parties."""
    tables = _detail_tables(kinds)
    queries: list[tuple[str, Any]] = [
        (_PARCEL, (list(parcels),)), (_POINTS, (list(parcels),)),
        (_BUILDING, (list(buildings),)), (_UNIT, (list(units),)), (_FLOOR, (list(buildings),)),
        (_RIGHTS, (list(version_ids),)), (_PARTIES, (list(version_ids),)),
        *((f"SELECT * FROM {t} WHERE right_version_id = ANY(%s)", (list(version_ids),))
          for t in tables)]
    with conn.pipeline():
        cursors = [conn.execute(sql, params) for sql, params in queries]
    parcel_rows, points, building_rows, unit_rows, floor_rows, rights, party_rows, *details = (
        _dicts(c) for c in cursors)
    for p in parcel_rows:
        msg.row("KTT_ZDJBXX", p)
    for pt in points:
        msg.row("ZD_K_103", {"unit_code": pt["parcel_code"].strip() + "W00000000",
                             "seq": pt["seq"], "ring_no": pt["ring_no"],
                             "x_north": pt["y"], "y_east": pt["x"]})
    for b in building_rows:
        msg.row("KTT_FW_ZRZ", {**b, "geom": b["wkt"]})
    floors_of = {(u["building_code"].strip(), u["floor_no"]) for u in unit_rows}
    for f in floor_rows:
        if all_floors or (f["building_code"].strip(), f["floor_no"]) in floors_of:
            msg.row("KTT_FW_C", {**f, "geom": f["wkt"]})
    for u in unit_rows:
        msg.row("KTT_FW_H", {**u, "geom": u["wkt"]})
    _write_rights(cipher, msg, rights, party_rows,
                  {d["right_version_id"]: d for rows in details for d in rows})


def _write_rights(cipher: PiiCipher, msg: _Message, rights: list[dict[str, Any]],
                  party_rows: list[dict[str, Any]], details: dict[int, dict[str, Any]]) -> None:
    parties: dict[int, list[dict[str, Any]]] = {}
    for p in party_rows:
        parties.setdefault(p["right_version_id"], []).append(p)
    for r in rights:
        table = schema.RIGHT_TABLE_OF_KIND[r["kind"]]
        values = {**details.get(r["vid"], {}), **r}
        msg.row(table, values)
        for p in parties.get(r["vid"], []):
            msg.row("ZTT_GY_QLR", {
                "unit_code": r["unit_code"], "certificate_no": r["certificate_no"],
                "seq": p["seq"], "name": cipher.decrypt(p["name_enc"]),
                "id_type": p["id_type"], "id_number": cipher.decrypt(p["id_number_enc"]),
                "phone": cipher.decrypt(p["phone_enc"]),
                "address": cipher.decrypt(p["address_enc"]), "party_type": p["party_type"],
                "share": p["share"], "co_ownership": p["co_ownership"],
                "role": p["role"] if p["role"] != 1 else None, "right_id": r["right_id"]})


def _head(biz_msg_id: str, area: str, rec: str, flow: str, unit: str, created: datetime,
          office: str | None) -> dict[str, str | None]:
    return {"BizMsgID": biz_msg_id, "ASID": "AS100", "AreaCode": area, "RecType": rec,
            "RightType": None, "RegType": rec[:1] + "00", "CreateDate":
            created.astimezone(CHINA).strftime("%Y-%m-%dT%H:%M:%S"), "RecFlowID": flow,
            "RegOrgID": office, "ParcelID": unit[:19], "EstateNum": unit, "CertCount": "0",
            "ProofCount": "0"}


def version_message(conn: psycopg.Connection, cipher: PiiCipher, version_ids: Sequence[int],
                    business_no: str, biz_msg_id: str, created: datetime,
                    encoding: str = "UTF-8") -> tuple[str, bytes]:
    """The message of one registration business from the right versions it wrote (or closed):
    their units and parties. Returns the business code (RecType) and the message."""
    rights = _rows(conn, "SELECT version_id, kind, unit_code, registration_type, right_type, "
                   "registry_office FROM cad.right_record WHERE version_id = ANY(%s) "
                   "ORDER BY version_id", (list(version_ids),))
    if not rights:
        raise ValueError("no such right version")
    first = rights[0]
    unit = first["unit_code"].strip()
    rec = rec_type(first["kind"], first["registration_type"], unit)
    head = _head(biz_msg_id, unit[:6], rec, business_no, unit, created, first["registry_office"])
    head["RightType"] = str(first["right_type"])
    msg = _Message(head)
    units = sorted({r["unit_code"].strip() for r in rights})
    houses = [u for u in units if u[19] == "F"]
    _write(conn, cipher, msg, sorted({u[:19] for u in units}), sorted({u[:24] for u in houses}),
           houses, [r["version_id"] for r in rights], {r["kind"] for r in rights},
           all_floors=False)
    etree.SubElement(msg.data, "DJT_DJ_SLSQ", {"YWH": business_no, "DJDL": rec[:1] + "00",
                                                "QXDM": unit[:6]})
    return rec, msg.bytes(encoding)


def business_message(conn: psycopg.Connection, cipher: PiiCipher, business_no: str,
                     biz_msg_id: str, created: datetime, encoding: str = "UTF-8") -> bytes:
    """The message of a business from the right versions that carry its number."""
    ids = [r[0] for r in conn.execute("SELECT version_id FROM cad.right_record WHERE "
                                      "business_no = %s ORDER BY version_id", (business_no,))]
    if not ids:
        raise ValueError("no right carries this business number")
    return version_message(conn, cipher, ids, business_no, biz_msg_id, created, encoding)[1]


def parcel_message(conn: psycopg.Connection, cipher: PiiCipher, parcel_code: str, n: int,
                   created: datetime) -> bytes:
    """One parcel with everything on it: its features and every current right on its units."""
    with conn.pipeline():
        cursors = [conn.execute(sql, (parcel_code,)) for sql in (
            "SELECT building_code FROM cad.building WHERE valid_to IS NULL AND parcel_code = %s "
            "ORDER BY 1",
            "SELECT unit_code FROM cad.unit WHERE valid_to IS NULL AND parcel_code = %s ORDER BY 1",
            "SELECT version_id FROM cad.right_record WHERE valid_to IS NULL AND status = 1 AND "
            "substr(unit_code, 1, 19) = %s ORDER BY version_id")]
    buildings, units, rights = ([r[0] for r in c.fetchall()] for c in cursors)
    area = parcel_code[:6]
    msg = _Message(_head(f"{area}{created.astimezone(CHINA):%y%m%d}{n % 1_000_000:06d}", area,
                         "1000402" if units else "1000301", f"EXTRACT-{parcel_code}",
                         parcel_code + "W00000000", created, None))
    _write(conn, cipher, msg, [parcel_code], buildings, units, rights, None, all_floors=True)
    return msg.bytes()


def write_extract(conn: psycopg.Connection, cipher: PiiCipher, target: Path,
                  progress: Progress | None = None, parcels: Iterable[str] | None = None) -> int:
    """The current register as a zip of messages (one per parcel); the number of messages."""
    codes = list(parcels) if parcels is not None else [r[0] for r in conn.execute(
        "SELECT parcel_code FROM cad.parcel WHERE valid_to IS NULL ORDER BY parcel_code")]
    created = datetime.now(CHINA)
    tmp = target.with_name(target.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for n, code in enumerate(codes, start=1):
            body = parcel_message(conn, cipher, code.strip(), n, created)
            zf.writestr(f"Biz{n:08d}.xml", body)
            if progress and n % 200 == 0:
                progress(n / max(len(codes), 1), f"{n}/{len(codes)} parcels")
    tmp.replace(target)
    return len(codes)
