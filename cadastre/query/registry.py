"""一码关联: everything the registry holds under one unit code, for registry staff.

The unit (the version valid at ``as_of``, else the current or last one), its building and
parcel, every registration record linked to the code — current and history, every kind, with the
kind's detail table and the parties (decrypted only for the fields the caller may see) — the
records of the land under it (the parcel's land-only code ``…W00000000``: land use rights,
easements burdening or benefiting it), and the lineage of the unit and the parcel.

Reuses :mod:`cadastre.query.records` for the as-of semantics (``rights_as_of``, ``parcel_as_of``,
``parcel_lineage``). Returns plain records keyed by privacy-policy field names; the caller applies
the policy.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from cadastre import labels as L
from cadastre.access.pii import PiiCipher
from cadastre.codes import LAND_ONLY_SUFFIX, building_code_of, parcel_code_of
from cadastre.errors import NotFound
from cadastre.query import records as rec
from cadastre.query.features import label_building, label_unit

_UNIT = """
SELECT t.feature_id AS id, t.unit_code::text AS unit_code, t.building_code::text AS building_code,
       t.parcel_code::text AS parcel_code, t.floor_no::int AS floor_no,
       t.floor_count::int AS floor_count, t.room_no, t.seat, t.use,
       t.house_type::int AS house_type, t.house_nature::int AS house_nature, t.layout,
       t.building_area::float8 AS building_area, t.inner_area::float8 AS inner_area,
       t.shared_area::float8 AS shared_area, t.shared_coefficient::float8 AS shared_coefficient,
       t.base_elevation::float8 AS base_elevation, t.height::float8 AS height,
       t.valid_from, t.valid_to
FROM cad.unit t
WHERE t.unit_code = %(code)s AND t.county_code = left(%(code)s, 6)::bpchar AND {when}
ORDER BY t.valid_from DESC LIMIT 1
"""

_BUILDING = """
SELECT t.feature_id AS id, t.building_code::text AS building_code,
       t.parcel_code::text AS parcel_code, t.name, t.project_name,
       t.floors_total::int AS floors_total, t.floors_above::int AS floors_above,
       t.floors_below::int AS floors_below, t.height::float8 AS height,
       t.structure::int AS structure, t.planned_use, t.completion_date,
       t.floor_area::float8 AS floor_area, t.footprint_area::float8 AS footprint_area,
       t.valid_from, t.valid_to
FROM cad.building t
WHERE t.building_code = %(code)s AND {when}
ORDER BY t.valid_from DESC LIMIT 1
"""

# valid at %(at)s, or (no as_of) the latest version, current or not
_AT = "t.valid_from <= %(at)s AND (t.valid_to IS NULL OR t.valid_to > %(at)s)"
_LATEST = "true"

_RECORDS = """
WITH v AS (   -- two index look-ups (an OR of them would scan the whole table)
    SELECT version_id, county_code FROM cad.right_record WHERE unit_code = %(code)s
        AND county_code = left(%(code)s, 6)::bpchar
    UNION
    SELECT right_version_id, county_code FROM cad.easement_detail
    WHERE dominant_unit_code = %(code)s
)
SELECT r.version_id, r.right_id AS id, r.kind, r.unit_code::text AS unit_code, r.business_no,
       r.registration_type::int AS registration_type, r.right_type::int AS right_type,
       r.registration_reason, r.certificate_no, r.registry_office, r.registrar_name,
       r.registered_at, r.right_start, r.right_end, r.status::int AS status, r.remark,
       r.valid_from, r.valid_to,
       coalesce(to_jsonb(o), to_jsonb(m), to_jsonb(pn), to_jsonb(sz), to_jsonb(ob),
                to_jsonb(e), to_jsonb(c)) - 'right_version_id' - 'county_code' AS detail
FROM v
JOIN cad.right_record r ON r.version_id = v.version_id AND r.county_code = v.county_code
LEFT JOIN cad.ownership_detail o ON o.right_version_id = r.version_id
    AND o.county_code = r.county_code
LEFT JOIN cad.mortgage_detail m ON m.right_version_id = r.version_id
    AND m.county_code = r.county_code
