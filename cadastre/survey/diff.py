"""A submission's effect on the current registry: new, changed, unchanged, retired, lineage."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg

from cadastre.codes import ParcelCode, sequence_prefix_of
from cadastre.register.numbering import next_parcel_sequence
from cadastre.store.db import one, scalar

HAUSDORFF_M = 0.001  # geometry differs by more than a millimetre → changed


@dataclass
class ParcelChange:
    idx: int | None               # staged feature index (None for retired registry parcels)
    ref: str
    code: str | None
    change: str                   # new | changed | unchanged | retired
    feature_id: uuid.UUID | None = None
    version_id: int | None = None
    parents: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "code": self.code, "change": self.change,
                "feature_id": str(self.feature_id) if self.feature_id else None,
                "parents": self.parents}


@dataclass
class Diff:
    parcels: list[ParcelChange]
    lineage: list[tuple[str, str, str]]       # (parent code, child code, event)
    buildings: dict[str, list[str]]
    units: dict[str, list[str]]

    def summary(self) -> dict[str, Any]:
        count: dict[str, int] = {}
        for p in self.parcels:
            count[p.change] = count.get(p.change, 0) + 1
        return {
            "parcels": {**count,
                        "items": [p.as_dict() for p in self.parcels if p.change != "unchanged"]},
            "lineage": [{"parent": a, "child": b, "event": e} for a, b, e in self.lineage],
            "buildings": {k: len(v) for k, v in self.buildings.items()},
            "units": {k: len(v) for k, v in self.units.items()},
        }


_STAGED_PARCELS = """
SELECT f.idx, f.ref, nullif(f.props->>'parcel_code', ''), p.feature_id, p.version_id,
       CASE WHEN p.version_id IS NULL THEN 'new'
            WHEN ST_SRID(f.geom) <> p.srid
              OR ST_HausdorffDistance(f.geom, p.geom) > %(tol)s
              OR (f.props ? 'seat' AND f.props->>'seat' IS DISTINCT FROM p.seat)
              OR (f.props ? 'land_use' AND f.props->>'land_use' IS DISTINCT FROM p.land_use)
              OR (f.props ? 'declared_area' AND (f.props->>'declared_area')::numeric
                  IS DISTINCT FROM p.registered_area)
            THEN 'changed' ELSE 'unchanged' END
FROM cad.survey_feature f
LEFT JOIN cad.parcel p ON p.parcel_code = f.props->>'parcel_code' AND p.valid_to IS NULL
WHERE f.submission_id = %(sid)s AND f.kind = 'parcel'
ORDER BY f.idx"""

# Registry parcels the submission's parcels overlap (possible parents), with the overlap share.
_OVERLAPS = """
SELECT f.idx, p.parcel_code::text,
       ST_Area(ST_Intersection(f.geom, p.geom)) / nullif(ST_Area(p.geom), 0) AS share
FROM cad.survey_feature f
JOIN cad.parcel p ON p.valid_to IS NULL AND p.geom_3857 && f.geom_3857 AND p.srid = f.srid
WHERE f.submission_id = %(sid)s AND f.kind = 'parcel' AND ST_IsValid(f.geom)
  AND ST_Area(ST_Intersection(f.geom, p.geom)) > 0.01"""

_BY_CODE = """
SELECT f.props->>%(key)s AS code,
       CASE WHEN t.version_id IS NULL THEN 'new'
            WHEN ST_HausdorffDistance(f.geom, t.geom) > %(tol)s THEN 'changed'
            ELSE 'unchanged' END
