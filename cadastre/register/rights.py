"""Versioned writes of registration records (QLT/QLF tables): a right is entered, closed, or
continued in a new version; nothing is deleted or edited in place.

- ``enter``: a new right (new ``right_id``) with its detail row and parties, status 1 (现势);
- ``close``: the current version becomes history (status 2, ``valid_to``, ``retired_by``);
- ``continue_version``: the same ``right_id`` in a new version (change, correction, new
  certificate), its detail and parties copied unless replaced.

These run inside the caller's transaction (a case's 登簿, an accepted import); the triggers of
migration 0002 keep ``cad.unit_status`` and the tile cache in step.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from cadastre.codes import county_of

DETAIL_TABLE: Mapping[str, str] = {
    "ownership": "cad.ownership_detail", "land_use": "cad.ownership_detail",
    "mortgage": "cad.mortgage_detail", "pre_notice": "cad.pre_notice_detail",
    "seizure": "cad.seizure_detail", "objection": "cad.objection_detail",
    "easement": "cad.easement_detail", "cancellation": "cad.cancellation_detail",
}
# columns a caller may set per detail table (identifiers come only from here)
DETAIL_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "cad.ownership_detail": ("land_use_start", "land_use_end", "transaction_price", "house_use",
                             "house_nature", "structure", "floor_label", "floors_total",
                             "building_area", "exclusive_area", "shared_area", "land_area"),
    "cad.mortgage_detail": ("mortgage_type", "property_kind", "secured_amount", "max_amount",
                            "debt_start", "debt_end", "scope"),
    "cad.pre_notice_detail": ("notice_kind", "price", "house_use", "building_area"),
    "cad.seizure_detail": ("authority", "seizure_type", "document", "document_no",
                           "seizure_start", "seizure_end", "scope", "release_document_no",
                           "released_at"),
    "cad.objection_detail": ("matter", "cancelled_reason", "cancelled_at"),
    "cad.easement_detail": ("servient_unit_code", "dominant_unit_code", "content",
                            "easement_start", "easement_end"),
    "cad.cancellation_detail": ("cancelled_right_id", "reason", "cancelled_at"),
}
RIGHT_COLUMNS = ("registration_type", "right_type", "registration_reason", "certificate_no",
                 "registry_office", "registrar_name", "right_start", "right_end", "remark")


@dataclass(frozen=True)
class Holder:
    """A party linked to a right: role 1 权利人, 2 义务人, 3 债务人, 4 申请人."""

    party_id: uuid.UUID
    role: int = 1
    seq: int = 1
    share: str | None = None
    co_ownership: int | None = None


@dataclass(frozen=True)
class CurrentRight:
    version_id: int
    right_id: uuid.UUID
    kind: str
    unit_code: str
    business_no: str
    registration_type: int
    right_type: int
    certificate_no: str | None
    valid_from: datetime
    holders: tuple[uuid.UUID, ...]        # role 1
    obligors: tuple[uuid.UUID, ...]       # role 2
    detail: dict[str, Any]


_CURRENT = """
SELECT r.version_id, r.right_id, r.kind, r.unit_code, r.business_no, r.registration_type,
       r.right_type, r.certificate_no, r.valid_from,
       coalesce(array_agg(p.party_id ORDER BY p.seq) FILTER (WHERE p.role = 1), '{}'),
       coalesce(array_agg(p.party_id ORDER BY p.seq) FILTER (WHERE p.role = 2), '{}')
FROM cad.right_record r
LEFT JOIN cad.right_party p ON p.right_version_id = r.version_id AND p.county_code = r.county_code
WHERE r.version_id = ANY(%s)
GROUP BY r.version_id, r.county_code
ORDER BY r.valid_from, r.version_id
"""


def current(conn: psycopg.Connection, unit_codes: Sequence[str],
            kinds: Iterable[str] | None = None, lock: bool = True) -> list[CurrentRight]:
    """Current rights on the units (oldest first), their rows locked against concurrent
    registrations until the caller's transaction ends."""
    kinds = list(kinds) if kinds is not None else None
    ids = [r[0] for r in conn.execute(
        "SELECT version_id FROM cad.right_record WHERE unit_code = ANY(%s::char(28)[]) "
        "AND valid_to IS NULL AND status = 1 AND (%s::text[] IS NULL OR kind = ANY(%s)) "
        "ORDER BY version_id" + (" FOR UPDATE" if lock else ""),
        (list(unit_codes), kinds, kinds))]
    return _load(conn, ids)


def by_right_id(conn: psycopg.Connection, right_id: uuid.UUID, lock: bool = True
                ) -> CurrentRight | None:
    row = conn.execute(
        "SELECT version_id FROM cad.right_record WHERE right_id = %s AND valid_to IS NULL "
        "AND status = 1" + (" FOR UPDATE" if lock else ""), (right_id,)).fetchone()
    found = _load(conn, [row[0]]) if row else []
    return found[0] if found else None


def _load(conn: psycopg.Connection, version_ids: list[int]) -> list[CurrentRight]:
    if not version_ids:
        return []
    out = []
    for r in conn.execute(_CURRENT, (version_ids,)).fetchall():
        out.append(CurrentRight(r[0], r[1], r[2], r[3].strip(), r[4], r[5], r[6], r[7], r[8],
                                tuple(r[9]), tuple(r[10]), detail(conn, r[2], r[0])))
    return out


