"""The register's content fingerprint: what an exchange round trip must preserve.

Surrogate keys (version ids, feature ids, change ids, party ids) and the time a row was written
differ between two databases holding the same register, so they are left out; everything a
registration says is in: codes, attributes, geometries (exact, as EWKB), rights with their
details (by right id), parties by the keyed hashes of their identities, and who holds what.
Only current rows count (an extract carries the current register).
"""

from __future__ import annotations

import psycopg

_KEYS = "ARRAY['right_version_id', 'county_code']::text[]"    # keys of a detail row, not content

_RIGHT_DETAIL = f"""
SELECT r.right_id::text, r.kind, r.unit_code, r.business_no, r.registration_type,
       r.right_type, r.registration_reason, r.certificate_no, r.registry_office,
       r.registrar_name, r.registered_at, r.right_start, r.right_end, r.status, r.remark,
       (to_jsonb(o) - {_KEYS})::text, (to_jsonb(m) - {_KEYS})::text,
       (to_jsonb(n) - {_KEYS})::text, (to_jsonb(s) - {_KEYS})::text,
       (to_jsonb(b) - {_KEYS})::text, (to_jsonb(e) - {_KEYS})::text,
       (to_jsonb(c) - {_KEYS})::text,
       (SELECT string_agg(md5(p.name_hash::text || p.id_number_hash::text) || ':' || rp.role
                          || ':' || rp.seq || ':' || coalesce(rp.share, '') || ':'
                          || coalesce(rp.co_ownership::text, '') || ':' || p.party_type
                          || ':' || p.id_type, ',' ORDER BY rp.role, rp.seq, p.name_hash)
        FROM cad.right_party rp JOIN pii.party p USING (party_id)
        WHERE rp.right_version_id = r.version_id)
FROM cad.right_record r
LEFT JOIN cad.ownership_detail o ON o.right_version_id = r.version_id
LEFT JOIN cad.mortgage_detail m ON m.right_version_id = r.version_id
LEFT JOIN cad.pre_notice_detail n ON n.right_version_id = r.version_id
LEFT JOIN cad.seizure_detail s ON s.right_version_id = r.version_id
LEFT JOIN cad.objection_detail b ON b.right_version_id = r.version_id
LEFT JOIN cad.easement_detail e ON e.right_version_id = r.version_id
LEFT JOIN cad.cancellation_detail c ON c.right_version_id = r.version_id
WHERE r.valid_to IS NULL AND r.status = 1
"""

PARTS: dict[str, str] = {
    "parcel": "SELECT parcel_code, seat, compound_name, land_use, right_type, right_nature, "
              "registered_area, neighbour_north, neighbour_east, neighbour_south, "
              "neighbour_west, map_sheet, srid, ST_AsEWKB(geom) FROM cad.parcel "
              "WHERE valid_to IS NULL",
    "boundary_point": "SELECT parcel_code, point_no, seq, ring_no, x_north, y_east, srid "
                      "FROM cad.boundary_point WHERE valid_to IS NULL",
    "building": "SELECT building_code, name, project_name, floors_total, floors_above, "
                "floors_below, height, ground_elevation, structure, planned_use, "
                "completion_date, floor_area, footprint_area, srid, ST_AsEWKB(geom) "
                "FROM cad.building WHERE valid_to IS NULL",
    "floor": "SELECT building_code, floor_no, floor_label, base_elevation, storey_height, "
             "floor_area, srid, ST_AsEWKB(geom) FROM cad.floor WHERE valid_to IS NULL",
    "unit": "SELECT unit_code, floor_no, floor_count, room_no, seat, use, house_type, "
            "house_nature, layout, building_area, inner_area, shared_area, shared_coefficient, "
            "land_share_area, base_elevation, height, srid, ST_AsEWKB(geom) FROM cad.unit "
            "WHERE valid_to IS NULL",
    "right": _RIGHT_DETAIL,
    "party": "SELECT DISTINCT p.name_hash, p.id_number_hash, p.phone_hash, p.party_type, "
             "p.id_type FROM pii.party p JOIN cad.right_party rp USING (party_id) "
             "JOIN cad.right_record r ON r.version_id = rp.right_version_id "
             "WHERE r.valid_to IS NULL AND r.status = 1",
}


def register_fingerprint(conn: psycopg.Connection) -> dict[str, str]:
    """``{part: "<rows>:<md5 of the sorted row hashes>"}`` for every part of the register."""
    out = {}
    for part, sql in PARTS.items():
        out[part] = conn.execute(
            f"SELECT count(*) || ':' || coalesce(md5(string_agg(h, '' ORDER BY h)), '') "
            f"FROM (SELECT md5(t::text) AS h FROM ({sql}) t) x").fetchone()[0]  # type: ignore[index]
    return out