FROM cad.survey_feature f
LEFT JOIN {table} t ON t.{column} = f.props->>%(key)s AND t.valid_to IS NULL
WHERE f.submission_id = %(sid)s AND f.kind = %(kind)s AND f.props ? %(key)s"""


def compute_diff(conn: psycopg.Connection, sid: uuid.UUID) -> Diff:
    rows = conn.execute(_STAGED_PARCELS, {"sid": sid, "tol": HAUSDORFF_M}).fetchall()
    parcels = [ParcelChange(r[0], r[1], r[2], r[5], r[3], r[4]) for r in rows]
    codes = {p.code for p in parcels if p.code}
    overlaps = conn.execute(_OVERLAPS, {"sid": sid}).fetchall()
    covered: dict[str, float] = {}
    pieces: dict[str, list[int]] = {}
    for idx, parent, share in overlaps:
        if parent in codes or share is None:
            continue
        covered[parent] = covered.get(parent, 0.0) + share
        if share > 0.01:                       # a real piece, not a sliver along an edge
            pieces.setdefault(parent, []).append(idx)
    # a registry parcel mostly covered by the survey's parcels is replaced by them
    retired = {parent: pieces[parent] for parent, total in covered.items()
               if total > 0.5 and parent in pieces}
    by_idx = {p.idx: p for p in parcels}
    _assign_codes(conn, parcels, retired)
    for parent, idxs in retired.items():
        for idx in idxs:
            child = by_idx[idx]
            child.parents.append(parent)
            if child.change == "unchanged":
                child.change = "changed"
    lineage: list[tuple[str, str, str]] = []
    for parent, idxs in retired.items():
        for idx in idxs:
            child = by_idx[idx]
            event = ("split" if len(idxs) > 1 else "merge" if len(child.parents) > 1
                     else "replace")
            lineage.append((parent, child.code or child.ref, event))
    for parent in sorted(retired):
        row = one(conn, "SELECT feature_id, version_id FROM cad.parcel WHERE parcel_code = %s"
                  " AND valid_to IS NULL", (parent,))
        parcels.append(ParcelChange(None, parent, parent, "retired", row[0], row[1]))
    return Diff(parcels, lineage, _by_code(conn, sid, "building", "building_code",
                                           "cad.building", "building_code"),
                _by_code(conn, sid, "unit", "unit_code", "cad.unit", "unit_code"))


def _by_code(conn: psycopg.Connection, sid: uuid.UUID, kind: str, key: str, table: str,
             column: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"new": [], "changed": [], "unchanged": []}
    sql = _BY_CODE.format(table=table, column=column)
    for code, change in conn.execute(sql, {"sid": sid, "kind": kind, "key": key,  # type: ignore
                                           "tol": HAUSDORFF_M}):
        out[change].append(code)
    return out


def _assign_codes(conn: psycopg.Connection, parcels: list[ParcelChange],
                  retired: dict[str, list[int]]) -> None:
    """New parcels without a code get the next sequence (never reused) of their parent's
    cadastral subdistrict and feature code (GB/T 37346 change rules)."""
    taken: dict[str, list[int]] = {}
    for p in parcels:
        if p.code:
            continue
        parent = next((code for code, idxs in retired.items() if p.idx in idxs), None)
        if parent is None:
            continue   # no parent: the accept step refuses it (PARCEL_CODE_MISSING)
        prefix = sequence_prefix_of(parent)
        if prefix not in taken:
            taken[prefix] = [ParcelCode.parse(r[0]).sequence for r in conn.execute(
                "SELECT DISTINCT parcel_code FROM cad.parcel WHERE parcel_code LIKE %s",
                (prefix + "%",))]
        seq = next_parcel_sequence(taken[prefix])
        taken[prefix].append(seq)
        p.code = str(ParcelCode.parse(parent).with_sequence(seq))


def diff_geojson(conn: psycopg.Connection, sid: uuid.UUID, diff: Diff) -> dict[str, Any]:
    """New/changed parcels (after), changed/retired parcels (before), for the diff map."""
    feats: list[dict[str, Any]] = []
    for p in diff.parcels:
        if p.change in ("new", "changed") and p.idx is not None:
            g = scalar(conn, "SELECT ST_AsGeoJSON(ST_Transform(geom, 4326), 7) FROM "
                       "cad.survey_feature WHERE submission_id = %s AND idx = %s", (sid, p.idx))
            feats.append({"type": "Feature", "geometry": json.loads(g),
                          "properties": {**p.as_dict(), "state": "after"}})
        if p.change in ("changed", "retired") and p.version_id is not None:
            g = scalar(conn, "SELECT ST_AsGeoJSON(ST_Transform(geom, 4326), 7) FROM cad.parcel "
                       "WHERE version_id = %s", (p.version_id,))
            feats.append({"type": "Feature", "geometry": json.loads(g),
                          "properties": {**p.as_dict(), "state": "before"}})
    return {"type": "FeatureCollection", "features": feats}