def detail(conn: psycopg.Connection, kind: str, version_id: int) -> dict[str, Any]:
    table = DETAIL_TABLE[kind]
    cols = DETAIL_COLUMNS[table]
    row = conn.execute(f"SELECT {', '.join(cols)} FROM {table} WHERE right_version_id = %s",
                       (version_id,)).fetchone()
    return dict(zip(cols, row, strict=True)) if row else {}


def _write_detail(conn: psycopg.Connection, kind: str, version_id: int, county: str,
                  values: Mapping[str, Any]) -> None:
    table = DETAIL_TABLE[kind]
    allowed = DETAIL_COLUMNS[table]
    cols = [c for c in allowed if c in values]
    unknown = set(values) - set(allowed)
    if unknown:
        raise ValueError(f"not a column of {table}: {sorted(unknown)}")
    conn.execute(
        f"INSERT INTO {table} (right_version_id, county_code{''.join(', ' + c for c in cols)}) "
        f"VALUES (%s, %s{', %s' * len(cols)})", (version_id, county, *(values[c] for c in cols)))


def _link(conn: psycopg.Connection, version_id: int, county: str,
          holders: Iterable[Holder]) -> None:
    rows = [(version_id, county, h.party_id, h.role, h.seq, h.share, h.co_ownership)
            for h in holders]
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO cad.right_party (right_version_id, county_code, party_id, role, "
                "seq, share, co_ownership) VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)


def enter(conn: psycopg.Connection, *, change: int, at: datetime, kind: str, unit_code: str,
          business_no: str, registration_type: int, right_type: int,
          holders: Iterable[Holder], detail_values: Mapping[str, Any],
          right_id: uuid.UUID | None = None, reason: str | None = None,
          certificate_no: str | None = None, office: str | None = None,
          registrar: str | None = None, right_start: date | None = None,
          right_end: date | None = None, remark: str | None = None) -> int:
    """A new current right; returns its version id."""
    row = conn.execute(
        "INSERT INTO cad.right_record (right_id, kind, unit_code, business_no, "
        "registration_type, right_type, registration_reason, certificate_no, registry_office, "
        "registrar_name, registered_at, right_start, right_end, status, remark, valid_from, "
        "change_id, county_code) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 1, "
        "%s, %s, %s, %s) RETURNING version_id",
        (right_id or uuid.uuid4(), kind, unit_code, business_no, registration_type, right_type,
         reason, certificate_no, office, registrar, at, right_start, right_end, remark, at,
         change, county_of(unit_code))).fetchone()
    assert row is not None
    vid = int(row[0])
    _write_detail(conn, kind, vid, county_of(unit_code), detail_values)
    _link(conn, vid, county_of(unit_code), holders)
    return vid


def close(conn: psycopg.Connection, right: CurrentRight, change: int, at: datetime,
          detail_values: Mapping[str, Any] | None = None) -> None:
    """The current version becomes history. ``detail_values`` record how it ended on the
    retiring version itself (a seizure's release document, an objection's cancellation)."""
    conn.execute("UPDATE cad.right_record SET status = 2, valid_to = %s, retired_by = %s "
                 "WHERE version_id = %s AND county_code = %s AND valid_to IS NULL",
                 (at, change, right.version_id, county_of(right.unit_code)))
    if detail_values:
        table = DETAIL_TABLE[right.kind]
        cols = [c for c in DETAIL_COLUMNS[table] if c in detail_values]
        conn.execute(f"UPDATE {table} SET {', '.join(c + ' = %s' for c in cols)} "
                     "WHERE right_version_id = %s",
                     (*(detail_values[c] for c in cols), right.version_id))


def continue_version(conn: psycopg.Connection, right: CurrentRight, *, change: int,
                     at: datetime, business_no: str, registration_type: int,
                     record_values: Mapping[str, Any] | None = None,
                     detail_values: Mapping[str, Any] | None = None,
                     holders: Iterable[Holder] | None = None) -> int:
    """The same right in a new version: closes ``right`` and writes its successor with the
    given fields replaced (the rest copied). Returns the new version id."""
    record_values = dict(record_values or {})
    unknown = set(record_values) - set(RIGHT_COLUMNS)
    if unknown:
        raise ValueError(f"not a right column: {sorted(unknown)}")
    close(conn, right, change, at)
    keep = [c for c in RIGHT_COLUMNS if c not in record_values and c != "registration_type"]
    row = conn.execute(
        f"INSERT INTO cad.right_record (right_id, kind, unit_code, business_no, "
        f"registration_type, registered_at, status, valid_from, change_id, county_code, "
        f"{', '.join(keep)}{''.join(', ' + c for c in record_values)}) "
        f"SELECT right_id, kind, unit_code, %s, %s, %s, 1, %s, %s, county_code, {', '.join(keep)}"
        f"{', %s' * len(record_values)} FROM cad.right_record WHERE version_id = %s "
        f"RETURNING version_id",
        (business_no, registration_type, at, at, change, *record_values.values(),
         right.version_id)).fetchone()
    assert row is not None
    vid = int(row[0])
    county = county_of(right.unit_code)
    _write_detail(conn, right.kind, vid, county, {**right.detail, **(detail_values or {})})
    if holders is None:
        conn.execute("INSERT INTO cad.right_party (right_version_id, county_code, party_id, role, "
                     "seq, share, co_ownership) SELECT %s, county_code, party_id, role, seq, "
                     "share, co_ownership FROM cad.right_party WHERE right_version_id = %s "
                     "AND county_code = %s", (vid, right.version_id, county))
    else:
        _link(conn, vid, county, holders)
    return vid