LEFT JOIN cad.pre_notice_detail pn ON pn.right_version_id = r.version_id
    AND pn.county_code = r.county_code
LEFT JOIN cad.seizure_detail sz ON sz.right_version_id = r.version_id
    AND sz.county_code = r.county_code
LEFT JOIN cad.objection_detail ob ON ob.right_version_id = r.version_id
    AND ob.county_code = r.county_code
LEFT JOIN cad.easement_detail e ON e.right_version_id = r.version_id
    AND e.county_code = r.county_code
LEFT JOIN cad.cancellation_detail c ON c.right_version_id = r.version_id
    AND c.county_code = r.county_code
WHERE %(at)s::timestamptz IS NULL OR r.valid_from <= %(at)s::timestamptz
ORDER BY r.valid_from, r.version_id
"""

_PARTIES = """
SELECT rp.right_version_id, rp.role::int AS role, rp.seq::int AS seq, rp.share,
       rp.co_ownership::int AS co_ownership, p.party_id AS id, p.party_type::int AS party_type,
       p.id_type::int AS id_type, p.name_enc, p.id_number_enc, p.phone_enc, p.address_enc
FROM cad.right_party rp JOIN pii.party p ON p.party_id = rp.party_id
WHERE rp.right_version_id = ANY(%(vids)s)
ORDER BY rp.right_version_id, rp.role, rp.seq
"""

_PII = {"name": "name_enc", "id_number": "id_number_enc", "phone": "phone_enc",
        "address": "address_enc"}


@dataclass
class Registration:
    record: dict[str, Any]               # entity 'right'
    detail: dict[str, Any]               # entity 'right_detail'
    parties: list[dict[str, Any]]        # entity 'party'


@dataclass
class UnitRegistry:
    unit_code: str
    land_code: str
    as_of: datetime | None
    unit: dict[str, Any] | None          # entity 'unit'
    building: dict[str, Any] | None      # entity 'building'
    parcel: dict[str, Any] | None        # entity 'parcel'
    records: list[Registration]
    land_records: list[Registration]
    lineage: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)


def _one(conn: psycopg.Connection, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
    row = conn.cursor(row_factory=dict_row).execute(sql, params).fetchone()  # type: ignore[arg-type]
    if row is not None and isinstance(row.get("id"), UUID):
        row["id"] = str(row["id"])
    return row


def _label_detail(kind: str, detail: dict[str, Any]) -> dict[str, Any]:
    if kind in ("ownership", "land_use", "pre_notice"):
        detail["house_use_label"] = L.label(L.HOUSE_USE, detail.get("house_use"))
    if kind in ("ownership", "land_use"):
        detail["structure_label"] = L.label(L.STRUCTURE, detail.get("structure"))
        detail["house_nature_label"] = L.label(L.HOUSE_NATURE, detail.get("house_nature"))
    if kind == "mortgage":
        detail["mortgage_type_label"] = L.label(L.MORTGAGE_TYPE, detail.get("mortgage_type"))
        detail["property_kind_label"] = L.label(L.MORTGAGE_PROPERTY, detail.get("property_kind"))
    if kind == "pre_notice":
        detail["notice_kind_label"] = L.label(L.NOTICE_KIND, detail.get("notice_kind"))
    if kind == "seizure":
        detail["seizure_type_label"] = L.label(L.SEIZURE_TYPE, detail.get("seizure_type"))
    return detail


def _registrations(conn: psycopg.Connection, cipher: PiiCipher, code: str,
                   at: datetime | None, in_force: set[tuple[UUID, datetime]] | None,
                   decrypt: Collection[str]) -> list[Registration]:
    rows = conn.cursor(row_factory=dict_row).execute(
        _RECORDS, {"code": code, "at": at}).fetchall()  # type: ignore[arg-type]
    parties: dict[int, list[dict[str, Any]]] = {}
    vids = [r["version_id"] for r in rows]
    if vids:
        for p in conn.cursor(row_factory=dict_row).execute(_PARTIES, {"vids": vids}):
            vid = p.pop("right_version_id")
            party = {k: v for k, v in p.items() if not k.endswith("_enc")}
            party["id"] = str(party["id"])
            for name, column in _PII.items():
                # plaintext exists only for fields the caller's policy shows (masked or full)
                if name in decrypt:
                    party[name] = cipher.decrypt(p[column])
            party["party_type_label"] = L.label(L.PARTY_TYPE, party["party_type"])
            party["id_type_label"] = L.label(L.ID_TYPE, party["id_type"])
            party["role_label"] = L.label(L.PARTY_ROLE, party["role"])
            party["co_ownership_label"] = L.label(L.CO_OWNERSHIP, party["co_ownership"])
            parties.setdefault(vid, []).append(party)
    out = []
    for r in rows:
        detail = _label_detail(r["kind"], r.pop("detail") or {})
        r["id"] = str(r["id"])
        if in_force is None:
            r["in_force"] = r["status"] == 1 and r["valid_to"] is None
        else:
            r["in_force"] = (UUID(r["id"]), r["valid_from"]) in in_force
        r["kind_label"] = L.label(L.RIGHT_KIND, r["kind"])
        r["status_label"] = L.label(L.RIGHT_STATUS, r["status"])
        r["registration_type_label"] = L.label(L.REGISTRATION_TYPE, r["registration_type"])
        r["right_type_label"] = L.label(L.RIGHT_TYPE, r["right_type"])
        if r["kind"] == "mortgage":
            r["secured_amount"] = detail.get("secured_amount")
        out.append(Registration(r, detail, parties.get(r["version_id"], [])))
    _priorities(out)
    return out


def _priorities(records: list[Registration]) -> None:
    """顺位: the mortgages in force, ranked by when each was first registered (a later version
    of a mortgage keeps its rank; a released one frees its place)."""
    first: dict[str, datetime] = {}
    for r in records:
        if r.record["kind"] == "mortgage":
            rid = r.record["id"]
            first[rid] = min(first.get(rid, r.record["valid_from"]), r.record["valid_from"])
    live = sorted({r.record["id"] for r in records
                   if r.record["kind"] == "mortgage" and r.record["in_force"]},
                  key=lambda rid: (first[rid], rid))
    rank = {rid: i for i, rid in enumerate(live, start=1)}
    for r in records:
        if r.record["kind"] == "mortgage":
            r.record["priority"] = rank.get(r.record["id"]) if r.record["in_force"] else None


def _in_force(conn: psycopg.Connection, code: str, at: datetime
              ) -> set[tuple[UUID, datetime]]:
    return {(r.right_id, r.valid_from) for r in rec.rights_as_of(conn, code, at)}


def _status(records: Iterable[Registration]) -> dict[str, Any]:
    """The unit's registration status and encumbrance flags from the records in force (the
    rule of cad.refresh_unit_status, applied at any instant)."""
    kinds = {r.record["kind"] for r in records if r.record["in_force"]}
    status = ("registered" if "ownership" in kinds else
              "pre_sale" if "pre_notice" in kinds else "unregistered")
    return {"registration_status": status, "mortgaged": "mortgage" in kinds,
            "seized": "seizure" in kinds, "pre_noticed": "pre_notice" in kinds,
            "objected": "objection" in kinds}


def _parcel(conn: psycopg.Connection, parcel_code: str, at: datetime | None
            ) -> dict[str, Any] | None:
    when = at
    if when is None:   # the current version, or the last one of a retired parcel
        row = conn.execute("SELECT max(valid_from) FROM cad.parcel WHERE parcel_code = %s",
                           (parcel_code,)).fetchone()
        when = row[0] if row else None
    if when is None:
        return None
    try:
        p = rec.parcel_as_of(conn, parcel_code, when)
    except NotFound:
        return None
    out = {"id": str(p.feature_id), "parcel_code": p.parcel_code, "seat": p.seat,
           "land_use": p.land_use, "registered_area": p.registered_area,
           "computed_area": round(p.computed_area, 2), "valid_from": p.valid_from,
           "valid_to": p.valid_to}
    out["land_use_label"] = L.label(L.LAND_USE, p.land_use)
    if p.registered_area is not None:
        out["area_difference"] = round(p.registered_area - p.computed_area, 2)
    return out


_CODES = {"parcel": "SELECT DISTINCT ON (feature_id) feature_id, parcel_code::text FROM cad.parcel "
                    "WHERE feature_id = ANY(%s) ORDER BY feature_id, valid_from DESC",
          "unit": "SELECT DISTINCT ON (feature_id) feature_id, unit_code::text FROM cad.unit "
                  "WHERE feature_id = ANY(%s) ORDER BY feature_id, valid_from DESC"}


def _with_codes(conn: psycopg.Connection, entity: str, ids: list[UUID]
                ) -> list[dict[str, Any]]:
    codes: dict[UUID, str] = {}
    if ids:
        codes = {r[0]: r[1] for r in conn.execute(_CODES[entity], (ids,)).fetchall()}
    key = f"{entity}_code"
    return [{"id": str(i), key: codes.get(i)} for i in ids]


def _lineage(conn: psycopg.Connection, unit_id: str | None, parcel_id: str | None
             ) -> dict[str, dict[str, list[dict[str, Any]]]]:
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    if parcel_id:
        links = rec.parcel_lineage(conn, UUID(parcel_id))
        out["parcel"] = {k: _with_codes(conn, "parcel", v) for k, v in links.items()}
    if unit_id:
        fid = UUID(unit_id)
        parents = [r[0] for r in conn.execute(
            "SELECT parent_feature_id FROM cad.lineage WHERE entity = 'unit' "
            "AND child_feature_id = %s", (fid,))]
        children = [r[0] for r in conn.execute(
            "SELECT child_feature_id FROM cad.lineage WHERE entity = 'unit' "
            "AND parent_feature_id = %s", (fid,))]
        out["unit"] = {"parents": _with_codes(conn, "unit", parents),
                       "children": _with_codes(conn, "unit", children)}
    return out


def unit_registry(conn: psycopg.Connection, cipher: PiiCipher, unit_code: str,
                  as_of: datetime | None = None, decrypt: Collection[str] = ()
                  ) -> UnitRegistry | None:
    """Everything linked to ``unit_code`` (a house unit …F… or a land-only code …W00000000);
    None when the registry has never known the code. ``decrypt``: party fields to decrypt."""
    parcel_code = parcel_code_of(unit_code)
    land_code = parcel_code + "W" + LAND_ONLY_SUFFIX
    is_land = unit_code == land_code
    when = _AT if as_of is not None else _LATEST
    params = {"code": unit_code, "at": as_of}
    unit = None if is_land else _one(conn, _UNIT.format(when=when), params)
    building = None
    if not is_land:
        building = _one(conn, _BUILDING.format(when=when),
                        {"code": building_code_of(unit_code), "at": as_of})
    parcel = _parcel(conn, parcel_code, as_of)
    in_force = _in_force(conn, unit_code, as_of) if as_of is not None else None
    records = _registrations(conn, cipher, unit_code, as_of, in_force, decrypt)
    land_records: list[Registration] = []
    if not is_land:
        land_in_force = _in_force(conn, land_code, as_of) if as_of is not None else None
        land_records = _registrations(conn, cipher, land_code, as_of, land_in_force, decrypt)
    # a house code is known through its unit or its records; a land-only code through its parcel
    if not records and (parcel is None if is_land else unit is None):
        return None
    if unit is not None:
        in_force_records = [r for r in records if r.record["in_force"]]
        unit.update(_status(records))
        owners = [r for r in in_force_records if r.record["kind"] == "ownership"]
        if owners:
            unit["certificate_no"] = owners[-1].record["certificate_no"]
            unit["owner_count"] = len({p["id"] for o in owners for p in o.parties
                                       if p["role"] == 1})
        label_unit(unit)
    if building is not None:
        building["completion_year"] = (building["completion_date"].year
                                       if building["completion_date"] else None)
        label_building(building)
    lineage = _lineage(conn, unit["id"] if unit else None, parcel["id"] if parcel else None)
    return UnitRegistry(unit_code, land_code, as_of, unit, building, parcel, records,
                        land_records, lineage)
