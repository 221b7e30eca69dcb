"""Queries over registration records, including the state on a past date (as-of)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg

from cadastre.errors import NotFound


@dataclass(frozen=True)
class RightAt:
    right_id: UUID
    kind: str
    unit_code: str
    status: int
    valid_from: datetime
    valid_to: datetime | None
    holder_party_ids: tuple[UUID, ...]   # role 1 (权利人); identities stay in pii.party


_RIGHTS_AT = """
SELECT r.right_id, r.kind, r.unit_code, r.status, r.valid_from, r.valid_to,
       coalesce(array_agg(rp.party_id ORDER BY rp.seq) FILTER (WHERE rp.role = 1), '{}')
FROM cad.right_record r
LEFT JOIN cad.right_party rp ON rp.right_version_id = r.version_id
    AND rp.county_code = r.county_code
WHERE r.unit_code = %(unit)s AND r.county_code = left(%(unit)s, 6)::bpchar
  AND r.status IN (1, 2)
  AND r.valid_from <= %(at)s AND (r.valid_to IS NULL OR r.valid_to > %(at)s)
  AND (%(kind)s::text IS NULL OR r.kind = %(kind)s)
GROUP BY r.version_id, r.county_code
ORDER BY r.valid_from
"""


def rights_as_of(conn: psycopg.Connection, unit_code: str, at: datetime,
                 kind: str | None = None) -> list[RightAt]:
    """Rights in force on ``unit_code`` at instant ``at`` (现势 then, whatever they are now)."""
    rows = conn.execute(_RIGHTS_AT, {"unit": unit_code, "at": at, "kind": kind}).fetchall()
    return [RightAt(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6])) for r in rows]


def owners_as_of(conn: psycopg.Connection, unit_code: str, at: datetime) -> tuple[UUID, ...]:
    """Party ids holding the ownership of ``unit_code`` at ``at`` (empty if none)."""
    owners: list[UUID] = []
    for right in rights_as_of(conn, unit_code, at, "ownership"):
        owners.extend(right.holder_party_ids)
    return tuple(owners)


_PARCEL_AT = """
SELECT feature_id, parcel_code, seat, land_use, registered_area, ST_Area(geom),
       valid_from, valid_to
FROM cad.parcel
WHERE parcel_code = %(code)s
  AND valid_from <= %(at)s AND (valid_to IS NULL OR valid_to > %(at)s)
"""


@dataclass(frozen=True)
class ParcelAt:
    feature_id: UUID
    parcel_code: str
    seat: str | None
    land_use: str
    registered_area: float | None
    computed_area: float
    valid_from: datetime
    valid_to: datetime | None


def parcel_as_of(conn: psycopg.Connection, parcel_code: str, at: datetime) -> ParcelAt:
    row = conn.execute(_PARCEL_AT, {"code": parcel_code, "at": at}).fetchone()
    if row is None:
        raise NotFound("PARCEL_NOT_FOUND", "该日期无此宗地 / no such parcel at that date")
    return ParcelAt(row[0], row[1], row[2], row[3],
                    float(row[4]) if row[4] is not None else None, row[5], row[6], row[7])


def parcel_lineage(conn: psycopg.Connection, feature_id: UUID) -> dict[str, list[UUID]]:
    """Parents and children of a parcel feature across splits and merges."""
    parents = conn.execute(
        "SELECT parent_feature_id FROM cad.lineage "
        "WHERE entity = 'parcel' AND child_feature_id = %s",
        (feature_id,)).fetchall()
    children = conn.execute(
        "SELECT child_feature_id FROM cad.lineage "
        "WHERE entity = 'parcel' AND parent_feature_id = %s",
        (feature_id,)).fetchall()
    return {"parents": [r[0] for r in parents], "children": [r[0] for r in children]}
